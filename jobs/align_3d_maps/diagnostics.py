"""Per-volume diagnostics of Align 3D Maps (the difference map and the figures), and the progress
bars."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from engine.alignment.difference import difference_map
from jobs.align_3d_maps.figures import plot_difference_slices, plot_fsc, plot_overlay_slices
from jobs.align_3d_maps.volume import VolumeOutcome
from slots.mrc import MapData, read_map, write_map

SEARCH_STAGES = 5


def volume_figures(
    reference: MapData, outcome: VolumeOutcome, folder: Path, lowpass_A: float, index: int
) -> list[Path]:
    """FSC plot, difference-map slices (and the difference map itself), overlay slices."""
    aligned = read_map(outcome.files["map"]).data
    p = float(reference.voxel_size_A[0])
    diff = difference_map(reference.data, aligned, p, lowpass_A)
    write_map(folder / "difference_map.mrc", diff, reference.voxel_size_A, reference.header)
    label = f"volume {index}"
    return [
        plot_fsc(
            outcome.fsc_after,
            outcome.fsc_before,
            folder / "fsc.png",
            f"FSC of {label} against the reference",
        ),
        plot_difference_slices(
            diff,
            folder / "difference_slices.png",
            f"{label}: aligned - reference, low-passed to {lowpass_A:g} Å",
        ),
        plot_overlay_slices(
            reference.data,
            aligned,
            folder / "overlay_slices.png",
            f"{label}: reference magenta, aligned green",
        ),
    ]


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
