"""Reading the other files of a volume (sharpened map, half maps, mask), each checked against
the grid of the volume's map as it is read."""

from __future__ import annotations

from pathlib import Path

from align3d.engine.alignment.masks import mask_value_problem
from align3d.slots.errors import MapReadError
from align3d.slots.mrc import MapData, MapGrid, grid_problem, read_map
from align3d.slots.payloads import MapRole


def read_alongside(
    path: Path, main: MapData | MapGrid, main_path: Path, role: MapRole, voxel: float | None
) -> MapData:
    """Read a map of the volume (or its mask) that must share the grid of the volume's map
    ``main`` (read from ``main_path``), checking its values as it is read. ``voxel``: the voxel
    size (Å) overriding the file's header, or None. A mismatch raises :class:`MapReadError`
    naming both files and what to do."""
    other = read_map(path, voxel, constant_ok=role == MapRole.MASK)
    problem = grid_problem(other, path, main, main_path, role)
    if problem is None and role == MapRole.MASK:
        values = mask_value_problem(other.data)
        problem = None if values is None else f"{path}: {values}"
    if problem is not None:
        raise MapReadError(problem)
    return other
