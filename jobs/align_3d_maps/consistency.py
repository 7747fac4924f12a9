"""The volumes of one job in register with each other, not only each with the reference.

With a symmetric reference every volume has several equally good solutions (its symmetry mates).
Each task returns the mate closest to the identity; volumes that sit a few degrees apart could
still fall on different mates near the middle between two of them, and their particles, once
combined, would then differ by a symmetry operation. So the mates are chosen together:

1. Volumes whose solutions agree modulo the group (within :data:`SAME_FRAME_DEG`) form a group of
   their own: classes of one classification, refinements in one frame.
2. In each such group every volume takes the mate nearest its first member's, and the group as a
   whole takes the common mate that keeps its rotations, on average, closest to the identity.

The job then reports the largest rotation between any two aligned volumes. That rotation says
how differently the inputs came oriented, not whether the aligned volumes are in register: two
maps from different jobs, each aligned onto the reference, have very different transforms and end
up in register. So the warning compares the maps themselves (:func:`register_checks`): two
volumes whose transforms differ by more than :data:`AGREE_DEG` are out of register when their
maps, as they came, fit each other at least as well as the job places them (within
:data:`~align3d.engine.alignment.confidence.AMBIGUITY_MARGIN` of NCC). They then shared a frame
before the job, and the job turned them apart: one of them aligned wrongly, or the two on
different symmetry mates. Volumes that came in different frames fit each other far better as the
job places them than as they came, and raise nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.confidence import AMBIGUITY_MARGIN
from align3d.engine.alignment.geometry import RigidTransform, rotation_angle_deg
from align3d.engine.alignment.resample import GridMove, resample_map
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


@dataclass(frozen=True)
class VolumePrint:
    """A volume as its search saw it (``AlignmentResult.moving_search_map``: masked, low-passed,
    a cube of ``voxel_A`` Å voxels about the volume's own box centre) with the transform the job
    gives it."""

    values: NDArray[np.float32]
    voxel_A: float
    transform: RigidTransform


@dataclass(frozen=True)
class RegisterCheck:
    """Two volumes whose transforms differ (by ``rotation_deg``, or by hand): how well their
    maps fit each other as they came (``fit_before``) and as the job places them
    (``fit_after``), by normalised correlation."""

    first: int
    second: int
    rotation_deg: float
    hand_differs: bool
    fit_before: float
    fit_after: float

    def out_of_register(self) -> bool:
        """As they came, the maps fit each other as well as the job places them, or better: they
        shared a frame, and the job turned them apart."""
        return self.fit_before >= self.fit_after - AMBIGUITY_MARGIN


def _ncc(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    norm = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    return float(np.vdot(a.astype(np.float64), b.astype(np.float64))) / norm if norm else 0.0


def register_checks(prints: dict[int, VolumePrint]) -> list[RegisterCheck]:
    """Every pair of volumes whose transforms differ by more than :data:`AGREE_DEG` or by hand,
    compared on the first one's grid: the second as it came, and the second moved by ``T_a^-1
    T_b`` (where the job places it relative to the first)."""
    checks = []
    ordered = sorted(prints)
    for position, a in enumerate(ordered):
        for b in ordered[position + 1 :]:
            first, second = prints[a], prints[b]
            rotation = first.transform.rotation_error_deg(second.transform)
            hand_differs = first.transform.flip != second.transform.flip
            if rotation <= AGREE_DEG and not hand_differs:
                continue
            shape = first.values.shape
            relative = first.transform.inverse().compose(second.transform)
            fits = [
                _ncc(
                    first.values,
                    resample_map(
                        second.values,
                        GridMove(
                            transform=t,
                            in_voxel_A=second.voxel_A,
                            out_shape=shape,
                            out_voxel_A=first.voxel_A,
                        ),
                    ),
                )
                for t in (RigidTransform(), relative)
            ]
            checks.append(RegisterCheck(a, b, rotation, hand_differs, fits[0], fits[1]))
    return checks
