"""Moving maps onto other grids: conventions, fidelity (FSC), masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.fsc import fsc
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.resample import GridMove, resample_map
from align3d.jobs.align_3d_maps.demo import protein_like_map
from tests.helpers import move_with_scipy
from tests.oracles.transforms import random_transform


def test_pure_shift_moves_content_by_t() -> None:
    vol = np.zeros((32, 32, 32), np.float32)
    vol[16, 16, 16] = 1.0  # at the origin
    t = RigidTransform(np.eye(3), np.array([3.0, -2.0, 1.0]))  # Å, voxel 1 Å
    out = resample_map(
        vol, GridMove(transform=t, in_voxel_A=1.0, out_shape=vol.shape, out_voxel_A=1.0)
    )
    z, y, x = np.unravel_index(np.argmax(out), out.shape)
    assert (x - 16, y - 16, z - 16) == (3, -2, 1)


def test_rotation_direction_and_flip() -> None:
    vol = np.zeros((33, 33, 33), np.float32)
    vol[16, 16, 16 + 8] = 1.0  # point at x = +8 Å
    rz90 = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    out = resample_map(
        vol,
        GridMove(
            transform=RigidTransform(rz90), in_voxel_A=1.0, out_shape=vol.shape, out_voxel_A=1.0
        ),
    )
    z, y, x = np.unravel_index(np.argmax(out), out.shape)
    assert (x - 16, y - 16, z - 16) == (0, 8, 0)  # R maps x to y
    vol = np.zeros_like(vol)
    vol[16 + 5, 16, 16] = 1.0  # z = +5 Å
    out = resample_map(
        vol,
        GridMove(
            transform=RigidTransform(np.eye(3), np.zeros(3), True),
            in_voxel_A=1.0,
            out_shape=vol.shape,
            out_voxel_A=1.0,
        ),
    )
    z, y, x = np.unravel_index(np.argmax(out), out.shape)
    assert (x - 16, y - 16, z - 16) == (0, 0, -5)  # F = diag(1, 1, -1)


def _centroid_A(volume: np.ndarray, voxel_A: float) -> np.ndarray:
    """Centre of mass (x, y, z) in Å from the box centre (index N // 2,
    docs/conventions.md#the-box-centre)."""
    weights = np.clip(volume, 0, None)
    grids = np.indices(volume.shape, dtype=np.float64)
    centre = [n // 2 for n in volume.shape]
    zyx = [(g * weights).sum() / weights.sum() - c for g, c in zip(grids, centre, strict=True)]
    return np.array(zyx[::-1]) * voxel_A


@pytest.mark.parametrize(("out_shape", "out_voxel_A"), [((47, 51, 55), 1.8), ((64, 63, 62), 1.2)])
def test_a_map_moved_onto_another_grid_matches_an_independent_resampling(
    out_shape: tuple[int, int, int], out_voxel_A: float
) -> None:
    """The identity onto another box (odd and even, non-cubic) and voxel size: the content
    stays where it was in Å about the box centres (its centroid within 0.05 Å) and the values
    agree with scipy's quintic spline written from the convention (tests/helpers.py); a
    centring error of one voxel fails both."""
    vol = protein_like_map((60, 60, 60), 1.5, seed=5)
    out = resample_map(
        vol,
        GridMove(
            transform=RigidTransform(), in_voxel_A=1.5, out_shape=out_shape, out_voxel_A=out_voxel_A
        ),
    )
    oracle = move_with_scipy(vol, 1.5, RigidTransform(), out_shape, out_voxel_A)
    assert out.shape == out_shape
    assert np.corrcoef(out.ravel(), oracle.ravel())[0, 1] > 0.995
    assert np.allclose(_centroid_A(out, out_voxel_A), _centroid_A(vol, 1.5), atol=0.05)
    shifted = RigidTransform(np.eye(3), np.array([out_voxel_A, 0.0, 0.0]))
    wrong = move_with_scipy(vol, 1.5, shifted, out_shape, out_voxel_A)
    assert np.abs(out - wrong).max() > 10 * np.abs(out - oracle).max()


@pytest.mark.parametrize("flip", [False, True])
def test_move_and_move_back_keeps_fsc(rng: np.random.Generator, flip: bool) -> None:
    # docs/conventions.md#maps: FSC >= 0.9 with the original up to 0.8 of Nyquist after a move
    # and a move back
    p = 1.0
    vol = protein_like_map((80, 80, 80), p, blur_A=1.0, seed=8)
    t = random_transform(rng, 6.0, flip=flip)
    there = resample_map(
        vol, GridMove(transform=t, in_voxel_A=p, out_shape=vol.shape, out_voxel_A=p)
    )
    back = resample_map(
        there, GridMove(transform=t.inverse(), in_voxel_A=p, out_shape=vol.shape, out_voxel_A=p)
    )
    curve = fsc(vol, back, voxel_A=p)
    nyquist = 1.0 / (2 * p)
    band = curve.frequency <= 0.8 * nyquist
    assert curve.fsc[band].min() >= 0.9
    # the round trip cancels an error made the same way twice: the move itself must match an
    # independent resampling written from the convention
    oracle = move_with_scipy(vol, p, t, vol.shape, p)
    direct = fsc(there, oracle, voxel_A=p)
    assert direct.fsc[band].min() >= 0.9


def test_masks_stay_in_unit_interval(rng: np.random.Generator) -> None:
    mask = (protein_like_map((40, 40, 40), 2.0, seed=1) > 0.1).astype(np.float32)
    t = random_transform(rng, 5.0)
    out = resample_map(
        mask,
        GridMove(transform=t, in_voxel_A=2.0, out_shape=(44, 44, 44), out_voxel_A=1.7),
        kind="mask",
    )
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.sum() * 1.7**3 == pytest.approx(mask.sum() * 2.0**3, rel=0.05)


def test_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        resample_map(
            np.zeros((4, 4, 4)),
            GridMove(
                transform=RigidTransform(), in_voxel_A=1.0, out_shape=(4, 4, 4), out_voxel_A=1.0
            ),
            kind="blob",
        )
