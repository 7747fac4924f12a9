"""Diagnostic figures of one alignment: FSC curves, difference-map slices, overlay slices.

Arrays in, PNG files out (matplotlib, Agg backend, no display needed). Slices are the central
planes of the reference grid: xy at ``z = N // 2``, xz at ``y = N // 2``, yz at ``x = N // 2``,
cropped to the density of the two maps with a margin (:mod:`.crop`), the same window in the
difference and the overlay figures. Difference maps are taken after both maps are low-passed and
standardised over the box, so they show disagreement in shape, not in greyscale; white means
agreement (a diverging colour map centred on 0, one colour scale shared by the three slices).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.fsc import FSCCurve
from align3d.jobs.align_3d_maps.crop import Windows, cropped
from align3d.jobs.align_3d_maps.slices import Slices


def _pyplot() -> ModuleType:
    """matplotlib's pyplot on the file-only Agg backend, imported when a figure is drawn (not
    at start-up: it costs a parallel worker ~0.3 s)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def resolution_words(resolution_A: float | None, at_nyquist: bool, unit: str = " Å") -> str:
    """An FSC resolution in words: ``"6.0 Å"``; ``"≤ 4.0 Å (Nyquist)"`` when the curve never
    fell below its threshold (``at_nyquist``: the grid, not the maps, sets that bound); ``"–"``
    when there is none (below the threshold from the first shell)."""
    if resolution_A is None or not np.isfinite(resolution_A):
        return "–"
    return f"≤ {resolution_A:.1f}{unit} (Nyquist)" if at_nyquist else f"{resolution_A:.1f}{unit}"


def resolution_label(curve: FSCCurve, threshold: float = 0.143) -> str:
    """Where ``curve`` crosses ``threshold``, in words (:func:`resolution_words`)."""
    return resolution_words(curve.resolution_at(threshold), curve.holds_to_nyquist(threshold))


def plot_fsc(after: FSCCurve, before: FSCCurve | None, path: Path, title: str = "") -> Path:
    """:func:`fsc_figure`, written to ``path`` (PNG)."""
    return _saved(fsc_figure(after, before, title), path)


def fsc_figure(after: FSCCurve, before: FSCCurve | None, title: str = "") -> Any:
    """FSC of the aligned map against the reference (and before alignment, for contrast), with
    the 0.143 threshold and the resolution where the curve crosses it. The legend sits below
    the axes, where it hides no curve."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.4), dpi=100, layout="constrained")
    res = after.resolution_at(0.143)
    ax.plot(
        after.frequency,
        after.fsc,
        color="#1f77b4",
        lw=2,
        label=f"aligned: {resolution_label(after)}",
    )
    if before is not None:
        label = f"before alignment: {resolution_label(before)}"
        ax.plot(before.frequency, before.fsc, color="#777777", lw=1.5, ls="--", label=label)
    ax.axhline(0.143, color="#d62728", lw=1, ls=":", label="FSC = 0.143")
    if np.isfinite(res):
        ax.axvline(1.0 / res, color="#1f77b4", lw=0.8, ls=":")
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_ylim(-0.1, 1.05)
    ax.set_xlim(0, after.frequency[-1])
    ax.set_title(title or "FSC against the reference")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def plot_difference_slices(
    slices: Slices, path: Path, title: str = "", windows: Windows | None = None
) -> Path:
    """:func:`difference_figure`, written to ``path`` (PNG)."""
    return _saved(difference_figure(slices, title, windows), path)


def difference_figure(slices: Slices, title: str = "", windows: Windows | None = None) -> Any:
    """Central slices of a difference map, white = agreement, one shared symmetric scale;
    each cropped to its window (:func:`.crop.content_windows`), if given."""
    plt = _pyplot()
    shown = cropped(slices, windows)
    values = np.concatenate([np.abs(plane).ravel() for plane in shown.values()])
    # at least 1 σ: residues of a good alignment stay white instead of being stretched to
    # full colour; real disagreement (several σ) saturates
    limit = max(float(np.percentile(values, 99.9)), 1.0)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.8), dpi=100, layout="constrained")
    image = None
    for ax, (name, plane) in zip(axes, shown.items(), strict=True):
        image = ax.imshow(plane, cmap="RdBu_r", vmin=-limit, vmax=limit, origin="lower")
        _label(ax, name, windows)
    fig.colorbar(image, ax=axes, shrink=0.8, label="aligned - reference (σ)")
    fig.suptitle(title or "Difference map (low-passed, standardised)")
    return fig


def plot_overlay_slices(
    ref_slices: Slices,
    ali_slices: Slices,
    path: Path,
    title: str = "",
    windows: Windows | None = None,
) -> Path:
    """:func:`overlay_figure`, written to ``path`` (PNG)."""
    return _saved(overlay_figure(ref_slices, ali_slices, title, windows), path)


def overlay_figure(
    ref_slices: Slices, ali_slices: Slices, title: str = "", windows: Windows | None = None
) -> Any:
    """Central slices of reference (magenta) and aligned map (green): grey-white where they
    agree, coloured where one has density the other lacks; each cropped to its window, if
    given."""
    plt = _pyplot()
    refs, alis = cropped(ref_slices, windows), cropped(ali_slices, windows)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.8), dpi=100, layout="constrained")
    for ax, name in zip(axes, refs, strict=True):
        r = _unit(refs[name])
        a = _unit(alis[name])
        rgb = np.stack([r, a, r], axis=-1)
        ax.imshow(rgb, origin="lower")
        _label(ax, name, windows)
    fig.suptitle(title or "Overlay: reference magenta, aligned green")
    return fig


def _saved(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` and let it go."""
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def _label(ax: Any, name: str, windows: Windows | None) -> None:
    """A panel's title (the plane, and whether it is cropped) and no ticks."""
    ax.set_title(f"{name} (central{', cropped' if windows else ''})")
    ax.set_xticks([])
    ax.set_yticks([])


def _unit(plane: NDArray) -> NDArray[np.float64]:
    """Density scaled to [0, 1] between its 1st and 99.5th percentiles."""
    lo, hi = np.percentile(plane, [1.0, 99.5])
    return np.clip((plane - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
