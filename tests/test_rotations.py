"""align3d.slots.rotations against scipy's Rotation, which it stands in for (same
conventions), at every angle including the identity, 180° and gimbal lock, one rotation at a time
and in stacks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.slots.rotations import (
    euler_zyz,
    matrix_euler_zyz,
    matrix_quaternion,
    matrix_rotvec,
    quaternion_matrix,
    rotvec_matrix,
    seeded_random_rotations,
)


def _rotvecs() -> np.ndarray:
    rng = np.random.default_rng(5)
    axes = rng.normal(size=(40, 3))
    axes /= np.linalg.norm(axes, axis=1)[:, None]
    angles = np.concatenate(
        [[0.0, 1e-9, 1e-7, 1e-5, 0.3, np.pi / 2, np.pi - 1e-6, np.pi], rng.uniform(0, np.pi, 32)]
    )
    return axes * angles[:, None]


def test_rotation_vectors_give_scipys_matrices() -> None:
    vecs = _rotvecs()
    expected = Rotation.from_rotvec(vecs).as_matrix()
    np.testing.assert_allclose(rotvec_matrix(vecs), expected, atol=1e-14)
    for v, m in zip(vecs, expected, strict=True):
        np.testing.assert_allclose(rotvec_matrix(v), m, atol=1e-14)


@pytest.mark.parametrize("index", range(40))
def test_matrices_give_back_their_rotation_vector(index: int) -> None:
    vec = _rotvecs()[index]
    matrix = Rotation.from_rotvec(vec).as_matrix()
    got = matrix_rotvec(matrix)
    angle = np.linalg.norm(vec)
    if angle > np.pi - 1e-5:  # at 180°, ω and -ω are the same rotation
        np.testing.assert_allclose(rotvec_matrix(got), matrix, atol=1e-12)
        assert np.isclose(np.linalg.norm(got), angle, atol=1e-7)
    else:
        np.testing.assert_allclose(got, Rotation.from_matrix(matrix).as_rotvec(), atol=1e-12)


def test_quaternions_match_scipys_in_both_directions() -> None:
    q = np.random.default_rng(8).normal(size=(50, 4))
    np.testing.assert_allclose(quaternion_matrix(q), Rotation.from_quat(q).as_matrix(), atol=1e-14)
    for m in Rotation.from_quat(q).as_matrix():
        expected = Rotation.from_matrix(m).as_quat(canonical=True)
        np.testing.assert_allclose(matrix_quaternion(m), expected, atol=1e-12)


def test_zyz_euler_angles_are_scipys_intrinsic_zyz() -> None:
    for angles in np.random.default_rng(2).uniform(-np.pi, np.pi, size=(20, 3)):
        expected = Rotation.from_euler("ZYZ", angles).as_matrix()
        np.testing.assert_allclose(euler_zyz(*angles), expected, atol=1e-14)
    stack = np.random.default_rng(3).uniform(-np.pi, np.pi, size=(50, 3))
    np.testing.assert_allclose(
        euler_zyz(*stack.T), Rotation.from_euler("ZYZ", stack).as_matrix(), atol=1e-14
    )


def test_stacks_of_matrices_give_each_ones_rotation_vector() -> None:
    matrices = Rotation.from_rotvec(_rotvecs()).as_matrix()
    stacked = matrix_rotvec(matrices)
    assert stacked.shape == (40, 3)
    for m, v in zip(matrices, stacked, strict=True):
        assert np.array_equal(matrix_rotvec(m), v)  # the same numbers, alone or stacked
    np.testing.assert_allclose(rotvec_matrix(stacked), matrices, atol=1e-12)


def _zyz_cases() -> np.ndarray:
    """Random angles, and the middle angle at (and within 1e-9 of) 0 and π: gimbal lock."""
    rng = np.random.default_rng(4)
    angles = rng.uniform(-np.pi, np.pi, size=(60, 3))
    angles[:, 1] = np.abs(angles[:, 1])
    angles[:8, 1] = [0.0, 1e-9, np.pi, np.pi - 1e-9, 0.0, np.pi, 1e-3, np.pi - 1e-3]
    return angles


def test_matrices_give_scipys_zyz_euler_angles() -> None:
    matrices = Rotation.from_euler("ZYZ", _zyz_cases()).as_matrix()
    got = matrix_euler_zyz(matrices)
    with pytest.warns(UserWarning, match="Gimbal lock"):
        expected = Rotation.from_matrix(matrices).as_euler("ZYZ")
    # the angles give the matrices back as exactly as scipy's do (at 1e-9 from gimbal lock both
    # set psi to 0, which leaves an error of 1e-9)
    ours = np.abs(euler_zyz(*got.T) - matrices).max(axis=(1, 2))
    scipys = np.abs(Rotation.from_euler("ZYZ", expected).as_matrix() - matrices).max(axis=(1, 2))
    assert np.all(ours <= scipys + 1e-12), (ours, scipys)
    # the same angles (modulo 2π), the gimbal-locked ones included: psi 0, rot carrying the turn
    difference = np.angle(np.exp(1j * (got - expected)))
    np.testing.assert_allclose(difference, 0.0, atol=1e-8)
    assert np.all(got[:, 2][[0, 1, 2, 3, 4, 5]] == 0.0)
    assert np.all((got[:, 1] >= 0.0) & (got[:, 1] <= np.pi))
    for m, angles in zip(matrices, got, strict=True):
        assert np.array_equal(matrix_euler_zyz(m), angles)


def test_seeded_rotations_are_scipys_random_rotations_of_that_seed() -> None:
    """The confidence check's decoys were calibrated with these very rotations."""
    got = seeded_random_rotations(24, 20261201)
    np.testing.assert_allclose(
        got, Rotation.random(24, random_state=20261201).as_matrix(), atol=1e-14
    )
    np.testing.assert_allclose(
        got @ np.transpose(got, (0, 2, 1)), np.broadcast_to(np.eye(3), got.shape), atol=1e-12
    )


def test_a_clamped_rotation_stays_a_rotation_after_many_steps() -> None:
    """Refinement multiplies a small step into the rotation each iteration and clamps the
    product: it must stay orthonormal, as scipy's round trip through a quaternion kept it."""
    from align3d.engine.alignment.geometry import clamp_rotation

    rotation = np.eye(3)
    step = rotvec_matrix([1e-3, -2e-3, 1.5e-3])
    for _ in range(5000):
        rotation = clamp_rotation(step @ rotation, 180.0)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-13)
    assert np.isclose(np.linalg.det(rotation), 1.0, atol=1e-13)
    limited = clamp_rotation(rotvec_matrix([0.0, 0.0, np.radians(50.0)]), 30.0)
    np.testing.assert_allclose(limited, rotvec_matrix([0.0, 0.0, np.radians(30.0)]), atol=1e-14)
