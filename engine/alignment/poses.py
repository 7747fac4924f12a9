"""Particle poses that follow their volume when it moves.

Poses are RELION pose matrices ``A`` (``n x 3 x 3``; a map point ``r`` appears in the image at
``(A r)_xy - o``, ``o`` the origin in Å, ``n x 2``). When the volume moves by
``y = R F^flip x + t``, the pose that shows the moved volume the same way is

    A' = (F^flip A F^flip) R^T,    o' = o + (A' t)_xy,

because ``(A' y)_xy - o'`` must equal ``(A x)_xy - o`` for every point ``x`` (``F`` flips z
only, so ``(F A x)_xy = (A x)_xy``; docs/conventions.md#following-a-moved-volume). File formats are converted to and from ``A`` in
``slots/pose_formats.py``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from align3d.engine.alignment.geometry import FLIP, RigidTransform


def move_poses(
    matrices: NDArray[np.float64], origins_A: ArrayLike, *, transform: RigidTransform
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Poses (``n x 3 x 3``) and origins (Å, ``n x 2``) of particles whose volume moved by
    ``transform`` (by keyword)."""
    f = FLIP if transform.flip else np.eye(3)
    new = f @ np.asarray(matrices, dtype=np.float64) @ f @ transform.rotation.T
    origins = np.asarray(origins_A, dtype=np.float64).reshape(-1, 2)
    return new, origins + (new @ transform.shift_A)[:, :2]
