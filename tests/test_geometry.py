"""The geometry conventions of docs/conventions.md: transforms, their matrices, inverses and
compositions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.geometry import (
    FLIP,
    RigidTransform,
    clamp_norm,
    clamp_rotation,
    index_to_physical,
    physical_to_index,
    rotation_angle_deg,
)
from tests.oracles.transforms import random_transform


def test_box_centre_convention_odd_and_even() -> None:
    # voxel N // 2 is the origin, per axis; physical coordinates are (x, y, z)
    shape = (5, 6, 7)  # z, y, x
    assert np.allclose(index_to_physical([3, 3, 2], shape, 2.0), [0, 0, 0])
    assert np.allclose(index_to_physical([4, 3, 2], shape, [2.0, 1.0, 1.0]), [2.0, 0, 0])
    assert np.allclose(physical_to_index([0.0, 0.0, -1.5], shape, 1.5), [3, 3, 1])


def test_transform_maps_points_as_documented(rng: np.random.Generator) -> None:
    t = random_transform(rng, 10.0, flip=True)
    x = rng.normal(size=(5, 3))
    expected = x @ (t.rotation @ FLIP).T + t.shift_A
    assert np.allclose(t.apply(x), expected)
    assert np.allclose(t.matrix[:3, :3], t.rotation @ FLIP)
    assert np.linalg.det(t.matrix[:3, :3]) == pytest.approx(-1.0)


@pytest.mark.parametrize("flip", [False, True])
def test_inverse_and_compose(rng: np.random.Generator, flip: bool) -> None:
    a = random_transform(rng, 20.0, flip=flip)
    b = random_transform(rng, 20.0)
    x = rng.normal(size=(7, 3)) * 10
    assert np.allclose(a.inverse().apply(a.apply(x)), x)
    assert np.allclose(a.compose(b).apply(x), a.apply(b.apply(x)))
    identity = a.compose(a.inverse())
    assert identity.angle_deg < 1e-6 and not identity.flip
    assert np.allclose(identity.shift_A, 0, atol=1e-9)


def test_matrix_round_trip(rng: np.random.Generator) -> None:
    for flip in (False, True):
        t = random_transform(rng, 5.0, flip=flip)
        back = RigidTransform.from_matrix(t.matrix)
        assert back.flip == flip
        assert np.allclose(back.rotation, t.rotation) and np.allclose(back.shift_A, t.shift_A)


def test_rejects_improper_rotation() -> None:
    with pytest.raises(ValueError, match="proper rotation"):
        RigidTransform(FLIP)


def test_random_transform_respects_limits(rng: np.random.Generator) -> None:
    for limit in (0.5, 10.0, 90.0, 180.0):
        for _ in range(50):
            t = random_transform(rng, 7.0, max_angle_deg=limit)
            assert t.angle_deg <= limit + 1e-6
            assert np.linalg.norm(t.shift_A) <= 7.0 + 1e-9


def test_random_rotations_are_uniform(rng: np.random.Generator) -> None:
    # Haar measure: the rotation angle has density (1 - cos θ) / π, so mean angle = π/2 + 2/π
    angles = np.radians([random_transform(rng, 0.0).angle_deg for _ in range(4000)])
    assert angles.mean() == pytest.approx(np.pi / 2 + 2 / np.pi, abs=0.03)


def test_clamps() -> None:
    rot = Rotation.from_rotvec([0, 0, np.radians(30)]).as_matrix()
    assert rotation_angle_deg(clamp_rotation(rot, 10.0)) == pytest.approx(10.0)
    assert np.allclose(clamp_rotation(rot, 45.0), rot)
    assert np.linalg.norm(clamp_norm([3.0, 4.0, 0.0], 2.5)) == pytest.approx(2.5)
