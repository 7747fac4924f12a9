"""Per-volume diagnostics of Align 3D Maps (the difference map and the figures), and the progress
bars."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from align3d.jobs.align_3d_maps.crop import content_windows
from align3d.jobs.align_3d_maps.figures import plot_difference_slices, plot_fsc, plot_overlay_slices
from align3d.jobs.align_3d_maps.names import DIFFERENCE_FIGURE, FSC_FIGURE, OVERLAY_FIGURE
from align3d.jobs.align_3d_maps.outcome import VolumeOutcome

SEARCH_STAGES = 5


def volume_figures(outcome: VolumeOutcome, folder: Path, index: int) -> list[Path]:
    """FSC plot, difference-map slices, overlay slices: from what the volume's work kept in
    memory (nothing is read back). The difference slices are of the volume's map (not of its
    half maps), low-passed to where it agrees with the reference
    (:func:`align3d.engine.alignment.difference.difference_lowpass_A`), and say to what. The
    slices of both figures are cropped to one window per plane, the density of the reference
    and the aligned map with a margin (:func:`.crop.content_windows`)."""
    label = f"volume {index}"
    windows = content_windows(outcome.reference_slices, outcome.aligned_slices)
    figures = [
        plot_fsc(
            outcome.fsc_after,
            outcome.fsc_before,
            folder / FSC_FIGURE,
            f"FSC of {label} against the reference",
        )
    ]
    if outcome.difference_slices is not None:
        lowpass = outcome.difference_lowpass_A
        figures.append(
            plot_difference_slices(
                outcome.difference_slices,
                folder / DIFFERENCE_FIGURE,
                f"{label}: aligned map - reference, low-passed to {lowpass:.3g} Å",
                windows,
            )
        )
    figures.append(
        plot_overlay_slices(
            outcome.reference_slices,
            outcome.aligned_slices,
            folder / OVERLAY_FIGURE,
            f"{label}: reference magenta, aligned green",
            windows,
        )
    )
    return figures


@contextmanager
def progress_bars(count: int, quiet: bool) -> Iterator[tuple[tqdm, Callable[[], tqdm]]]:
    """A bar over volumes and, per volume, one over the search stages; silent when ``quiet``
    or when stderr is not a terminal (logs and pipelines get clean lines)."""
    disable = quiet or not sys.stderr.isatty()
    volumes = tqdm(total=count, desc="volumes", unit="vol", disable=disable, position=0)

    def stages() -> tqdm:
        return tqdm(total=SEARCH_STAGES, desc="  search", leave=False, disable=disable, position=1)

    try:
        yield volumes, stages
    finally:
        volumes.close()
