"""How sure an alignment is: chance level, search limits, ambiguity.

An alignment score means little on its own: a correlation of 0.3 can be a sure answer for two
noisy maps and chance for two smooth blobs. So the solution is judged *against decoys*: the same
score (normalised correlation after the best shift within the maximum shift, on the search
grid) for random orientations of the moving map, seeded so that the verdict reproduces. When the
solution does not stand clearly above the decoys' spread, the maps are not similar, or the
low-pass or the mask removed what would tell orientations apart.

The score needed is capped below a perfect match (:meth:`ChanceLevel.required`): correlations
cannot exceed 1, and where the decoys scatter over most of the room above their median, "three
deviations above it" would lie beyond 1 and fail even maps that match exactly.

A solution that sits at a search limit (the shift within about one search voxel of the maximum
shift, or the rotation within a few degrees of a maximum search angle below 180°) may be the
best the limit allows rather than the best there is; so may an unsure one found under a limit,
or one that a peak of the rotation function beyond the angle limit outscores: each says which
limit, and to search every rotation. A clearly different solution that scores
as well (within :data:`AMBIGUITY_MARGIN`) makes the alignment ambiguous: symmetric or
pseudo-symmetric maps, where any symmetry mate is equally right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.symmetry import PointGroup, mates
from align3d.engine.alignment.translation import Candidate, shift_candidates
from align3d.slots.rotations import seeded_random_rotations

AMBIGUITY_MARGIN = 0.01
"""An alignment is ambiguous when the best clearly different alternative scores within this
much (NCC) of the best: typical of symmetric or pseudo-symmetric maps."""

DECOYS_PER_HAND = 24
DECOY_SEED = 20261201
MIN_Z = 3.0
"""The solution must stand this many robust deviations (1.4826 x the median absolute deviation)
above the decoys' median. Measured (benchmarks/confidence.md): two different protein-like maps
of one size land at 1.6-2.7, unrelated real maps and noise at 0-4.2 (those above 3 are caught by
the gain below); real alignments at 3.4 and up, except a smooth synthetic hand in noise (SNR 0.5
after the low-pass) at 2.6-6.1, where the check can warn wrongly, and perfect matches whose
decoys scatter widely (2.7-2.8), which the cap of :meth:`ChanceLevel.required` passes. The median and MAD, unlike the
mean and standard deviation, are not dragged up by the few decoys that land near the truth of
a smooth map..."""
MIN_GAIN = 0.15
"""...and take at least this fraction of the room above the decoys' median (``(s - m) / (1 -
m)``): unrelated maps, noise and a mask off the molecule take 0.00-0.10 (0.19 at most with a
robust deviation far below the limit); real alignments 0.25-1."""
SMOOTH_DECOYS = 0.8
SMOOTH_Z = 6.0
"""When random orientations already score this well (median), the maps are too smooth to fix
an orientation unless the solution stands :data:`SMOOTH_Z` deviations above them (maps
low-passed to blobs: 0.81-0.91)."""
MIN_RESOLUTION_ELEMENTS = 3.0
"""Fewer resolution elements than this across the box (box extent / low-pass) leave nothing
but the envelope to align on."""
ANGLE_MARGIN_DEG = 3.0


def is_ambiguous(score: float, alternative: float | None) -> bool:
    return alternative is not None and score - alternative < AMBIGUITY_MARGIN


@dataclass(frozen=True)
class ChanceLevel:
    """The solution's score on the search grid against the scores of random orientations:
    their median and robust spread (1.4826 x the median absolute deviation)."""

    score: float
    decoy_median: float
    decoy_spread: float
    decoy_max: float = 0.0

    @property
    def z(self) -> float:
        """Robust deviations of the decoys by which the solution stands above their median."""
        return (self.score - self.decoy_median) / max(self.decoy_spread, 1e-6)

    @property
    def gain(self) -> float:
        """The fraction of the room above the decoys' median that the solution takes."""
        return (self.score - self.decoy_median) / max(1.0 - self.decoy_median, 1e-6)

    def required(self, deviations: float) -> float:
        """The score a sure answer needs: ``deviations`` robust deviations above the decoys'
        median, but never more than a perfect score (1) less a :data:`MIN_Z`-th of a deviation.

        Correlations cannot exceed 1, so where the decoys scatter over most of the room above
        their median (a small ``max_shift_A`` that lets some random orientations reach their
        best shift and not others; a map that is long in one direction), ``median + 3
        deviations`` lies above 1 and no answer, not even the maps matching exactly, could pass.
        The cap keeps the test passable by construction: a solution that falls short of a
        perfect match by less than a :data:`MIN_Z`-th of the decoys' deviation stands further
        above chance than the decoys can measure."""
        top = 1.0 - self.decoy_spread / MIN_Z
        return min(self.decoy_median + deviations * self.decoy_spread, top)

    def above_chance(self) -> bool:
        if self.score < self.required(MIN_Z) or self.gain < MIN_GAIN:
            return False
        return not (self.decoy_median > SMOOTH_DECOYS and self.score < self.required(SMOOTH_Z))


