"""Diagnostic figures of one alignment: FSC curves, difference-map slices, overlay slices.

Arrays in, PNG files out (matplotlib, Agg backend, no display needed). Slices are the central
planes of the reference grid: xy at ``z = N // 2``, xz at ``y = N // 2``, yz at ``x = N // 2``.
Difference maps are taken after both maps are low-passed and standardised over the box, so
they show disagreement in shape, not in greyscale; white means agreement (a diverging colour map
centred on 0, one colour scale shared by the three slices).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.fsc import FSCCurve
from align3d.jobs.align_3d_maps.slices import Slices


def _pyplot() -> ModuleType:
    """matplotlib's pyplot on the file-only Agg backend, imported when a figure is drawn (not
    at start-up: it costs a parallel worker ~0.3 s)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def plot_fsc(after: FSCCurve, before: FSCCurve | None, path: Path, title: str = "") -> Path:
    """FSC of the aligned map against the reference (and before alignment, for contrast), with
    the 0.143 threshold and the resolution where the curve crosses it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=100)
    res = after.resolution_at(0.143)
    ax.plot(
        after.frequency,
        after.fsc,
        color="#1f77b4",
        lw=2,
        label=f"aligned ({res:.1f} Å)" if np.isfinite(res) else "aligned",
    )
    if before is not None:
        res_b = before.resolution_at(0.143)
        label = f"before alignment ({res_b:.1f} Å)" if np.isfinite(res_b) else "before alignment"
        ax.plot(before.frequency, before.fsc, color="#999999", lw=1.5, ls="--", label=label)
    ax.axhline(0.143, color="#d62728", lw=1, ls=":", label="FSC = 0.143")
    if np.isfinite(res):
        ax.axvline(1.0 / res, color="#1f77b4", lw=0.8, ls=":")
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_ylim(-0.1, 1.05)
    ax.set_xlim(0, after.frequency[-1])
    ax.set_title(title or "FSC against the reference")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_difference_slices(slices: Slices, path: Path, title: str = "") -> Path:
    """Central slices of a difference map, white = agreement, one shared symmetric scale."""
    plt = _pyplot()
    values = np.concatenate([np.abs(plane).ravel() for plane in slices.values()])
    # at least 1 σ: residues of a good alignment stay white instead of being stretched to
    # full colour; real disagreement (several σ) saturates
    limit = max(float(np.percentile(values, 99.9)), 1.0)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.8), dpi=100)
    image = None
    for ax, (name, plane) in zip(axes, slices.items(), strict=True):
        image = ax.imshow(plane, cmap="RdBu_r", vmin=-limit, vmax=limit, origin="lower")
        ax.set_title(f"{name} (central)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label="aligned - reference (σ)")
    fig.suptitle(title or "Difference map (low-passed, standardised)")
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_overlay_slices(
    ref_slices: Slices, ali_slices: Slices, path: Path, title: str = ""
) -> Path:
    """Central slices of reference (magenta) and aligned map (green): grey-white where they
    agree, coloured where one has density the other lacks."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.8), dpi=100)
    for ax, name in zip(axes, ref_slices, strict=True):
        r = _unit(ref_slices[name])
        a = _unit(ali_slices[name])
        rgb = np.stack([r, a, r], axis=-1)
        ax.imshow(rgb, origin="lower")
        ax.set_title(f"{name} (central)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "Overlay: reference magenta, aligned green")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _unit(plane: NDArray) -> NDArray[np.float64]:
    """Density scaled to [0, 1] between its 1st and 99.5th percentiles."""
    lo, hi = np.percentile(plane, [1.0, 99.5])
    return np.clip((plane - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
