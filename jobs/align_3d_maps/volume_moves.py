"""Moving a volume's maps and mask by its transform onto the output grid (:mod:`.grids`), and
measuring how much of a map's content the move keeps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.jit import threads
from align3d.engine.alignment.resample import Owned
from align3d.engine.parallel.share import rebalance
from align3d.jobs.align_3d_maps.grids import CONTENT_FRACTION, OutputGrid
from align3d.jobs.align_3d_maps.reference import PreparedReference
from align3d.slots.mrc_stream import write_map_slabs


def balance() -> int:
    """Take this process's current share of the cores (more when other processes of the run
    have gone idle) for the next stage; returns the thread count for FFTs."""
    rebalance()
    return threads()


def reference_grid(reference: PreparedReference) -> OutputGrid:
    """The reference's box, voxel size (Å) and header, as an output grid."""
    return OutputGrid(reference.shape, reference.voxel_size_A, reference.header)


def write_moved_slabs(
    owned: Owned,
    voxel_in: tuple[float, float, float],
    t: RigidTransform,
    out: OutputGrid,
    path: Path,
    labels: list[str],
) -> Path:
    """Move a map of the volume (voxel size ``voxel_in``, Å; handed over) by ``t`` onto ``out`` and write it to ``path`` slab by slab as
    it is computed: the bytes go out while the next slab is interpolated, and the whole moved
    map is never in memory."""
    with sfft.set_workers(balance()):
        return write_map_slabs(
            path,
            out.shape,
            tuple(float(v) for v in out.voxel_size_A),  # type: ignore[arg-type]
            out.moved_slabs(owned, voxel_in, t),
            out.header.origin_A,
            out.header.nstart,
            labels,
        )


@dataclass(frozen=True)
class Content:
    """A map's content: density above ``threshold`` and its mass (sum x voxel volume)."""

    threshold: float
    mass: float

    def kept(self, moved: Content) -> float:
        """The share of this content that ``moved`` still has (1 when there is none)."""
        return moved.mass / self.mass if self.mass > 0 else 1.0


def content_of(
    volume: NDArray[np.float32], voxel_A: tuple[float, float, float], threshold: float | None = None
) -> Content:
    """The content of a map (voxel size ``voxel_A``, Å), from every 2nd voxel along each axis
    (1/8 of the memory of a mask; plenty for a share of the mass)."""
    sample = volume[::2, ::2, ::2]
    limit = CONTENT_FRACTION * float(volume.max()) if threshold is None else threshold
    mass = float(np.where(sample > limit, sample, 0.0).sum(dtype=np.float64))
    return Content(limit, mass * 8.0 * float(np.prod(voxel_A)))