def decoy_rotations(count: int) -> NDArray[np.float64]:
    """``count`` rotations uniform on SO(3), the same on every run."""
    return seeded_random_rotations(count, DECOY_SEED)


def chance_level(
    ref_cube: NDArray,
    mov_cube: NDArray,
    voxel_A: float,
    solution: RigidTransform,
    params: AlignmentParams,
) -> ChanceLevel:
    """Score the solution's rotation and random decoy rotations (both hands when both are
    searched) the same way: best shift within the maximum shift, normalised correlation."""
    hands = [False, True] if params.check_both_chiralities else [solution.flip]
    decoys = [
        RigidTransform(rotation, np.zeros(3), flip)
        for flip in hands
        for rotation in decoy_rotations(DECOYS_PER_HAND)
    ]
    hypotheses = [RigidTransform(solution.rotation, np.zeros(3), solution.flip), *decoys]
    scored = shift_candidates(ref_cube, mov_cube, voxel_A, hypotheses, params.max_shift_A)
    decoys_scores = np.array([c.score for c in scored[1:]])
    median = float(np.median(decoys_scores))
    spread = 1.4826 * float(np.median(np.abs(decoys_scores - median)))
    return ChanceLevel(scored[0].score, median, spread, float(decoys_scores.max()))


SYMMETRY_DROP = 0.3
"""A named symmetry is not the reference's when one of its mates loses more than this share of
the solution's height above the decoys (a truly symmetric reference: every mate scores alike)."""


@dataclass(frozen=True)
class SymmetryCheck:
    """How the symmetry mates of a solution score on the search grid: the point group, the mate
    chosen (the one closest to the identity) and the lowest score of any mate, against the
    solution's own and the decoys' median."""

    group: str
    order: int
    chosen_angle_deg: float
    lowest_mate_score: float
    score: float
    decoy_median: float

    @property
    def drop(self) -> float:
        """The share of the solution's height above the decoys that the worst mate loses."""
        height = max(self.score - self.decoy_median, 1e-6)
        return (self.score - self.lowest_mate_score) / height

    def holds(self) -> bool:
        return self.drop <= SYMMETRY_DROP


def symmetry_check(
    ref_cube: NDArray,
    mov_cube: NDArray,
    voxel_A: float,
    solution: RigidTransform,
    group: PointGroup,
    params: AlignmentParams,
    chance: ChanceLevel,
) -> SymmetryCheck:
    """Score every mate of the solution like the decoys: a reference that has the named
    symmetry scores them all alike."""
    hypotheses = [
        RigidTransform(m.transform.rotation, np.zeros(3), m.transform.flip)
        for m in mates(solution, group)
    ]
    scores = [
        c.score
        for c in shift_candidates(ref_cube, mov_cube, voxel_A, hypotheses, params.max_shift_A)
    ]
    return SymmetryCheck(
        group.name,
        group.order,
        solution.angle_deg,
        float(min(scores)),
        chance.score,
        chance.decoy_median,
    )


