"""Geometry conventions of align3d, in one place.

Conventions (docs/conventions.md, their source of truth, which names the tests that prove them):

* Arrays are indexed ``[z, y, x]``. Physical coordinates are in Å, in ``(x, y, z)`` order.
* Voxel ``(ix, iy, iz)`` of an axis of length ``N`` and voxel size ``p`` sits at
  ``r = (i - N // 2) * p`` (the RELION / CryoSPARC box-centre convention).
* Hand flip: ``F = diag(1, 1, -1)`` about the box centre.
* A :class:`RigidTransform` ``(R, t, flip)`` maps a point ``x`` of the moving map to
  ``y = R F^flip x + t`` in the reference frame (``t`` in Å). The aligned map on the reference
  grid is ``V_out(y) = M(F^flip R^T (y - t))``. Its 4x4 matrix is ``[[R F^flip, t], [0, 1]]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from align3d.slots.rotations import matrix_rotvec, rotvec_matrix

FLIP = np.diag([1.0, 1.0, -1.0])
"""The hand flip ``F = diag(1, 1, -1)`` (mirror through the xy plane at the box centre)."""

Array = NDArray[np.float64]


def box_centre(shape: tuple[int, ...]) -> NDArray[np.int64]:
    """Centre voxel of a ``[z, y, x]`` box, returned in ``(x, y, z)`` order: ``N // 2`` per axis."""
    return np.array([n // 2 for n in shape[::-1]], dtype=np.int64)


def voxel_size_xyz(voxel_size: float | ArrayLike) -> Array:
    """A voxel size in Å as a length-3 ``(x, y, z)`` array (a scalar means isotropic)."""
    p = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,)).copy()
    if np.any(p <= 0) or not np.all(np.isfinite(p)):
        raise ValueError(f"voxel size must be positive and finite, got {p.tolist()} Å")
    return p


def index_to_physical(
    index_xyz: ArrayLike, shape: tuple[int, ...], voxel_size: float | ArrayLike
) -> Array:
    """Voxel indices ``(ix, iy, iz)`` (last axis) to physical coordinates in Å about the box centre."""
    return (np.asarray(index_xyz, dtype=np.float64) - box_centre(shape)) * voxel_size_xyz(
        voxel_size
    )


def physical_to_index(
    r_xyz: ArrayLike, shape: tuple[int, ...], voxel_size: float | ArrayLike
) -> Array:
    """Physical coordinates in Å (last axis ``x, y, z``) to fractional voxel indices ``(ix, iy, iz)``."""
    return np.asarray(r_xyz, dtype=np.float64) / voxel_size_xyz(voxel_size) + box_centre(shape)


def rotation_angle_deg(rotation: ArrayLike) -> float:
    """Rotation angle of a proper rotation matrix, in degrees (0 to 180)."""
    r = np.asarray(rotation, dtype=np.float64)
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)))


def rotation_distance_deg(a: ArrayLike, b: ArrayLike) -> float:
    """Geodesic distance between two rotation matrices, in degrees."""
    return rotation_angle_deg(np.asarray(a).T @ np.asarray(b))


def small_rotation(omega: ArrayLike) -> Array:
    """Rotation matrix ``exp([omega]_x)`` of a rotation vector in radians."""
    return rotvec_matrix(omega)


def clamp_rotation(rotation: ArrayLike, max_angle_deg: float) -> Array:
    """The rotation itself when its angle is at most ``max_angle_deg``; otherwise the rotation
    about the same axis by exactly ``max_angle_deg`` (the nearest rotation on the boundary).
    Either way rebuilt from its rotation vector: an exact rotation, so that rounding does not
    accumulate in a product of many steps."""
    vec = matrix_rotvec(rotation)
    angle = np.linalg.norm(vec)
    limit = np.radians(max_angle_deg)
    return rotvec_matrix(vec if angle <= limit else vec * (limit / angle))


def clamp_norm(vector: ArrayLike, max_norm: float) -> Array:
    """The vector scaled down, if needed, so that its Euclidean norm is at most ``max_norm``."""
    v = np.asarray(vector, dtype=np.float64)
    n = float(np.linalg.norm(v))
    return v if n <= max_norm else v * (max_norm / n)


