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
from typing import TypeVar

import scipy.fft as sfft

from align3d.engine.alignment.align import AlignmentResult
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.jit import threads
from align3d.jobs.align_3d_maps.diagnostics import volume_figures
from align3d.jobs.align_3d_maps.difference_map import Diagnostics
from align3d.jobs.align_3d_maps.names import map_file
from align3d.jobs.align_3d_maps.params import AlignParams
from align3d.jobs.align_3d_maps.record import alignment_record
from align3d.jobs.align_3d_maps.reference import reference_for
from align3d.jobs.align_3d_maps.volume import align_volume
from align3d.schemas.documents import AlignmentRecord
from align3d.slots.payloads import MapRole, MaskPayload, VolumePayload

PayloadT = TypeVar("PayloadT", VolumePayload, MaskPayload)


@dataclass(frozen=True, kw_only=True)
class VolumeTask:
    """Everything one volume's alignment needs, as the job was given it: the reference (and its
    mask), the volume and the mask that goes with it, the job's parameters, and the folder its
    files go to (all paths absolute: :func:`absolute`)."""

    index: int
    reference: VolumePayload
    reference_mask: MaskPayload | None
    volume: VolumePayload
    mask: MaskPayload | None
    params: AlignParams
    folder: Path
    fixed: AlignmentResult | None = None
    """An alignment already found (a symmetry mate chosen for the whole job): the task moves
    the volume by it instead of searching."""

    @property
    def maps(self) -> dict[MapRole, Path]:
        """The volume's maps by role (``map`` at least)."""
        return self.volume.maps()

    @property
    def out_files(self) -> dict[MapRole, Path]:
        """Where each moved map (and the moved mask) goes, in the volume's folder."""
        return {role: self.folder / map_file(role) for role in [*self.maps, MapRole.MASK]}

    @property
    def reference_map(self) -> Path:
        return self.reference.map

    @property
    def reference_voxel_A(self) -> float | None:
        """The reference's voxel size given in place of its header's (Å), if any."""
        return self.reference.voxel_size_A

    @property
    def voxel_size_A(self) -> float | None:
        """The volume's voxel size given in place of its headers' (Å), if any."""
        return self.volume.voxel_size_A

    def voxels(self) -> int:
        """Voxels of the reference and of the volume's map (for the memory estimate)."""
        from align3d.slots.mrc import read_header_shape

        def count(path: Path) -> int:
            z, y, x = read_header_shape(path)
            return z * y * x

        return count(self.reference_map) + count(self.maps[MapRole.MAP])


def absolute(payload: PayloadT) -> PayloadT:
    """``payload`` (a volume or a mask) with every path made absolute (resolved)."""
    paths = {name: Path(value).resolve() for name, value in payload if isinstance(value, Path)}
    return payload.model_copy(update=paths)


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
    params = task.params
    ref_mask = task.reference_mask
    reference = reference_for(
        task.reference_map,
        task.reference_voxel_A,
        ref_mask.path if ref_mask is not None and params.apply_mask_to_volumes else None,
        None if ref_mask is None else ref_mask.voxel_size_A,
    )
    difference_map = task.folder / map_file(MapRole.DIFFERENCE_MAP)
    outcome = align_volume(
        reference,
        task.maps,
        task.out_files,
        params.alignment(),
        None if task.mask is None else task.mask.path,
        task.voxel_size_A,
        params.apply_mask_to_volumes,
        progress=progress,
        mask_voxel_A=None if task.mask is None else task.mask.voxel_size_A,
        fixed=task.fixed,
        output_grid=params.output_grid,
        diagnostics=Diagnostics(difference_map, params.lowpass_resolution_A)
        if params.log_diagnostics
        else None,
        index=task.index,
    )
    figures = volume_figures(outcome, task.folder, task.index) if params.log_diagnostics else []
    record = alignment_record(
        task.index, outcome, task.params.symmetry, time.perf_counter() - start
    )
    return VolumeResult(
        task.index, outcome.files, outcome.alignment.transform, record, figures, outcome.alignment
    )
