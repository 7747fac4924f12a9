"""How particle files store poses, as RELION pose matrices ``A`` (the one convention inside).

RELION: Euler angles ``(rot, tilt, psi)`` in degrees with ``A = Rz(psi) Ry(tilt) Rz(rot)``
(``Rotation.from_euler('ZYZ', [rot, tilt, psi], degrees=True).as_matrix().T``); a map point ``r``
appears in the image at ``(A r)_xy - o``. CryoSPARC: ``alignments3D/pose`` is a rotation vector
(radians) whose standard (Rodrigues) matrix is ``A^T``.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation


def relion_matrices(rot: ArrayLike, tilt: ArrayLike, psi: ArrayLike) -> NDArray[np.float64]:
    """RELION pose matrices ``A`` (``n x 3 x 3``) from Euler angles in degrees."""
    angles = np.stack(np.broadcast_arrays(rot, tilt, psi), axis=-1).astype(np.float64)
    matrices = Rotation.from_euler("ZYZ", angles.reshape(-1, 3), degrees=True).as_matrix()
    return matrices.transpose(0, 2, 1)


def relion_angles(matrices: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(rot, tilt, psi)`` in degrees (``n x 3``) of RELION pose matrices. At tilt 0 or 180
    (gimbal lock) only ``rot + psi`` (or ``rot - psi``) is defined, and psi is set to 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: one angle set to 0
        return Rotation.from_matrix(np.transpose(matrices, (0, 2, 1))).as_euler("ZYZ", degrees=True)


def cryosparc_matrices(rotvecs: ArrayLike) -> NDArray[np.float64]:
    """RELION pose matrices ``A`` of CryoSPARC ``alignments3D/pose`` rotation vectors."""
    vec = np.asarray(rotvecs, dtype=np.float64).reshape(-1, 3)
    return Rotation.from_rotvec(vec).as_matrix().transpose(0, 2, 1)


def cryosparc_rotvecs(matrices: NDArray[np.float64]) -> NDArray[np.float64]:
    """CryoSPARC rotation vectors (radians) of RELION pose matrices."""
    return Rotation.from_matrix(np.transpose(matrices, (0, 2, 1))).as_rotvec()