@dataclass(frozen=True)
class Concern:
    """Something that may be wrong with an alignment: what (``code``, ``message``), which
    parameter it concerns, and what to try."""

    code: Literal[
        "shift_at_limit",
        "shift_limited",
        "angle_at_limit",
        "angle_limited",
        "lowpass_too_coarse",
        "not_above_chance",
        "ambiguous",
        "not_symmetric",
    ]
    message: str
    param: str | None = None
    suggestion: str | None = None


def concerns(result: AlignmentOutcome, params: AlignmentParams) -> list[Concern]:
    """Every concern about an alignment; none for a sure answer well inside its limits."""
    score, alternative_score = result.score, result.alternative_score
    chance, box_extent_A = result.chance, result.box_extent_A
    unsure = chance is not None and not chance.above_chance()
    found = [*_limit_concerns(result, params, unsure)]
    elements = box_extent_A / params.lowpass_resolution_A
    if elements < MIN_RESOLUTION_ELEMENTS:
        suggested = box_extent_A / (2.0 * MIN_RESOLUTION_ELEMENTS)
        found.append(
            Concern(
                "lowpass_too_coarse",
                f"the low-pass (lowpass_resolution_A = {params.lowpass_resolution_A:g} Å) leaves "
                f"{elements:.1f} resolution elements across the {box_extent_A:.0f} Å box: "
                "little but the envelope is left to align on; rerun with lowpass_resolution_A "
                f"= {suggested:.0f} or finer",
                "lowpass_resolution_A",
                f"lowpass_resolution_A = {suggested:.0f}",
            )
        )
    if chance is not None and unsure:
        smooth = chance.decoy_median > SMOOTH_DECOYS
        why = (
            "random orientations fit nearly as well: the maps, as low-passed and masked, are "
            "too smooth to fix an orientation"
            if smooth
            else "the maps may not be similar, or the low-pass or the mask may remove the "
            "features that tell orientations apart"
        )
        found.append(
            Concern(
                "not_above_chance",
                f"the alignment is not clearly better than chance: it scores {chance.score:.3f} "
                f"against {chance.decoy_median:.3f} ± {chance.decoy_spread:.3f} (median, robust "
                f"deviation) for random orientations ({chance.z:.1f} deviations above them, "
                f"{100 * chance.gain:.0f}% of the room above them; a sure answer scores "
                f"{chance.required(MIN_Z):.3f} ({MIN_Z:g} deviations above them, or a near-"
                f"perfect match) and takes {100 * MIN_GAIN:.0f}%): {why} "
                f"(lowpass_resolution_A = {params.lowpass_resolution_A:g} Å)",
                "lowpass_resolution_A",
            )
        )
    check = result.symmetry
    if check is not None and not check.holds():
        found.append(
            Concern(
                "not_symmetric",
                f"the reference does not look {check.group}-symmetric in RELION's axes: of the "
                f"{check.order} symmetry mates of the solution, one scores {check.lowest_mate_score:.3f} "
                f"against {check.score:.3f} (random orientations: {check.decoy_median:.3f}); check "
                "the symmetry parameter, or put the reference's axes where RELION puts them "
                "(relion_align_symmetry) and align again",
                "symmetry",
            )
        )
    if is_ambiguous(score, alternative_score):
        assert alternative_score is not None
        named = params.symmetry != "C1"
        what = (
            f"beyond the {params.symmetry} symmetry named (pseudo-symmetry?)"
            if named
            else "(a symmetric or pseudo-symmetric map? name its symmetry to choose among the "
            "mates consistently)"
        )
        choice = (
            "; of the two, the smaller rotation was chosen (the smaller change of the volume and "
            "its particles' poses)"
            if result.preferred_smaller_rotation
            else ""
        )
        found.append(
            Concern(
                "ambiguous",
                f"ambiguous alignment: a clearly different solution scores {alternative_score:.4f} "
                f"against {score:.4f} {what}{choice}",
                "symmetry",
            )
        )
    return found


