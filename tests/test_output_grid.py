"""Moving maps onto another grid keeps what the grid can carry, and says what it cannot (issue 13).

* A map moved onto a coarser grid agrees with the ideal anti-aliased downsample (the moved map
  Fourier-cropped): FSC >= 0.95 to 6 Å and >= 0.8 at 4.2-6 Å on a 2 Å grid.
* Half maps keep their FSC: after the move, the resolution where the half-map FSC falls below
  0.143 is within one shell of where it was.
* ``output_grid = "own"`` keeps each map's own voxel size, in a box that holds it, placed on the
  reference by the header origin; on a coarser reference grid the job warns that detail is lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.fourier import fourier_resize
from align3d.engine.alignment.fsc import FSCCurve, fsc
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.resample import GridMove, move_map, resample_map
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import read_map, write_map
from tests.helpers import cli, move_with_scipy

TURN = RigidTransform(Rotation.from_rotvec([0.3, -0.5, 0.8]).as_matrix(), [1.3, -2.1, 0.7])


@pytest.fixture(scope="module")
def fine() -> np.ndarray:
    """A 1 Å map with detail to about 2.2 Å."""
    return protein_like_map((128, 128, 128), 1.0, blur_A=0.7, seed=4)


def _band(curve: FSCCurve, low_A: float, high_A: float) -> np.ndarray:
    resolution = 1.0 / np.maximum(curve.frequency, 1e-9)
    return curve.fsc[(resolution >= high_A) & (resolution < low_A)]


@pytest.mark.parametrize("transform", [RigidTransform(), TURN], ids=["identity", "turned"])
def test_a_map_moved_onto_a_coarser_grid_is_not_aliased(
    fine: np.ndarray, transform: RigidTransform
) -> None:
    moved_fine = resample_map(
        fine, GridMove(transform=transform, in_voxel_A=1.0, out_shape=fine.shape, out_voxel_A=1.0)
    )
    ideal, _ = fourier_resize(moved_fine, voxel_A=1.0, new_shape=(64, 64, 64))
    moved = move_map(
        fine, GridMove(transform=transform, in_voxel_A=1.0, out_shape=(64, 64, 64), out_voxel_A=2.0)
    )
    curve = fsc(moved, ideal, voxel_A=2.0)
    assert _band(curve, 50.0, 6.0).min() >= 0.95
    assert _band(curve, 6.0, 4.2).min() >= 0.8
    # plain cubic interpolation, as before, folds the finer detail back (the failure fixed)
    aliased = fsc(
        resample_map(
            fine,
            GridMove(transform=transform, in_voxel_A=1.0, out_shape=(64, 64, 64), out_voxel_A=2.0),
        ),
        ideal,
        voxel_A=2.0,
    )
    assert _band(aliased, 6.0, 4.2).min() < _band(curve, 6.0, 4.2).min() - 0.1


def _shell_of(curve: FSCCurve) -> float:
    """The (fractional) shell where a half-map FSC falls below 0.143."""
    return 1.0 / curve.resolution_at(0.143) / curve.frequency[1]


def _halves(fine: np.ndarray, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    noise = 0.6 * float(fine.std())
    a = fine + noise * rng.standard_normal(fine.shape).astype(np.float32)
    b = fine + noise * rng.standard_normal(fine.shape).astype(np.float32)
    return a.astype(np.float32), b.astype(np.float32)


def _job(folder: Path, fine: np.ndarray, ref_voxel: float, grid: str) -> ResultManifest:
    half_a, half_b = _halves(fine, folder)
    reference = move_with_scipy(fine, 1.0, TURN, (int(128 / ref_voxel),) * 3, ref_voxel)
    write_map(folder / "ref.mrc", reference, ref_voxel)
    write_map(folder / "map.mrc", fine, 1.0)
    write_map(folder / "half_A.mrc", half_a, 1.0)
    write_map(folder / "half_B.mrc", half_b, 1.0)
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 10, "output_grid": grid, "log_diagnostics": False},
        "inputs": {
            "reference_map": {"map": "ref.mrc"},
            "maps_to_align": [
                {"map": "map.mrc", "map_half_A": "half_A.mrc", "map_half_B": "half_B.mrc"}
            ],
        },
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    proc = cli("run", str(folder / "spec.json"), "--out", str(folder / "out"), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    return ResultManifest.model_validate_json((folder / "out" / "result.json").read_text())


def test_moved_half_maps_keep_their_fsc_within_one_shell(tmp_path: Path, fine: np.ndarray) -> None:
    half_a, half_b = _halves(fine, tmp_path)
    before = fsc(half_a, half_b, voxel_A=1.0)
    _job(tmp_path, fine, 1.0, "reference")  # same voxel size, turned and shifted
    a = read_map(tmp_path / "out" / "volume_001" / "map_half_A.mrc").data
    b = read_map(tmp_path / "out" / "volume_001" / "map_half_B.mrc").data
    after = fsc(a, b, voxel_A=1.0)
    assert abs(_shell_of(after) - _shell_of(before)) <= 1.0


def test_own_grid_keeps_the_voxel_size_and_overlays_the_reference(
    tmp_path: Path, fine: np.ndarray
) -> None:
    manifest = _job(tmp_path, fine, 2.0, "own")
    (record,) = manifest.details_as(AlignmentDetails).alignments
    assert not any("is removed" in w for w in record.warnings)  # nothing lost on its own grid
    moved = read_map(tmp_path / "out" / "volume_001" / "map_half_A.mrc")
    reference = read_map(tmp_path / "ref.mrc")
    assert moved.voxel_size_A == pytest.approx((1.0, 1.0, 1.0))
    assert moved.data.shape[0] >= 128 and moved.data.shape[0] % 2 == 0
    # the header origin puts the two box centres on one point (ChimeraX reads voxel 0 there)
    centre_moved = np.array(moved.header.origin_A) + np.array([n // 2 for n in moved.data.shape])
    centre_ref = np.array(reference.header.origin_A) + 2.0 * np.array(
        [n // 2 for n in reference.data.shape]
    )
    assert np.allclose(centre_moved, centre_ref)
    # and its half-map FSC is the original's, to the original's Nyquist
    half_a, half_b = _halves(fine, tmp_path)
    other = read_map(tmp_path / "out" / "volume_001" / "map_half_B.mrc").data
    before, after = fsc(half_a, half_b, voxel_A=1.0), fsc(moved.data, other, voxel_A=1.0)
    assert abs(_shell_of(after) * 128 / moved.data.shape[0] - _shell_of(before)) <= 1.0


def test_a_coarser_reference_grid_warns_that_detail_is_lost(
    tmp_path: Path, fine: np.ndarray
) -> None:
    manifest = _job(tmp_path, fine, 2.0, "reference")
    (record,) = manifest.details_as(AlignmentDetails).alignments
    lost = [w for w in record.warnings if "is removed" in w]
    assert lost and "output_grid = 'own'" in lost[0] and "4 Å" in lost[0]
    assert read_map(tmp_path / "out" / "volume_001" / "map.mrc").data.shape == (64, 64, 64)


def test_a_reference_box_that_cuts_the_content_warns(tmp_path: Path, fine: np.ndarray) -> None:
    small = move_with_scipy(fine, 1.0, RigidTransform(), (64, 64, 64), 1.0)  # half the box
    write_map(tmp_path / "ref.mrc", small, 1.0)
    write_map(tmp_path / "map.mrc", fine, 1.0)
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 5, "log_diagnostics": False},
        "inputs": {"reference_map": {"map": "ref.mrc"}, "maps_to_align": [{"map": "map.mrc"}]},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = cli("run", str(tmp_path / "spec.json"), "--out", str(tmp_path / "out"), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    manifest = ResultManifest.model_validate_json((tmp_path / "out" / "result.json").read_text())
    assert any(
        "is cut off" in w for w in manifest.details_as(AlignmentDetails).alignments[0].warnings
    )
