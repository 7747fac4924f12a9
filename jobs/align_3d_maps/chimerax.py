"""Placing the original maps (and models fitted into them) onto the reference in UCSF ChimeraX.

align3d works about box centres; ChimeraX about header origins. This module turns a volume's
transform into the 3x4 matrix of ``view matrix models #N,m11,...,m34`` and writes the job's
``chimerax.cxc``, which opens the reference and the original maps and places them.

Derivation (vectors ``(x, y, z)`` in Å, ``*`` elementwise):

* ChimeraX puts voxel ``i`` (x, y, z indices) of an MRC map at model coordinate
  ``X = o + i * p``: ``p`` the voxel size, ``o`` the origin, which is the header origin
  (words 50-52) when the file is MRC2000 (stamp ``MAP ``) and that origin is non-zero and
  finite, else nstart (permuted by MAPC/MAPR/MAPS) times ``p`` (``mrc_format.py`` of ChimeraX;
  never the sum of both). ``open ... format mrc`` makes ChimeraX read the header as MRC
  whatever the suffix (with ``.map`` it would read CCP4 and ignore the origin).
* align3d puts the same voxel at ``x = (i - N // 2) * p`` (docs/conventions.md#the-box-centre),
  so ``x = X - C`` with the box centre ``C = o + (N // 2) * p``; likewise ``y = Y - C_r`` on the
  reference, which ChimeraX leaves at the identity (scene = its model coordinates).
* A volume's transform maps ``x`` to ``y = R F^f x + t`` (``F = diag(1, 1, -1)``, ``f`` the hand
  flip). ``Y - C_r = R F^f (X - C_m) + t`` for every ``X`` gives the placement of the original
  map and of atoms fitted into it (their coordinates are in the same frame ``X``)::

      Y = A X + b,   A = R F^f,   b = C_r + t - R F^f C_m.

  ``view matrix`` sets the model's position (scene = M * model coordinates); its 12 numbers
  are ``A`` and ``b`` row by row: ``A11, A12, A13, b1, A21, ..., b3``.
* Without a flip, ``A = R`` is a proper rotation: the map and its models take this matrix.
* With a flip, ``A`` has determinant -1: ChimeraX would accept it but render the map's surface
  inside out. ``volume flip #N`` (axis z by default) makes a new model holding voxel
  ``N_z - 1 - k`` at plane ``k``, with the same origin and voxel size (ChimeraX's ``flip.py``):
  a point ``X`` of the original is at ``X' = F X + s`` in the copy, ``s = (0, 0, 2 o_z +
  (N_z - 1) p_z)``. Then ``F (X - C_m) = X' - C'_m`` with ``C'_m = (C_x, C_y, o_z + (N_z - 1 -
  N_z // 2) p_z)``, the copy's voxel that holds the original's centre voxel (equal to ``C_m``
  for odd ``N_z``, one voxel below for even ``N_z``). So the copy takes the proper matrix::

      Y = R X' + b',   b' = C_r + t - R C'_m.

  Atoms fitted into the original map still need ``[R F | b]`` (det -1: the model comes out
  mirrored, its hand inverted, as the map's is). ``align3d apply --model`` writes such a
  moved copy.
* A voxel size given to align3d in place of the header's (``voxel_size_A``) is told to ChimeraX
  first: ``volume #N voxelSize p`` (which keeps the origin index), then ``volume #N origin o``.

The same matrix moves models (:mod:`.apply_command`); tests check it against the job's maps.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.geometry import FLIP, RigidTransform
from align3d.engine.version import align3d_version
from align3d.jobs.align_3d_maps.names import CHIMERAX_SCRIPT
from align3d.schemas.documents import AlignmentRecord, GridRecord
from align3d.slots.atomic import atomic_write
from align3d.slots.mrc import MapHeader, has_map_stamp, read_grid
from align3d.slots.payloads import MapRole

logger = logging.getLogger(__name__)


def chimerax_origin_A(
    header: MapHeader,
    axes: tuple[int, int, int],
    voxel_size_A: Sequence[float],
    box: Sequence[int],
    mrc2000: bool,
) -> NDArray[np.float64]:
    """Where ChimeraX puts voxel 0 of an MRC map, Å ``(x, y, z)``.

    ``header``: the file's origin (Å) and raw ``(nxstart, nystart, nzstart)`` (file column,
    row, section order); ``axes``: MAPC, MAPR, MAPS; ``box``: voxels ``(x, y, z)``;
    ``mrc2000``: whether the header has the ``MAP `` stamp. The header origin wins when set
    and usable; else nstart, in map axes, times the voxel size (0 when implausibly large).
    """
    step = np.asarray(voxel_size_A, dtype=np.float64)
    origin = np.asarray(header.origin_A, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        o32, s32 = origin.astype(np.float32), step.astype(np.float32)
        usable = bool(np.all(np.isfinite(origin)) and not np.any(o32 + s32 == o32))
    if mrc2000 and np.any(origin != 0) and usable:
        return origin
    crs_to_xyz = [a - 1 for a in axes] if sorted(axes) == [1, 2, 3] else [0, 1, 2]
    xyz_to_crs = [crs_to_xyz.index(a) for a in range(3)]
    start = np.array([header.nstart[xyz_to_crs[a]] for a in range(3)], dtype=np.float64)
    if np.any(np.abs(start) > 10 * max(box)):
        start[:] = 0.0
    return start * step


def grid_record(path: str | os.PathLike, voxel_size_A: float | None = None) -> GridRecord:
    """A map's grid as ChimeraX places it (its header only is read). ``voxel_size_A``: the
    voxel size align3d used in place of the header's, if any (Å)."""
    grid = read_grid(path, voxel_size_A)
    box = grid.shape[::-1]
    origin = chimerax_origin_A(grid.header, grid.axes, grid.voxel_size_A, box, has_map_stamp(path))
    return GridRecord(
        path=str(Path(path).resolve()),
        box=list(box),
        voxel_size_A=[float(v) for v in grid.voxel_size_A],
        origin_A=[float(v) for v in origin],
        voxel_size_from_header=voxel_size_A is None,
    )


