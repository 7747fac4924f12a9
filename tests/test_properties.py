"""Property tests of the geometry (hypothesis, derandomised so that a failure reproduces)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.poses import move_poses
from align3d.slots.pose_formats import (
    cryosparc_matrices,
    cryosparc_rotvecs,
    relion_angles,
    relion_matrices,
)

SETTINGS = settings(derandomize=True, max_examples=150, deadline=None)
finite = st.floats(-1.0, 1.0, allow_nan=False)
quaternions = st.tuples(finite, finite, finite, finite).filter(lambda q: np.linalg.norm(q) > 0.1)
shifts = st.tuples(*(st.floats(-50.0, 50.0, allow_nan=False),) * 3)
transforms = st.builds(
    lambda q, t, f: RigidTransform(Rotation.from_quat(q).as_matrix(), np.array(t), f),
    quaternions,
    shifts,
    st.booleans(),
)
angles = st.tuples(
    st.floats(-180.0, 180.0),
    st.one_of(st.floats(0.0, 180.0), st.sampled_from([0.0, 180.0])),  # gimbal lock included
    st.floats(-180.0, 180.0),
)


@SETTINGS
@given(transforms)
def test_a_transform_and_its_inverse_cancel(t: RigidTransform) -> None:
    identity = t.compose(t.inverse())
    assert np.allclose(identity.matrix, np.eye(4), atol=1e-9)
    assert np.allclose(t.inverse().compose(t).matrix, np.eye(4), atol=1e-9)


@SETTINGS
@given(transforms, transforms)
def test_composition_is_the_matrix_product(a: RigidTransform, b: RigidTransform) -> None:
    assert np.allclose(a.compose(b).matrix, a.matrix @ b.matrix, atol=1e-9)
    assert np.allclose(
        a.compose(b).inverse().matrix, b.inverse().compose(a.inverse()).matrix, atol=1e-8
    )
    assert RigidTransform.from_matrix(a.matrix).flip == a.flip


@SETTINGS
@given(transforms, st.lists(angles, min_size=1, max_size=5), shifts)
def test_pose_update_then_inverse_update_is_the_identity(
    t: RigidTransform, poses: list[tuple[float, float, float]], origin: tuple[float, ...]
) -> None:
    a = relion_matrices(*np.array(poses).T)
    o = np.tile(np.array(origin[:2]), (len(poses), 1))
    moved_a, moved_o = move_poses(a, o, transform=t)
    back_a, back_o = move_poses(moved_a, moved_o, transform=t.inverse())
    assert np.allclose(back_a, a, atol=1e-9)
    assert np.allclose(back_o, o, atol=1e-7)


@SETTINGS
@given(st.lists(angles, min_size=1, max_size=5))
def test_euler_matrix_rotvec_round_trips(poses: list[tuple[float, float, float]]) -> None:
    a = relion_matrices(*np.array(poses).T)
    assert np.allclose(relion_matrices(*relion_angles(a).T), a, atol=1e-9)
    assert np.allclose(cryosparc_matrices(cryosparc_rotvecs(a)), a, atol=1e-9)
    # RELION's Euler convention (docs/conventions.md#relion): A = Rz(psi) Ry(tilt) Rz(rot),
    # built here by hand
    rot, tilt, psi = np.radians(np.array(poses, dtype=np.float64).T)

    def rz(angle: np.ndarray) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        return np.stack([[c, s, 0 * c], [-s, c, 0 * c], [0 * c, 0 * c, 0 * c + 1]]).transpose(
            2, 0, 1
        )

    def ry(angle: np.ndarray) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        return np.stack([[c, 0 * c, -s], [0 * c, 0 * c + 1, 0 * c], [s, 0 * c, c]]).transpose(
            2, 0, 1
        )

    assert np.allclose(a, rz(psi) @ ry(tilt) @ rz(rot), atol=1e-12)
