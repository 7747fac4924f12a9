"""Random rigid transforms for known-answer tests and benchmarks (seeded: a failure reproduces)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.geometry import RigidTransform


def random_transform(
    rng: np.random.Generator,
    max_shift_A: float,
    max_angle_deg: float = 180.0,
    flip: bool | None = None,
) -> RigidTransform:
    """A random transform: rotation uniform on SO(3) (Haar measure) restricted to angles of at
    most ``max_angle_deg``, translation uniform in the ball of radius ``max_shift_A``, and a
    random hand unless ``flip`` is given. Deterministic for a seeded ``rng``."""
    # Haar measure: axis uniform on the sphere, angle with CDF (θ - sin θ) / π on [0, π].
    limit = np.radians(min(max(max_angle_deg, 0.0), 180.0))
    target = rng.uniform() * (limit - np.sin(limit))
    lo, hi = 0.0, limit
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mid - np.sin(mid) < target else (lo, mid)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    rotation = Rotation.from_rotvec(axis * 0.5 * (lo + hi)).as_matrix()
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    shift = direction * max_shift_A * rng.uniform() ** (1.0 / 3.0)
    hand = bool(rng.integers(2)) if flip is None else flip
    return RigidTransform(rotation, shift, hand)
