"""The reference of a job, read and transformed once per worker process, not once per volume.

Every volume of a job is aligned onto the same reference and compared with it (FSC, difference
map), so each process keeps the last reference it prepared, keyed by the files' identity (path,
size, mtime, ctime): the tasks of a job that land on one process read and transform the
reference once. What is kept is what the volumes need, not the map itself: its spectrum (for
the FSC and the difference map), the prepared search input (the masked spectrum; the same one
when there is no mask), the grid and header of the outputs, and its central slices (overlay).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.align import prepare_reference
from align3d.engine.alignment.jit import threads
from align3d.engine.alignment.masks import mask_value_problem
from align3d.engine.alignment.preprocess import SourceMap
from align3d.jobs.align_3d_maps.early_reads import ReferenceRead
from align3d.jobs.align_3d_maps.slices import Slices
from align3d.slots.errors import MapReadError
from align3d.slots.mrc import MapHeader, read_map


@dataclass(frozen=True)
class PreparedReference:
    """What the volumes of a job need of their reference."""

    shape: tuple[int, int, int]
    voxel_size_A: tuple[float, float, float]
    header: MapHeader
    spectrum: NDArray[np.complex64]
    search: SourceMap
    slices: Slices


def _identity(path: Path | None) -> tuple[str, int, int, int] | None:
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise MapReadError(f"{path}: file not found ({exc.strerror})") from exc
    return (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def reference_for(
    path: Path,
    voxel_A: float | None,
    mask: Path | None,
    mask_voxel_A: float | None,
    read: ReferenceRead | None = None,
) -> PreparedReference:
    """The prepared reference (kept for the next volume of this process). ``read``: the
    reference's file read already (:class:`~align3d.jobs.align_3d_maps.early_reads.EarlyReads`, a
    reference without a mask)."""
    if read is not None:
        if mask is not None:
            raise ValueError("a reference read early is prepared without its mask")
        return _assembled(read, None)
    return _prepared(_identity(path), voxel_A, _identity(mask), mask_voxel_A)


def _assembled(read: ReferenceRead, search: SourceMap | None) -> PreparedReference:
    """The prepared reference from its file's read; ``search``: the masked search input (None:
    the map as it is, whose spectrum is the one read)."""
    if search is None:
        search = SourceMap(read.spectrum, read.shape, np.array(read.voxel_size_A), None)
    return PreparedReference(
        read.shape, read.voxel_size_A, read.header, read.spectrum, search, read.slices
    )


@lru_cache(maxsize=1)
def _prepared(
    reference: tuple[str, int, int, int] | None,
    voxel_A: float | None,
    mask: tuple[str, int, int, int] | None,
    mask_voxel_A: float | None,
) -> PreparedReference:
    assert reference is not None
    data = read_map(reference[0], voxel_A)
    read = ReferenceRead.of(data, threads())
    if mask is None:
        return _assembled(read, None)
    mask_data = read_map(mask[0], mask_voxel_A, constant_ok=True).data
    problem = mask_value_problem(mask_data)
    if problem is not None:
        raise MapReadError(f"{mask[0]}: {problem}")
    return _assembled(read, prepare_reference(data.data, voxel_A=data.voxel_size_A, mask=mask_data))
