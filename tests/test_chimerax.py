"""ChimeraX placements (jobs/align_3d_maps/chimerax.py), checked numerically.

ChimeraX puts voxel ``i`` of a map at ``origin + i * voxel``; the matrix of ``view matrix``
must then put every voxel of the original moving map (or of its ``volume flip`` copy, z planes
reversed, same origin and voxel) where align3d's aligned map has the same value. Maps here sit
at non-zero header origins, with different voxel sizes and boxes (even and odd z), both hands.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.geometry import RigidTransform
from align3d.jobs.align_3d_maps.chimerax import (
    chimerax_origin_A,
    chimerax_script,
    grid_record,
    matrix_argument,
    placement,
    transform_of,
)
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.jobs.align_3d_maps.names import volume_folder
from align3d.schemas.documents import AlignmentRecord, GridRecord
from align3d.slots.mrc import MapHeader, read_map, write_map
from tests.apply_case import Case, case  # noqa: F401 - the session fixture
from tests.helpers import move_with_scipy

REF_SHAPE = (36, 40, 38)  # [z, y, x]
REF_VOXEL_A = 3.0
REF_ORIGIN_A = [12.5, -30.0, 7.25]
MOV_VOXEL_A = 2.6
MOV_ORIGIN_A = [-17.3, 40.2, 5.9]
TURN = Rotation.from_rotvec([0.4, -0.9, 0.3]).as_matrix()
SHIFT_A = [2.5, -1.0, 3.5]
TOLERANCE = 0.03
"""Largest difference (fraction of the map's maximum) between a voxel of the placed map and
the aligned map there: interpolation error only."""


def _grid(shape: tuple[int, int, int], voxel: float, origin: list[float]) -> GridRecord:
    return GridRecord(
        path="/x.mrc", box=list(shape[::-1]), voxel_size_A=[voxel] * 3, origin_A=origin
    )


def _worst_mismatch(
    shown: NDArray,
    shown_grid: GridRecord,
    matrix: NDArray,
    aligned: NDArray,
    aligned_grid: GridRecord,
) -> float:
    """Place the bright voxels of ``shown`` (a ChimeraX map model) by ``matrix`` and compare
    their values with ``aligned`` at the scene points they land on (ChimeraX's index rule on
    both); the largest difference, as a fraction of the maximum of ``shown``."""
    idx = np.argwhere(shown > 0.3 * shown.max())[:, ::-1]  # x, y, z
    X = np.asarray(shown_grid.origin_A) + idx * np.asarray(shown_grid.voxel_size_A)
    Y = X @ matrix[:, :3].T + matrix[:, 3]
    j = (Y - np.asarray(aligned_grid.origin_A)) / np.asarray(aligned_grid.voxel_size_A)
    inside = np.all((j > 2) & (j < np.asarray(aligned_grid.box) - 3), axis=1)
    assert inside.mean() > 0.9  # the content lands in the box, so the check is not vacuous
    values = ndi.map_coordinates(aligned.astype(np.float64), j[inside][:, ::-1].T, order=3)
    expected = shown[tuple(idx[inside][:, ::-1].T)]
    return float(np.abs(values - expected).max() / shown.max())


@pytest.mark.parametrize("shape", [(40, 38, 36), (41, 38, 37)], ids=["even-z", "odd-z"])
@pytest.mark.parametrize("flip", [False, True], ids=["same-hand", "flipped"])
def test_matrix_puts_the_moving_voxels_on_the_aligned_map(
    shape: tuple[int, int, int], flip: bool
) -> None:
    moving = protein_like_map(shape, MOV_VOXEL_A, seed=11)
    t = RigidTransform(TURN, SHIFT_A, flip)
    aligned = move_with_scipy(moving, MOV_VOXEL_A, t, REF_SHAPE, REF_VOXEL_A)
    mov = _grid(shape, MOV_VOXEL_A, MOV_ORIGIN_A)
    ref = _grid(REF_SHAPE, REF_VOXEL_A, REF_ORIGIN_A)
    placed = placement(t, mov, ref)
    assert np.linalg.det(placed.map_matrix[:, :3]) == pytest.approx(1.0)
    assert np.linalg.det(placed.model_matrix[:, :3]) == pytest.approx(-1.0 if flip else 1.0)
    shown = moving[::-1] if flip else moving  # ChimeraX's `volume flip` copy: z reversed
    assert _worst_mismatch(shown, mov, placed.map_matrix, aligned, ref) < TOLERANCE
    # atoms fitted into the original map: the model matrix on the original's voxels
    assert _worst_mismatch(moving, mov, placed.model_matrix, aligned, ref) < TOLERANCE
    # the check can fail: without the origins, the maps land tens of Å away
    no_origins = placement(t, _grid(shape, MOV_VOXEL_A, [0.0] * 3), ref)
    assert _worst_mismatch(shown, mov, no_origins.map_matrix, aligned, ref) > 5 * TOLERANCE
    if flip and shape[0] % 2 == 0:
        # and it sees one voxel: the copy's centre plane is not the original's for even z
        # (C_m in place of C'_m = C_m - p_z z: b' - R p_z z)
        naive = placed.map_matrix.copy()
        naive[:, 3] -= TURN[:, 2] * MOV_VOXEL_A
        assert _worst_mismatch(shown, mov, naive, aligned, ref) > 2 * TOLERANCE


@pytest.mark.parametrize("flip", [False, True])
def test_a_blob_lands_where_the_aligned_map_has_it(flip: bool) -> None:
    shape = (30, 33, 31)
    z, y, x = np.indices(shape)
    centre = np.array([17.0, 12.5, 19.0])  # z, y, x voxels, off the box centre
    blob = np.exp(-((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2) / 8.0)
    t = RigidTransform(TURN, SHIFT_A, flip)
    aligned = move_with_scipy(blob, MOV_VOXEL_A, t, REF_SHAPE, REF_VOXEL_A)
    mov = _grid(shape, MOV_VOXEL_A, MOV_ORIGIN_A)
    ref = _grid(REF_SHAPE, REF_VOXEL_A, REF_ORIGIN_A)
    placed = placement(t, mov, ref)
    shown = blob[::-1] if flip else blob
    X = np.asarray(MOV_ORIGIN_A) + np.array(ndi.center_of_mass(shown))[::-1] * MOV_VOXEL_A
    predicted = placed.map_matrix[:, :3] @ X + placed.map_matrix[:, 3]
    found = np.asarray(REF_ORIGIN_A) + np.array(ndi.center_of_mass(aligned))[::-1] * REF_VOXEL_A
    assert np.allclose(predicted, found, atol=0.05)


def test_known_answers_for_identity_and_a_flip_of_an_even_box() -> None:
    box = (4, 4, 4)
    ref = _grid(box, 1.0, [0.0, 0.0, 0.0])
    shifted = placement(RigidTransform(), _grid(box, 1.0, [10.0, 0.0, 0.0]), ref)
    assert np.allclose(shifted.map_matrix, [[1, 0, 0, -10], [0, 1, 0, 0], [0, 0, 1, 0]])
    # original voxel k sits at align3d z = k - 2, mirrored to 2 - k, at scene z = 4 - k; the
    # `volume flip` copy holds it at plane 3 - k: the copy moves up by one voxel
    flipped = placement(RigidTransform(flip=True), ref, ref)
    assert np.allclose(flipped.map_matrix, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]])
    assert np.allclose(flipped.model_matrix, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 4]])
    assert matrix_argument(flipped.model_matrix) == "1,0,0,0,0,1,0,0,0,0,-1,4"


@pytest.mark.parametrize(
    ("origin", "nstart", "axes", "stamp", "expected"),
    [
        ((1.0, 2.0, 3.0), (4, 5, 6), (1, 2, 3), True, (1.0, 2.0, 3.0)),  # MRC2000 origin wins
        ((0.0, 0.0, 0.0), (4, 5, 6), (1, 2, 3), True, (8.0, 10.0, 12.0)),  # unset: nstart
        ((1.0, 2.0, 3.0), (4, 5, 6), (1, 2, 3), False, (8.0, 10.0, 12.0)),  # not MRC2000
        ((float("nan"), 0.0, 0.0), (4, 5, 6), (1, 2, 3), True, (8.0, 10.0, 12.0)),
        ((0.0, 0.0, 0.0), (4, 5, 6), (3, 1, 2), True, (10.0, 12.0, 8.0)),  # columns are z
        ((0.0, 0.0, 0.0), (10**6, 5, 6), (1, 2, 3), True, (0.0, 0.0, 0.0)),  # implausible
    ],
)
def test_voxel_zero_follows_chimerax_rules(
    origin: tuple, nstart: tuple, axes: tuple, stamp: bool, expected: tuple
) -> None:
    header = MapHeader(origin, nstart)
    got = chimerax_origin_A(header, axes, (2.0, 2.0, 2.0), (40, 40, 40), stamp)
    assert np.allclose(got, expected)


def test_grid_record_reads_the_header(tmp_path: Path) -> None:
    volume = np.random.default_rng(0).normal(size=(6, 7, 8)).astype(np.float32)
    path = write_map(tmp_path / "a.mrc", volume, 1.5, MapHeader((3.0, -4.0, 5.5), (1, 2, 3)))
    grid = grid_record(path)
    assert grid.box == [8, 7, 6] and grid.voxel_size_A == [1.5] * 3
    assert grid.origin_A == [3.0, -4.0, 5.5] and grid.voxel_size_from_header
    raw = bytearray(path.read_bytes())
    raw[208:212] = b"\0\0\0\0"  # no MRC2000 stamp: ChimeraX reads nstart
    path.write_bytes(bytes(raw))
    assert grid_record(path).origin_A == [1.5, 3.0, 4.5]
    assert grid_record(path, 2.0).origin_A == [2.0, 4.0, 6.0]
    assert not grid_record(path, 2.0).voxel_size_from_header


def _record(index: int, t: RigidTransform, moving: GridRecord, ref: GridRecord) -> AlignmentRecord:
    return AlignmentRecord(
        index=index,
        rotation=t.rotation.tolist(),
        shift_A=t.shift_A.tolist(),
        hand_flipped=t.flip,
        matrix=t.matrix.tolist(),
        rotation_angle_deg=t.angle_deg,
        score=0.9,
        seconds=1.0,
        map_grid=moving,
        reference_grid=ref,
    )


def _view_matrices(text: str) -> dict[int, NDArray]:
    found = {}
    for line in text.splitlines():
        if line.startswith("view matrix models "):
            fields = line.split(" ", 3)[3].split(",")
            for k in range(0, len(fields), 13):
                found[int(fields[k].lstrip("#"))] = np.array(fields[k + 1 : k + 13], float)
    return {k: v.reshape(3, 4) for k, v in found.items()}


def test_script_opens_and_places_each_map() -> None:
    ref = _grid(REF_SHAPE, REF_VOXEL_A, REF_ORIGIN_A).model_copy(update={"path": "/d/ref.mrc"})
    one = _grid((40, 38, 36), MOV_VOXEL_A, MOV_ORIGIN_A).model_copy(update={"path": "/d/a b.mrc"})
    two = one.model_copy(update={"path": "/d/c.mrc", "voxel_size_from_header": False})
    same, mirror = RigidTransform(TURN, SHIFT_A), RigidTransform(TURN, SHIFT_A, True)
    text = chimerax_script([_record(1, same, one, ref), _record(3, mirror, two, ref)])
    lines = text.splitlines()
    assert [ln for ln in lines if ln.startswith("open ")] == [
        "open /d/ref.mrc format mrc",
        'open "/d/a b.mrc" format mrc',
        "open /d/c.mrc format mrc",
    ]
    assert "volume flip #3 modelId 4" in lines
    assert "volume #3 voxelSize 2.6,2.6,2.6" in lines
    assert "volume #3 origin -17.3,40.2,5.9" in lines
    assert lines.index("volume #3 origin -17.3,40.2,5.9") < lines.index("volume flip #3 modelId 4")
    matrices = _view_matrices(text)
    assert set(matrices) == {2, 4}  # volume 1 as #2; volume 3's flipped copy as #4
    assert np.allclose(matrices[2], placement(same, one, ref).map_matrix, atol=1e-8)
    assert np.allclose(matrices[4], placement(mirror, two, ref).map_matrix, atol=1e-8)
    assert all(ln.startswith("#") for ln in lines if "#M," in ln)  # model hints are comments


def test_job_script_places_the_original_maps_on_the_aligned_maps(case: Case) -> None:  # noqa: F811
    text = (case.folder / "chimerax.cxc").read_text()
    opened = re.findall(r"^open (\S+) format mrc$", text, flags=re.M)
    assert opened == [str(case.reference.resolve())] + [
        str(case.moving(i).resolve()) for i in (1, 2)
    ]
    matrices = _view_matrices(text)
    assert set(matrices) == {4, 3}  # volume 1 flipped (copy #4), volume 2 as it is (#3)
    assert "volume flip #2 modelId 4" in text
    for index, model in ((1, 4), (2, 3)):
        record = case.record(index)
        assert np.allclose(
            matrices[model],
            placement(transform_of(record), record.map_grid, record.reference_grid).map_matrix,
            atol=1e-8,
        )
        moving = read_map(case.moving(index)).data
        aligned_path = case.folder / volume_folder(index) / "map.mrc"
        shown = moving[::-1] if record.hand_flipped else moving
        worst = _worst_mismatch(
            shown,
            grid_record(case.moving(index)),
            matrices[model],
            read_map(aligned_path).data,
            grid_record(aligned_path),  # the job's output, read as ChimeraX reads it
        )
        assert worst < 2 * TOLERANCE