def _limit_concerns(
    result: AlignmentOutcome, params: AlignmentParams, unsure: bool
) -> list[Concern]:
    """A solution held by a search limit, or an unsure one found under a limit that may have
    kept the answer out: the shift within about one search voxel of ``max_shift_A`` (two,
    when unsure: every shift, when the limit is that small), the rotation within
    :data:`ANGLE_MARGIN_DEG` of a ``max_search_angle_deg`` below 180 (or any rotation, when
    unsure, or when a peak of the rotation function beyond the limit scores better than the
    solution by more than :data:`AMBIGUITY_MARGIN`). Such an answer is told to search every
    rotation (180°)."""
    found = []
    transform, search_voxel_A = result.transform, result.search_voxel_A
    shift = float(np.linalg.norm(transform.shift_A))
    limit = params.max_shift_A
    # the refinement holds a solution beyond the limit exactly on it; half a refinement voxel
    # (at most one search voxel) tells "held by the limit" from "just inside it"
    margin = min(search_voxel_A, max(0.5 * result.refine_voxel_A, 0.02 * limit))
    at_limit = limit > 0 and shift >= limit - margin
    near = limit > 0 and shift >= limit - 2.0 * search_voxel_A
    if at_limit or (unsure and near):
        suggested = round(max(2.0 * limit, limit + 2.0 * search_voxel_A))
        where = (
            f"the shift found ({shift:.1f} Å) sits at the search limit max_shift_A = {limit:g} Å"
            if at_limit
            else f"the shift search was limited to max_shift_A = {limit:g} Å and the answer "
            f"is not sure (the shift found, {shift:.1f} Å, is near the limit)"
        )
        found.append(
            Concern(
                "shift_at_limit" if at_limit else "shift_limited",
                f"{where}: the true shift may be larger; rerun with max_shift_A = {suggested:g}",
                "max_shift_A",
                f"max_shift_A = {suggested:g}",
            )
        )
    angle_limit = params.max_search_angle_deg
    at_limit = angle_limit < 180.0 and transform.angle_deg >= angle_limit - ANGLE_MARGIN_DEG
    beyond, chance = result.beyond_limit, result.chance
    better_beyond = (
        beyond is not None and chance is not None and beyond.score > chance.score + AMBIGUITY_MARGIN
    )
    if angle_limit < 180.0 and (at_limit or unsure or better_beyond):
        wide = unsure or better_beyond
        suggested = 180.0 if wide else min(180.0, max(2.0 * angle_limit, angle_limit + 30.0))
        if at_limit:
            where = (
                f"the rotation found ({transform.angle_deg:.1f}°) sits at the search limit "
                f"max_search_angle_deg = {angle_limit:g}°"
            )
        else:
            where = f"the search was limited to {angle_limit:g}° (max_search_angle_deg) and "
            where += "the answer is not sure" if unsure else "is not the best there is"
            where += f" (rotation found: {transform.angle_deg:.1f}°)"
        if better_beyond:
            assert beyond is not None and chance is not None
            where += (
                f"; a rotation of {beyond.transform.angle_deg:.0f}° beyond the limit scores "
                f"{beyond.score:.3f} against the solution's {chance.score:.3f}"
            )
        found.append(
            Concern(
                "angle_at_limit" if at_limit else "angle_limited",
                f"{where}: the answer may lie beyond it; rerun with max_search_angle_deg = "
                f"{suggested:g}",
                "max_search_angle_deg",
                f"max_search_angle_deg = {suggested:g}",
            )
        )
    return found


class AlignmentOutcome(Protocol):
    """What :func:`concerns` reads of an alignment result."""

    transform: RigidTransform
    score: float
    alternative_score: float | None
    chance: ChanceLevel | None
    beyond_limit: Candidate | None
    symmetry: SymmetryCheck | None
    preferred_smaller_rotation: bool
    search_voxel_A: float
    refine_voxel_A: float
    box_extent_A: float
