"""How particle files store poses, as RELION pose matrices ``A`` (the one convention inside).

RELION: Euler angles ``(rot, tilt, psi)`` in degrees with ``A = Rz(psi) Ry(tilt) Rz(rot)``
(``euler_zyz(rot, tilt, psi).T`` in radians, :mod:`align3d.slots.rotations`: scipy's intrinsic
``"ZYZ"``); a map point ``r`` appears in the image at ``(A r)_xy - o``. CryoSPARC: ``alignments3D/pose`` is a rotation vector
(radians) whose standard (Rodrigues) matrix is ``A^T``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from align3d.slots.rotations import euler_zyz, matrix_euler_zyz, matrix_rotvec, rotvec_matrix


def relion_matrices(rot: ArrayLike, tilt: ArrayLike, psi: ArrayLike) -> NDArray[np.float64]:
    """RELION pose matrices ``A`` (``n x 3 x 3``) from Euler angles in degrees."""
    angles = np.radians(np.stack(np.broadcast_arrays(rot, tilt, psi), axis=-1).reshape(-1, 3))
    return euler_zyz(angles[:, 0], angles[:, 1], angles[:, 2]).transpose(0, 2, 1)


def relion_angles(matrices: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(rot, tilt, psi)`` in degrees (``n x 3``) of RELION pose matrices. At tilt 0 or 180
    (gimbal lock) only ``rot + psi`` (or ``rot - psi``) is defined, and psi is set to 0."""
    return np.degrees(matrix_euler_zyz(np.transpose(matrices, (0, 2, 1))))


def cryosparc_matrices(rotvecs: ArrayLike) -> NDArray[np.float64]:
    """RELION pose matrices ``A`` of CryoSPARC ``alignments3D/pose`` rotation vectors."""
    return rotvec_matrix(np.asarray(rotvecs, dtype=np.float64).reshape(-1, 3)).transpose(0, 2, 1)


def cryosparc_rotvecs(matrices: NDArray[np.float64]) -> NDArray[np.float64]:
    """CryoSPARC rotation vectors (radians) of RELION pose matrices."""
    return matrix_rotvec(np.transpose(matrices, (0, 2, 1)).reshape(-1, 3, 3))
