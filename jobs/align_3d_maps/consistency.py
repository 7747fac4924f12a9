"""The volumes of one job in register with each other, not only each with the reference.

With a symmetric reference every volume has several equally good solutions (its symmetry mates).
Each task returns the mate closest to the identity; volumes that sit a few degrees apart could
still fall on different mates near the middle between two of them, and their particles, once
combined, would then differ by a symmetry operation. So the mates are chosen together:

1. Volumes whose solutions agree modulo the group (within :data:`SAME_FRAME_DEG`) form a group of
   their own: classes of one classification, refinements in one frame.
2. In each such group every volume takes the mate nearest its first member's, and the group as a
   whole takes the common mate that keeps its rotations, on average, closest to the identity.

The job then reports the largest rotation between any two aligned volumes and warns when it
exceeds :data:`AGREE_DEG` for volumes whose alignments are sure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from align3d.engine.alignment.geometry import RigidTransform, rotation_angle_deg
from align3d.engine.alignment.symmetry import PointGroup, distance_modulo, mates

SAME_FRAME_DEG = 15.0
"""Solutions this close modulo the group are taken to share one frame."""
AGREE_DEG = 10.0
"""Aligned volumes further apart than this are reported (classes of one classification or
refinements in one frame sit a few degrees apart)."""


@dataclass(frozen=True)
class MateChoice:
    """The transform each volume keeps (by index), which changed, and the largest rotation
    between two aligned volumes with the pair."""

    transforms: dict[int, RigidTransform]
    changed: list[int]
    largest_rotation_deg: float
    largest_pair: tuple[int, int] | None


def _clusters(transforms: dict[int, RigidTransform], group: PointGroup) -> list[list[int]]:
    clusters: list[list[int]] = []
    for index in sorted(transforms):
        for cluster in clusters:
            anchor = transforms[cluster[0]]
            if (
                anchor.flip == transforms[index].flip
                and distance_modulo(anchor, transforms[index], group) <= SAME_FRAME_DEG
            ):
                cluster.append(index)
                break
        else:
            clusters.append([index])
    return clusters


def choose_mates(transforms: dict[int, RigidTransform], group: PointGroup) -> MateChoice:
    """One consistent mate per volume (see the module docstring)."""
    chosen = dict(transforms)
    for cluster in _clusters(transforms, group):
        anchor = transforms[cluster[0]]
        aligned = {}
        for index in cluster:
            options = mates(transforms[index], group)
            aligned[index] = min(
                options, key=lambda m: (m.transform.rotation_error_deg(anchor), m.index)
            ).transform
        best = None
        for s in group.operators:  # the common mate: smallest mean angle from the identity
            moved = {
                i: RigidTransform(s @ t.rotation, s @ t.shift_A, t.flip) for i, t in aligned.items()
            }
            cost = float(np.mean([t.angle_deg for t in moved.values()]))
            if best is None or cost < best[0] - 1e-9:
                best = (cost, moved)
        assert best is not None
        chosen.update(best[1])
    changed = [
        i
        for i in sorted(transforms)
        if not np.allclose(chosen[i].rotation, transforms[i].rotation, atol=1e-9)
    ]
    largest, pair = 0.0, None
    ordered = sorted(chosen)
    for a_pos, a in enumerate(ordered):
        for b in ordered[a_pos + 1 :]:
            angle = rotation_angle_deg(chosen[a].rotation.T @ chosen[b].rotation)
            if angle > largest:
                largest, pair = angle, (a, b)
    return MateChoice(chosen, changed, largest, pair)