class GridSource(Protocol):
    """Where a volume's maps came from (a :class:`.task.VolumeTask` is one): its maps by name
    (``map`` at least), the reference map, and the voxel sizes (Å) given in place of headers."""

    @property
    def maps(self) -> Mapping[MapRole, Path]: ...
    @property
    def reference_map(self) -> Path: ...
    @property
    def voxel_size_A(self) -> float | None: ...
    @property
    def reference_voxel_A(self) -> float | None: ...


def with_grids(record: AlignmentRecord, source: GridSource) -> AlignmentRecord:
    """``record`` with the grids of its volume's map and of the reference (headers read)."""
    return record.model_copy(
        update={
            "map_grid": grid_record(source.maps[MapRole.MAP], source.voxel_size_A),
            "reference_grid": grid_record(source.reference_map, source.reference_voxel_A),
        }
    )


def centre_A(grid: GridRecord) -> NDArray[np.float64]:
    """Model coordinate (Å) of the box-centre voxel ``N // 2``: align3d's ``x = 0``."""
    n = np.asarray(grid.box)
    return np.asarray(grid.origin_A) + (n // 2) * np.asarray(grid.voxel_size_A)


def flipped_centre_A(grid: GridRecord) -> NDArray[np.float64]:
    """The same point in the copy that ``volume flip`` (axis z) makes: the copy's voxel
    ``(N_x // 2, N_y // 2, N_z - 1 - N_z // 2)``."""
    centre = centre_A(grid)
    nz, pz = grid.box[2], grid.voxel_size_A[2]
    centre[2] = grid.origin_A[2] + (nz - 1 - nz // 2) * pz
    return centre


@dataclass(frozen=True)
class Placement:
    """ChimeraX placements of one volume (3x4 ``[A | b]``, scene = A X + b, Å).

    ``map_matrix`` places the original map, or with ``flip`` its ``volume flip`` copy (a
    proper rotation either way); ``model_matrix`` places atoms fitted into the original map
    (``[R F^f | b]``: determinant -1 with ``flip``)."""

    map_matrix: NDArray[np.float64]
    model_matrix: NDArray[np.float64]
    flip: bool


def placement(transform: RigidTransform, moving: GridRecord, reference: GridRecord) -> Placement:
    """The matrices that put ``moving`` (and models in its frame) where align3d's
    ``transform`` puts it on ``reference`` (see the module's derivation)."""
    c_r = centre_A(reference)
    t = np.asarray(transform.shift_A)
    linear = transform.rotation @ FLIP if transform.flip else transform.rotation
    model = np.hstack([linear, (c_r + t - linear @ centre_A(moving))[:, None]])
    if not transform.flip:
        return Placement(model, model, False)
    rotation = transform.rotation
    copy = np.hstack([rotation, (c_r + t - rotation @ flipped_centre_A(moving))[:, None]])
    return Placement(copy, model, True)


def transform_of(record: AlignmentRecord) -> RigidTransform:
    """A volume's transform from its result.json record (the job's numbers, unrounded)."""
    return RigidTransform(record.rotation, record.shift_A, record.hand_flipped)


def matrix_argument(matrix: NDArray[np.float64]) -> str:
    """The 12 numbers of a 3x4 matrix, row by row, comma-separated without spaces (ChimeraX's
    ``view matrix`` syntax), to 10 significant digits."""
    values = np.asarray(matrix, dtype=np.float64).reshape(3, 4).ravel()
    return ",".join(f"{v:.10g}" for v in values + 0.0)  # + 0.0: no "-0"


def _numbers(values: Sequence[float]) -> str:
    return ",".join(f"{v:.10g}" for v in values)


def _path(path: str) -> str:
    return f'"{path}"' if any(ch.isspace() for ch in path) else path


def _grid_fix(model: int, grid: GridRecord) -> list[str]:
    """Commands that give ChimeraX the voxel size align3d used instead of the header's."""
    if grid.voxel_size_from_header:
        return []
    return [
        f"# align3d used voxel size {_numbers(grid.voxel_size_A)} Å, not the header's:",
        f"volume #{model} voxelSize {_numbers(grid.voxel_size_A)}",
        f"volume #{model} origin {_numbers(grid.origin_A)}",
    ]


def chimerax_script(
    records: Sequence[AlignmentRecord], aligned_maps: Mapping[int, str] | None = None
) -> str:
    """The ``.cxc`` text that opens the reference (#1) and each volume's original map (#2,
    #3, ... in the records' order) and places them; ``aligned_maps``: index -> the aligned
    map's path relative to the script's folder, named in comments for comparison. Records
    without grids (from an older result.json) are skipped."""
    usable = [r for r in records if r.map_grid is not None and r.reference_grid is not None]
    if not usable:
        return ""
    reference = usable[0].reference_grid
    assert reference is not None
    lines = [
        f"# UCSF ChimeraX commands written by align3d {align3d_version()} (Align 3D Maps):",
        "# open the reference (#1) and the original maps, then place each map onto the",
        "# reference by its alignment. view matrix models #N,<12 numbers>: the 3x4 matrix",
        "# [A | b] row by row; scene position = A X + b, X the map's own coordinates (Å, voxel",
        "# 0 at the header origin). Run it in a new session: it closes every model first.",
        "close",
        f"open {_path(reference.path)} format mrc",
        *_grid_fix(1, reference),
    ]
    models = {}
    for k, record in enumerate(usable):
        grid = record.map_grid
        assert grid is not None
        models[record.index] = k + 2
        lines += [
            f"# #{k + 2}: volume {record.index}, as it was given",
            f"open {_path(grid.path)} format mrc",
            *_grid_fix(k + 2, grid),
        ]
    spare = len(usable) + 2
    for record in usable:
        assert record.map_grid is not None and record.reference_grid is not None
        model = models[record.index]
        t = transform_of(record)
        placed = placement(t, record.map_grid, record.reference_grid)
        shift = ", ".join(f"{v:.3f}" for v in t.shift_A)
        lines.append(
            f"# volume {record.index} (#{model}): rotation {t.angle_deg:.2f}°, shift ({shift}) Å, "
            f"hand flipped: {'yes' if t.flip else 'no'}"
        )
        if aligned_maps and record.index in aligned_maps:
            lines.append(
                "#   placed, it overlays the map align3d aligned (to compare: open "
                f"{_path(aligned_maps[record.index])} format mrc)"
            )
        if placed.flip:
            lines += [
                "#   hand flipped: a matrix with a mirror (determinant -1) would render the map",
                f"#   inside out, so 'volume flip' first makes #{spare}, the map mirrored through its",
                "#   central z plane (ChimeraX keeps its origin and voxel size and reverses the z",
                f"#   planes), and a proper rotation (determinant +1) then places #{spare}",
                f"volume flip #{model} modelId {spare}",
                f"view matrix models #{spare},{matrix_argument(placed.map_matrix)}",
                "#   a model fitted into the original map needs the mirror as well (determinant",
                "#   -1, its hand inverted): view matrix models #M,"
                + matrix_argument(placed.model_matrix),
            ]
            spare += 1
        else:
            lines += [
                f"view matrix models #{model},{matrix_argument(placed.map_matrix)}",
                "#   a model fitted into the original map (opened as #M) takes the same matrix:",
                f"#   view matrix models #M,{matrix_argument(placed.model_matrix)}",
            ]
        lines.append(
            f"#   or write a moved copy: align3d apply result.json --volume {record.index} "
            "--model IN.cif --out OUT.cif (in this folder)"
        )
    lines.append("view")
    return "\n".join(lines) + "\n"


def write_chimerax_script(
    folder: Path, records: Sequence[AlignmentRecord], aligned_maps: Mapping[int, str] | None = None
) -> Path | None:
    """Write ``folder/chimerax.cxc`` atomically (see :func:`chimerax_script`); None when no
    record has grids."""
    text = chimerax_script(records, aligned_maps)
    if not text:
        logger.warning("no volume records its grids: %s not written", CHIMERAX_SCRIPT)
        return None
    return atomic_write(folder / CHIMERAX_SCRIPT, lambda tmp: tmp.write_text(text))