@dataclass(frozen=True)
class RigidTransform:
    """A rigid motion with optional hand flip: ``y = R F^flip x + t``.

    Attributes
    ----------
    rotation : (3, 3) array
        Proper rotation ``R`` (det +1), acting on ``(x, y, z)`` column vectors.
    shift_A : (3,) array
        Translation ``t`` in Å, ``(x, y, z)``.
    flip : bool
        Whether the hand flip ``F = diag(1, 1, -1)`` is applied before the rotation.
    """

    rotation: Array = field(default_factory=lambda: np.eye(3))
    shift_A: Array = field(default_factory=lambda: np.zeros(3))
    flip: bool = False

    def __post_init__(self) -> None:
        rot = np.array(self.rotation, dtype=np.float64).reshape(3, 3)
        shift = np.array(self.shift_A, dtype=np.float64).reshape(3)
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6) or np.linalg.det(rot) < 0:
            raise ValueError("rotation must be a proper rotation matrix (orthonormal, det +1)")
        rot.setflags(write=False)
        shift.setflags(write=False)
        object.__setattr__(self, "rotation", rot)
        object.__setattr__(self, "shift_A", shift)
        object.__setattr__(self, "flip", bool(self.flip))

    @classmethod
    def identity(cls) -> RigidTransform:
        return cls()

    @classmethod
    def from_matrix(cls, matrix: ArrayLike) -> RigidTransform:
        """From a 4x4 matrix ``[[R F^flip, t], [0, 1]]``; the hand is read from the determinant."""
        m = np.asarray(matrix, dtype=np.float64)
        linear = m[:3, :3]
        flip = bool(np.linalg.det(linear) < 0)
        rotation = linear @ FLIP if flip else linear
        return cls(rotation, m[:3, 3], flip)

    @property
    def linear(self) -> Array:
        """The 3x3 linear part ``R F^flip``."""
        return self.rotation @ FLIP if self.flip else self.rotation.copy()

    @property
    def matrix(self) -> Array:
        """The 4x4 homogeneous matrix ``[[R F^flip, t], [0, 1]]`` (the one the log reports)."""
        m = np.eye(4)
        m[:3, :3] = self.linear
        m[:3, 3] = self.shift_A
        return m

    @property
    def angle_deg(self) -> float:
        """Rotation angle of ``R`` in degrees (the quantity bounded by the maximum search angle)."""
        return rotation_angle_deg(self.rotation)

    def apply(self, points_xyz: ArrayLike) -> Array:
        """Map moving-frame points (Å, last axis ``x, y, z``) into the reference frame."""
        return np.asarray(points_xyz, dtype=np.float64) @ self.linear.T + self.shift_A

    def inverse(self) -> RigidTransform:
        """The transform taking reference-frame points back to the moving frame.

        ``x = F^f R^T (y - t)``, written as ``R' F^f y + t'`` with ``R' = F^f R^T F^f`` and
        ``t' = -F^f R^T t``.
        """
        f = FLIP if self.flip else np.eye(3)
        rot = f @ self.rotation.T @ f
        return RigidTransform(rot, -(f @ self.rotation.T @ self.shift_A), self.flip)

    def compose(self, first: RigidTransform) -> RigidTransform:
        """``self ∘ first``: apply ``first``, then ``self``."""
        f = FLIP if self.flip else np.eye(3)
        rot = self.rotation @ f @ first.rotation @ f
        shift = self.linear @ first.shift_A + self.shift_A
        return RigidTransform(rot, shift, self.flip != first.flip)

    def rotation_error_deg(self, other: RigidTransform) -> float:
        """Angle between the rotations of two transforms, in degrees."""
        return rotation_distance_deg(self.rotation, other.rotation)

    def shift_error_A(self, other: RigidTransform) -> float:
        """Distance between the translations of two transforms, in Å."""
        return float(np.linalg.norm(self.shift_A - other.shift_A))
