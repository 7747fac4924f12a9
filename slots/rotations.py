"""Rotation matrices from and to rotation vectors, quaternions and ZYZ Euler angles, in numpy:
the project's one rotation implementation (the numerical core, the particle files' pose formats
and the demo use it; scipy serves only the tests, as an independent oracle).

The conventions are scipy's ``Rotation`` (tested against it): a rotation vector is the axis
times the angle in radians; a quaternion is ``(x, y, z, w)``, scalar last; ``euler_zyz`` is
intrinsic ``Rz(α) Ry(β) Rz(γ)`` (scipy's ``"ZYZ"``). Every function takes one rotation or a
stack of them (``(n, 3)``, ``(n, 4)``, ``(n, 3, 3)``). They live here, not in scipy, because
``scipy.spatial`` takes longer to import (about 80 ms, with its Qhull and linear-algebra modules)
than the whole of this module's work in a job; here, below every other layer, because the
particle files (``slots``) need them as much as the alignment (``engine``) does.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def rotvec_matrix(rotvec: ArrayLike) -> Array:
    """``exp([ω]_x)``: the rotation by ``|ω|`` radians about ``ω`` (Rodrigues' formula);
    ``ω`` of shape ``(3,)`` or ``(n, 3)``."""
    omega = np.asarray(rotvec, dtype=np.float64)
    single = omega.ndim == 1
    omega = omega.reshape(-1, 3)
    angle = np.linalg.norm(omega, axis=1)
    small = angle < 1e-6
    safe = np.where(small, 1.0, angle)
    # sin(θ)/θ and (1 - cos θ)/θ², by their series near 0
    a = np.where(small, 1.0 - angle**2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - angle**2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    x, y, z = omega[:, 0], omega[:, 1], omega[:, 2]
    zero = np.zeros_like(x)
    cross = np.stack(
        [np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)],
        axis=1,
    )
    matrices = np.eye(3) + a[:, None, None] * cross + b[:, None, None] * (cross @ cross)
    return matrices[0] if single else matrices


def quaternion_matrix(quaternion: ArrayLike) -> Array:
    """The rotation of quaternions ``(x, y, z, w)`` (normalised here), ``(4,)`` or ``(n, 4)``."""
    q = np.asarray(quaternion, dtype=np.float64)
    single = q.ndim == 1
    q = q.reshape(-1, 4)
    q = q / np.linalg.norm(q, axis=1)[:, None]
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    matrices = np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )
    return matrices[0] if single else matrices


def matrix_quaternion(rotation: ArrayLike) -> Array:
    """The quaternion ``(x, y, z, w)`` with ``w >= 0`` of a rotation matrix, ``(3, 3)`` or
    ``(n, 3, 3)`` (Shepperd's method: from the largest of ``w², x², y², z²``, accurate at every
    angle up to 180°)."""
    r = np.asarray(rotation, dtype=np.float64)
    single = r.ndim == 2
    r = r.reshape(-1, 3, 3)
    trace = np.trace(r, axis1=1, axis2=2)
    diagonal = np.diagonal(r, axis1=1, axis2=2)
    case = np.argmax(np.concatenate([diagonal, trace[:, None]], axis=1), axis=1)
    q = np.empty((len(r), 4))
    w = np.sqrt(np.maximum(1.0 + trace, 0.0)) / 2.0
    q[:, 0] = r[:, 2, 1] - r[:, 1, 2]
    q[:, 1] = r[:, 0, 2] - r[:, 2, 0]
    q[:, 2] = r[:, 1, 0] - r[:, 0, 1]
    q[:, 3] = 4.0 * w * w
    for i in range(3):  # the rows whose largest component is the i-th
        rows = case == i
        j, m = (i + 1) % 3, (i + 2) % 3
        ri, t = r[rows], trace[rows]
        q[rows, i] = 1.0 + 2.0 * ri[:, i, i] - t
        q[rows, j] = ri[:, j, i] + ri[:, i, j]
        q[rows, m] = ri[:, m, i] + ri[:, i, m]
        q[rows, 3] = ri[:, m, j] - ri[:, j, m]
    q /= _row_norms(q)[:, None]
    q[q[:, 3] < 0] *= -1.0
    return q[0] if single else q


def _row_norms(v: Array) -> Array:
    """The length of each row of ``v``, summed as ``np.linalg.norm`` sums one vector (a dot
    product): a rotation in a stack gives bit for bit what it gives alone."""
    return np.sqrt((v[:, None, :] @ v[:, :, None])[:, 0, 0])


def matrix_rotvec(rotation: ArrayLike) -> Array:
    """The rotation vector (axis x angle in radians, angle in [0, π]) of a rotation matrix,
    ``(3, 3)`` or ``(n, 3, 3)``."""
    q = matrix_quaternion(rotation)
    single = q.ndim == 1
    q = q.reshape(-1, 4)
    sine = _row_norms(q[:, :3])
    angle = 2.0 * np.arctan2(sine, q[:, 3])
    scale = np.divide(angle, sine, out=np.zeros_like(sine), where=sine >= 1e-12)
    vectors = q[:, :3] * scale[:, None]
    return vectors[0] if single else vectors


def euler_zyz(alpha: ArrayLike, beta: ArrayLike, gamma: ArrayLike) -> Array:
    """``Rz(α) Ry(β) Rz(γ)`` (angles in radians): scipy's intrinsic ``"ZYZ"``. Scalars give one
    ``(3, 3)`` matrix; arrays of angles (broadcast together) give ``(..., 3, 3)``."""
    return _rz(alpha) @ _ry(beta) @ _rz(gamma)


GIMBAL_LOCK_RAD = 1e-7
"""A middle angle this close to 0 or π leaves only the sum (or difference) of the other two
defined (scipy's threshold)."""


def matrix_euler_zyz(rotation: ArrayLike) -> Array:
    """Intrinsic ZYZ angles ``(α, β, γ)`` in radians of a rotation matrix, ``(3,)`` for one
    ``(3, 3)`` matrix or ``(n, 3)`` for ``(n, 3, 3)``: ``β`` in [0, π], ``α`` and ``γ`` in
    (-π, π], as scipy's ``as_euler("ZYZ")``. At gimbal lock (``β`` 0 or π) only ``α ± γ`` is
    defined, and ``γ`` is set to 0 (as scipy does, without its warning)."""
    r = np.asarray(rotation, dtype=np.float64)
    single = r.ndim == 2
    r = r.reshape(-1, 3, 3)
    # sin β from both the third column and the third row (R02, R12 and R20, R21)
    sine = np.sqrt(np.sum(r[:, :2, 2] ** 2 + r[:, 2, :2] ** 2, axis=1) / 2.0)
    beta = np.arctan2(sine, r[:, 2, 2])
    alpha = np.arctan2(r[:, 1, 2], r[:, 0, 2])
    gamma = np.arctan2(r[:, 2, 1], -r[:, 2, 0])
    at_zero = beta <= GIMBAL_LOCK_RAD  # R = Rz(α + γ)
    at_pi = beta >= np.pi - GIMBAL_LOCK_RAD  # R = Rz(α - γ) Ry(π)
    alpha = np.where(at_zero, np.arctan2(r[:, 1, 0], r[:, 1, 1]), alpha)
    alpha = np.where(at_pi, np.arctan2(-r[:, 1, 0], r[:, 1, 1]), alpha)
    gamma = np.where(at_zero | at_pi, 0.0, gamma)
    angles = np.stack([alpha, beta, gamma], axis=1)
    return angles[0] if single else angles


def _rz(angle: ArrayLike) -> Array:
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack(
        [np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)],
        axis=-2,
    )


def _ry(angle: ArrayLike) -> Array:
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack(
        [np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1), np.stack([-s, zero, c], -1)],
        axis=-2,
    )


def seeded_random_rotations(count: int, seed: int) -> Array:
    """``count`` rotations uniform on SO(3) from ``seed``: normalised Gaussian quaternions of
    ``numpy.random.RandomState(seed)``, the same rotations as scipy's
    ``Rotation.random(count, random_state=seed)``."""
    return quaternion_matrix(np.random.RandomState(seed).normal(size=(count, 4)))
