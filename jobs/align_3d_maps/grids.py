"""Where a volume's moved maps go, and what that grid costs them.

* ``reference`` (the default): the reference's box, voxel size and header. A map on a finer
  grid is band-limited to the reference's Nyquist first (:func:`align3d.engine.alignment.resample.move_map`),
  and the job warns that detail finer than that is gone; content moved beyond the box is cut,
  and the job warns too.
* ``own``: each map's own voxel size, in a box that holds its content after the move, centred on
  the reference's frame; the header origin puts it where the reference is (ChimeraX reads voxel
  0 at the origin), so the two overlay.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from align3d.engine.alignment.geometry import RigidTransform, box_centre
from align3d.engine.alignment.resample import (
    GridMove,
    Owned,
    move_map,
    move_map_slabs,
    resample_map,
)
from align3d.jobs.align_3d_maps.params import OutputGridChoice
from align3d.slots.mrc import MapHeader

CONTENT_FRACTION = 0.05
"""Density above this fraction of a map's maximum is its content (for the box that holds it,
and for what a box cuts)."""
COARSER_WARNING = 1.2
"""Warn when the output voxel is this much coarser than a map's own (a 2.8 Å map on a 3 Å grid
loses next to nothing; a 0.83 Å refinement on a 1.66 Å consensus loses its high resolution)."""
KEPT_WARNING = 0.98
"""Warn when less than this share of a map's content lands inside its output box."""


@dataclass(frozen=True)
class OutputGrid:
    """A grid the moved maps are written on: shape (voxels ``[z, y, x]``), voxel size (Å,
    ``x, y, z``) and the header that places it."""

    shape: tuple[int, int, int]
    voxel_size_A: tuple[float, float, float]
    header: MapHeader

    def move(self, voxel_A: ArrayLike, t: RigidTransform) -> GridMove:
        """A volume of ``voxel_A`` Å moved by ``t`` onto this grid."""
        return GridMove(
            transform=t, in_voxel_A=voxel_A, out_shape=self.shape, out_voxel_A=self.voxel_size_A
        )

    def moved(self, volume: NDArray | Owned, voxel_A: ArrayLike, t: RigidTransform) -> NDArray:
        """``volume`` (of ``voxel_A`` Å) moved by ``t`` onto this grid (:func:`move_map`)."""
        return move_map(volume, self.move(voxel_A, t))

    def moved_slabs(
        self, volume: NDArray | Owned, voxel_A: ArrayLike, t: RigidTransform
    ) -> Iterator[NDArray[np.float32]]:
        """:meth:`moved` in ``z`` slabs as they are computed (:func:`move_map_slabs`)."""
        return move_map_slabs(volume, self.move(voxel_A, t))

    def moved_mask(self, volume: NDArray, voxel_A: ArrayLike, t: RigidTransform) -> NDArray:
        """A mask (of ``voxel_A`` Å) moved by ``t`` onto this grid, trilinear (stays in [0, 1])."""
        return resample_map(volume, self.move(voxel_A, t), kind="mask")


def voxel_zero_A(header: MapHeader, voxel_A: tuple[float, float, float]) -> NDArray[np.float64]:
    """Where voxel 0 of a map sits (Å, x y z), as ChimeraX reads MRC files: the header origin
    when set, else nstart voxels."""
    origin = np.array(header.origin_A, dtype=np.float64)
    if np.any(origin != 0):
        return origin
    return np.array(header.nstart, dtype=np.float64) * np.array(voxel_A)


def content_radius_A(volume: NDArray[np.float32], voxel_A: tuple[float, float, float]) -> float:
    """How far from the box centre the map's content reaches (Å; a coarse look every 4th voxel)."""
    step = 4
    sample = volume[::step, ::step, ::step]
    where = np.argwhere(sample > CONTENT_FRACTION * float(volume.max()))
    if where.size == 0:
        return 0.0
    centre = box_centre(volume.shape)[::-1]  # z, y, x
    offsets = (where * step - centre) * np.array(voxel_A)[::-1]
    return float(np.sqrt((offsets**2).sum(axis=1)).max()) + step * float(max(voxel_A))


def own_grid(
    reference_shape: tuple[int, int, int],
    reference_voxel_A: tuple[float, float, float],
    reference_header: MapHeader,
    moving_shape: tuple[int, int, int],
    moving_voxel_A: tuple[float, float, float],
    transform: RigidTransform,
    radius_A: float,
) -> OutputGrid:
    """The map's own voxel size and a box (cubic, even) that holds its content after the move,
    with the origin that overlays it on the reference."""
    p = float(max(moving_voxel_A))
    reach = radius_A + float(np.linalg.norm(transform.shift_A)) + 2.0 * p
    size = max(max(moving_shape), int(np.ceil(2.0 * reach / p)))
    size += size % 2
    shape = (size, size, size)
    ref_centre_A = voxel_zero_A(reference_header, reference_voxel_A) + box_centre(
        reference_shape
    ) * np.array(reference_voxel_A)
    origin = ref_centre_A - box_centre(shape) * p
    header = MapHeader(tuple(float(v) for v in origin), (0, 0, 0))  # type: ignore[arg-type]
    return OutputGrid(shape, (p, p, p), header)


def grid_warnings(
    index: int,
    moving_voxel_A: tuple[float, float, float],
    out: OutputGrid,
    kept: float,
    output_grid: OutputGridChoice,
) -> list[str]:
    """What the output grid costs volume ``index``'s maps, in words."""
    warnings = []
    p_in, p_out = float(max(moving_voxel_A)), float(max(out.voxel_size_A))
    if p_out > COARSER_WARNING * p_in:
        warnings.append(
            f"volume {index}: its maps ({p_in:.3g} Å voxels, Nyquist {2 * p_in:.3g} Å) are moved "
            f"onto the reference's grid of {p_out:.3g} Å voxels: detail finer than "
            f"{2 * p_out:.3g} Å (that grid's Nyquist), if the maps have any, is removed (low-passed, "
            "not aliased); output_grid = 'own' keeps each map's own voxel size"
        )
    if kept < KEPT_WARNING:
        warnings.append(
            f"volume {index}: only {100 * kept:.0f}% of its density lands inside the output box "
            f"{out.shape[::-1]}: the rest is cut off; output_grid = 'own' uses a box that holds it"
            if output_grid == "reference"
            else f"volume {index}: only {100 * kept:.0f}% of its density lands inside its box"
        )
    return warnings
