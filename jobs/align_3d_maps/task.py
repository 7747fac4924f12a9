"""One volume's alignment as a self-contained task: paths in, paths and numbers out.

Tasks are what runs in parallel (local processes or Dask workers): each reads its own files,
aligns, moves every map of its volume and its mask, draws its figures, and returns a small,
picklable :class:`VolumeResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import scipy.fft as sfft

from align3d.engine.alignment.align import AlignmentResult
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.jit import threads
from align3d.engine.alignment.params import AlignmentParams
from align3d.jobs.align_3d_maps.diagnostics import volume_figures
from align3d.jobs.align_3d_maps.difference_map import Diagnostics
from align3d.jobs.align_3d_maps.record import alignment_record
from align3d.jobs.align_3d_maps.reference import reference_for
from align3d.jobs.align_3d_maps.volume import align_volume
from align3d.schemas.documents import AlignmentRecord
from align3d.slots.payloads import MapRole


@dataclass(frozen=True)
class VolumeTask:
    """Everything one volume's alignment needs (all paths absolute)."""

    index: int
    reference_map: Path
    reference_voxel_A: float | None
    reference_mask: Path | None
    reference_mask_voxel_A: float | None
    maps: dict[MapRole, Path]
    out_files: dict[MapRole, Path]
    mask: Path | None
    mask_voxel_A: float | None
    voxel_size_A: float | None
    params: AlignmentParams
    use_masks: bool
    diagnostics: bool
    folder: Path
    output_grid: str = "reference"
    fixed: AlignmentResult | None = None
    """An alignment already found (a symmetry mate chosen for the whole job): the task moves
    the volume by it instead of searching."""

    def voxels(self) -> int:
        """Voxels of the reference and of the volume's map (for the memory estimate)."""
        from align3d.slots.mrc import read_header_shape

        def count(path: Path) -> int:
            z, y, x = read_header_shape(path)
            return z * y * x

        return count(self.reference_map) + count(self.maps[MapRole.MAP])


@dataclass(frozen=True)
class VolumeResult:
    """What one volume's task returns (small and picklable): its written files by map name, its
    transform, the record that the log, the report and result.json show, and its figures."""

    index: int
    files: dict[MapRole, Path]
    transform: RigidTransform
    record: AlignmentRecord
    figures: list[Path]
    alignment: AlignmentResult


def align_one(task: VolumeTask, progress: Callable[[str], None] | None = None) -> VolumeResult:
    """Run one volume's task (on whichever worker it landed). FFTs use the process's numba
    thread count (its share of the cores), outside the search as well."""
    with sfft.set_workers(threads()):
        return _align_one(task, progress)


def _align_one(task: VolumeTask, progress: Callable[[str], None] | None) -> VolumeResult:
    start = time.perf_counter()
    reference = reference_for(
        task.reference_map,
        task.reference_voxel_A,
        task.reference_mask if task.use_masks else None,
        task.reference_mask_voxel_A,
    )
    lowpass = task.params.lowpass_resolution_A
    outcome = align_volume(
        reference,
        task.maps,
        task.out_files,
        task.params,
        task.mask,
        task.voxel_size_A,
        task.use_masks,
        progress=progress,
        mask_voxel_A=task.mask_voxel_A,
        fixed=task.fixed,
        output_grid=task.output_grid,
        diagnostics=Diagnostics(task.folder / "difference_map.mrc", lowpass)
        if task.diagnostics
        else None,
        index=task.index,
    )
    figures = volume_figures(outcome, task.folder, task.index) if task.diagnostics else []
    record = alignment_record(
        task.index, outcome, task.params.symmetry, time.perf_counter() - start
    )
    return VolumeResult(
        task.index, outcome.files, outcome.alignment.transform, record, figures, outcome.alignment
    )
