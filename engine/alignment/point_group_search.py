"""The point group of a map among C1-C12, D2-D12, T, O and I, its axes, and the move that puts
it in RELION's orientation (:mod:`.symmetry`).

1. Axes: every direction of a Fibonacci hemisphere (about 4.5° apart) is scored as an n-fold
   axis for n = 2..12 (:func:`.point_group.axis_scores`); the best local maxima of each fold
   that score above every random rotation (below) are refined to 0.1°.
2. Groups: each candidate group is placed by a frame ``Q`` (RELION's frame to the map's:
   ``Q`` takes RELION's axes of the group onto the map's), from its axes: ``Cn`` the n-fold on
   z; ``Dn`` the n-fold and the best 2-fold perpendicular to it (x); ``T`` a 3-fold and a 2-fold
   54.7° from it; ``O`` two perpendicular 4-folds; ``I`` a 2-fold and a 5-fold 31.7° from it.
   A group's score is the smallest score of its operators ``Q S Qᵀ`` (every one must hold).
3. Frames: a candidate that scores above its level (below) has its frame refined (small
   turns, down to 0.05°) to its best score.
4. Choice: a group holds when its score is nearer 1 (exact invariance) than the level that
   rotations outside it reach, measured on the map itself: the median score of
   :data:`RANDOM_ROTATIONS` seeded random rotations (the C1 level: an unrelated rotation), and,
   for ``Cn`` and ``Dn``, the turn by 180°/n about the n-fold (the nearest rotation about that
   axis that the group lacks: what a cylindrical part of the map alone would score). That is,
   its score must pass the midpoint between that level and 1, its ``threshold``. The group found
   is the one of highest order that holds (ties: the better score), C1 when none does; a
   pseudo-symmetry shows as a group scoring between its level and its threshold.

The move to RELION's orientation is ``y = Qᵀ (x - c)`` (Å about box centres; ``c`` the
symmetry centre): the moved map ``V'(y) = V(Q y + c)`` is invariant under RELION's operators.
For C1 it is the identity (no axis, no centre).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.point_group import (
    FOLDS,
    MOVES_PER_STEP,
    SelfRotation,
    axis_score,
    axis_scores,
    best_perpendicular_two_fold,
    fibonacci_hemisphere,
    local_maxima,
    refine_axis,
    self_rotation,
)
from align3d.engine.alignment.symmetry import PHI, point_group
from align3d.slots.rotations import matrix_rotvec, rotvec_matrix, seeded_random_rotations

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]

DIRECTIONS = 1000
"""Directions of the coarse search (a hemisphere: neighbours about 4.5° apart)."""
MAXIMA_PER_FOLD = 3
"""Local maxima refined per fold (O needs two of its 4-folds; T, I and D one of each kind)."""
RANDOM_ROTATIONS = 64
RANDOM_SEED = 0
PAIR_TOLERANCE_DEG = 5.0
"""How far two refined axes may be from the angle between them a group needs."""

_T_TWO_FOLD = np.array([0.0, np.sqrt(2 / 3), np.sqrt(1 / 3)])  # RELION's T: 2-fold, 3-fold on z
_I_FIVE_FOLD = np.array([1.0, 0.0, PHI]) / np.hypot(1.0, PHI)  # RELION's I2: 2-fold on z


@dataclass(frozen=True)
class Axis:
    """An n-fold axis of the map: ``fold``, unit ``direction`` ``(x, y, z)``, its score."""

    fold: int
    direction: Array
    score: float


@dataclass(frozen=True)
class Candidate:
    """A point group placed on the map: RELION ``name``, ``order``, ``score`` (the smallest
    over its operators), ``frame`` ``Q`` (RELION's frame to the map's, 3 x 3), the group's
    ``axes`` in the map's frame (one per axis, its highest fold) and the ``threshold`` its score
    must reach to hold (see the module)."""

    name: str
    order: int
    score: float
    frame: Array
    axes: tuple[Axis, ...]
    threshold: float

    @property
    def holds(self) -> bool:
        return self.score >= self.threshold


@dataclass(frozen=True)
class PointGroupResult:
    """What :func:`find_point_group` found: the group ``point_group`` (one of
    ``candidates``), every candidate best first by order, ``random_level`` (the C1 level),
    ``centre_A`` (the symmetry centre, Å about
    the box centre, ``(x, y, z)``) and ``to_relion``: the move that puts the map in RELION's
    orientation, its centre on the box centre."""

    point_group: str
    candidates: tuple[Candidate, ...]
    random_level: float
    centre_A: Array
    to_relion: RigidTransform

    @property
    def found(self) -> Candidate:
        return next(c for c in self.candidates if c.name == self.point_group)


def _frame(z_axis: Array, x_hint: Array | None = None) -> Array:
    """A rotation whose third column is ``z_axis`` and first is ``x_hint`` made perpendicular
    (any perpendicular when ``None``)."""
    z = z_axis / np.linalg.norm(z_axis)
    if x_hint is None:
        x_hint = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = x_hint - (x_hint @ z) * z
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def group_axes(name: str, frame: Array) -> tuple[Axis, ...]:
    """The axes of group ``name`` placed by ``frame``, each with its highest fold (score 0:
    unscored)."""
    found: list[tuple[Array, int]] = []
    for op in point_group(name).operators[1:]:
        rotvec = matrix_rotvec(op)
        angle = float(np.linalg.norm(rotvec))
        axis = rotvec / angle
        fold = round(2 * np.pi / angle)
        for i, (known, known_fold) in enumerate(found):
            if abs(float(known @ axis)) > 1 - 1e-6:
                found[i] = (known, max(known_fold, fold))
                break
        else:
            found.append((axis, fold))
    found.sort(key=lambda a: -a[1])
    return tuple(Axis(fold, frame @ axis, 0.0) for axis, fold in found)


def group_score(maps: SelfRotation, name: str, frame: Array) -> float:
    """The smallest score of the operators of ``name`` placed by ``frame``."""
    ops = point_group("I2" if name == "I" else name).operators[1:]
    return float(min(maps.score(frame @ s @ frame.T) for s in ops))


def refine_frame(maps: SelfRotation, name: str, frame: Array, score: float) -> tuple[float, Array]:
    """Pattern search over small turns of ``frame`` (2° down to 0.05°) for the best score of
    group ``name``; returns the score and the frame."""
    step, moves = np.radians(2.0), 0
    while step >= np.radians(0.05):
        improved = False
        for turn in np.concatenate([np.eye(3), -np.eye(3)]) * step:
            trial = rotvec_matrix(turn) @ frame
            trial_score = group_score(maps, name, trial)
            if trial_score > score:
                frame, score, improved = trial, trial_score, True
        moves += 1
        if not improved or moves >= MOVES_PER_STEP:
            step, moves = step / 2, 0
    return score, frame


def _pairs(first: list[Axis], second: list[Axis], angle_deg: float) -> list[tuple[Array, Array]]:
    """Pairs of axes ``angle_deg`` apart (the second's sign chosen to make it so)."""
    out = []
    for a in first:
        for b in second:
            cosine = float(a.direction @ b.direction)
            signed = b.direction if cosine >= 0 else -b.direction
            between = np.degrees(np.arccos(min(1.0, abs(cosine))))
            if abs(between - angle_deg) <= PAIR_TOLERANCE_DEG:
                out.append((a.direction, signed))
    return out


def _frames(name: str, axes: dict[int, list[Axis]], maps: SelfRotation) -> list[Array]:
    """Frames that could place group ``name`` on the map, from its refined axes."""
    kind = name[0]
    if kind == "C":
        return [_frame(a.direction) for a in axes[int(name[1:])][:3]]
    if kind == "D":
        out = []
        for a in axes[int(name[1:])][:1]:
            two_fold, _ = best_perpendicular_two_fold(maps, a.direction)
            out.append(_frame(a.direction, two_fold))
        return out
    if kind == "T":  # y: the 2-fold's part perpendicular to the 3-fold on z
        return [_frame(a, np.cross(b, a)) for a, b in _pairs(axes[3], axes[2], 54.7356)]
    if kind == "O":
        return [_frame(a, b) for a, b in _pairs(axes[4], axes[4], 90.0)]
    return [_frame(a, b) for a, b in _pairs(axes[2], axes[5], 31.7175)]


def find_point_group(volume: NDArray[np.floating], voxel_A: float | Array) -> PointGroupResult:
    """The point group of ``volume`` (``[z, y, x]``, voxel ``voxel_A`` Å), see the module."""
    maps = self_rotation(volume, voxel_A)
    directions = fibonacci_hemisphere(DIRECTIONS)
    coarse = axis_scores(maps, directions)
    spacing = np.sqrt(2 * np.pi / DIRECTIONS)
    random = maps.scores(seeded_random_rotations(RANDOM_ROTATIONS, RANDOM_SEED))
    random_level = float(np.median(random))
    axes: dict[int, list[Axis]] = {}
    for j, fold in enumerate(FOLDS):
        found: list[Axis] = []
        for i in local_maxima(directions, coarse[:, j], 1.5 * spacing)[:MAXIMA_PER_FOLD]:
            direction, score = directions[i], float(coarse[i, j])
            if score >= float(random.max()):  # as good as a random rotation: not refined
                direction, score = refine_axis(maps, direction, fold, np.degrees(spacing) / 2)
            if all(abs(float(direction @ f.direction)) < np.cos(np.radians(2)) for f in found):
                found.append(Axis(fold, direction, score))
        axes[fold] = sorted(found, key=lambda a: -a.score)
    names = [f"C{n}" for n in FOLDS] + [f"D{n}" for n in FOLDS] + ["T", "O", "I"]
    candidates = [Candidate("C1", 1, 1.0, np.eye(3), (), 1.0)]
    for name in names:
        scored = [(group_score(maps, name, q), q) for q in _frames(name, axes, maps)]
        if not scored:
            continue
        score, frame = max(scored, key=lambda s: s[0])
        relion = "I2" if name == "I" else name
        level = random_level
        if name[0] in "CD":
            half_step = rotvec_matrix(frame[:, 2] * np.pi / int(name[1:]))
            level = max(level, maps.score(half_step))
        if score > level:  # it may hold: its frame is refined
            score, frame = refine_frame(maps, name, frame, score)
        placed = group_axes(relion, frame)
        scored_axes = tuple(Axis(a.fold, a.direction, _axis_value(maps, a)) for a in placed)
        order = point_group(relion).order
        candidates.append(Candidate(name, order, score, frame, scored_axes, (1.0 + level) / 2))
    chosen = max((c for c in candidates if c.holds), key=lambda c: (c.order, c.score))
    logger.info(
        "point group %s (score %.3f; random rotations reach %.3f)",
        chosen.name,
        chosen.score,
        random_level,
    )
    frame = chosen.frame
    # C1 has no axes nor centre: the map stays as it is
    centred = chosen.order > 1
    to_relion = RigidTransform(frame.T, -(frame.T @ maps.centre_A) if centred else np.zeros(3))
    ordered = sorted(candidates, key=lambda c: (-c.order, -c.score))
    return PointGroupResult(chosen.name, tuple(ordered), random_level, maps.centre_A, to_relion)


def _axis_value(maps: SelfRotation, axis: Axis) -> float:
    """An axis's score (the smallest over its rotations)."""
    return axis_score(maps, axis.direction, axis.fold)


def axis_error_deg(a: Array, b: Array) -> float:
    """Angle between two axes (an axis the same as its opposite), degrees."""
    cosine = abs(float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(min(1.0, cosine))))
