"""Rotation matrices from and to rotation vectors, quaternions and ZYZ Euler angles, in numpy.

The conventions are scipy's ``Rotation`` (tested against it): a rotation vector is the axis
times the angle in radians; a quaternion is ``(x, y, z, w)``, scalar last; ``euler_zyz`` is
intrinsic ``Rz(α) Ry(β) Rz(γ)`` (scipy's ``"ZYZ"``). They live here, not in scipy, because the
alignment needs a handful of them and ``scipy.spatial`` takes longer to import (about 80 ms,
with its Qhull and linear-algebra modules) than the whole of this module's work in a job.
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
    """The quaternion ``(x, y, z, w)`` with ``w >= 0`` of a rotation matrix (Shepperd's method:
    from the largest of ``w², x², y², z²``, accurate at every angle up to 180°)."""
    r = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(r)
    diagonal = np.diag(r)
    k = int(np.argmax([*diagonal, trace]))
    if k == 3:
        w = np.sqrt(max(1.0 + trace, 0.0)) / 2.0
        q = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1], 4.0 * w * w])
    else:
        i, j, m = k, (k + 1) % 3, (k + 2) % 3
        q = np.zeros(4)
        q[i] = 1.0 + 2.0 * r[i, i] - trace
        q[j] = r[j, i] + r[i, j]
        q[m] = r[m, i] + r[i, m]
        q[3] = r[m, j] - r[j, m]
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_rotvec(rotation: ArrayLike) -> Array:
    """The rotation vector (axis x angle in radians, angle in [0, π]) of a rotation matrix."""
    q = matrix_quaternion(rotation)
    sine = float(np.linalg.norm(q[:3]))
    if sine < 1e-12:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(sine, q[3])
    return q[:3] * (angle / sine)


def euler_zyz(alpha: float, beta: float, gamma: float) -> Array:
    """``Rz(α) Ry(β) Rz(γ)`` (angles in radians): scipy's intrinsic ``"ZYZ"``."""
    return _rz(alpha) @ _ry(beta) @ _rz(gamma)


def _rz(angle: float) -> Array:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _ry(angle: float) -> Array:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def seeded_random_rotations(count: int, seed: int) -> Array:
    """``count`` rotations uniform on SO(3) from ``seed``: normalised Gaussian quaternions of
    ``numpy.random.RandomState(seed)``, the same rotations as scipy's
    ``Rotation.random(count, random_state=seed)``."""
    return quaternion_matrix(np.random.RandomState(seed).normal(size=(count, 4)))
