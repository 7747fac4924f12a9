"""Warnings a scientist can believe under narrow searches (issue 26, items 1 and 3): a perfect
match within a small shift limit and search angle is a sure answer; an unsure answer found
under a search limit says which limit may have kept the true answer out, and what to try."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.align import align_maps
from align3d.engine.alignment.confidence import MIN_Z, ChanceLevel, SymmetryCheck, concerns
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.translation import Candidate
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.slots.mrc import read_map
from tests.helpers import REPO, move_with_scipy

FIXTURES = REPO / "fixtures"


def test_an_aligned_map_checked_in_a_narrow_search_is_sure() -> None:
    """fixtures/workflow.json's ``check`` job (issue 26): the aligned map against its reference
    with max_shift_A 5 and a 10° search scores 1.000; the decoys, some of which cannot reach
    their best shift within 5 Å, scatter so widely (0.587 ± 0.146) that 3 deviations lie above
    a perfect score. It was called "not clearly better than chance"; it is sure."""
    ref = read_map(FIXTURES / "small_reference.mrc")
    mov = read_map(FIXTURES / "small_moving.mrc")
    p, q = float(ref.voxel_size_A[0]), float(mov.voxel_size_A[0])
    first = align_maps(
        ref.data,
        mov.data,
        reference_voxel_A=p,
        moving_voxel_A=q,
        params=AlignmentParams(max_shift_A=15),
    )
    aligned = move_with_scipy(mov.data, q, first.transform, ref.data.shape, p)
    check = align_maps(
        ref.data,
        aligned,
        reference_voxel_A=p,
        moving_voxel_A=p,
        params=AlignmentParams(max_shift_A=5, max_search_angle_deg=10),
    )
    assert check.score > 0.999
    assert check.transform.angle_deg < 0.5
    assert check.chance is not None
    assert check.chance.decoy_median + MIN_Z * check.chance.decoy_spread > 1.0  # the trap
    assert check.chance.above_chance()
    assert [c.message for c in check.concerns()] == []


def test_the_score_needed_never_exceeds_a_perfect_match() -> None:
    wide = ChanceLevel(score=0.99999, decoy_median=0.587, decoy_spread=0.146)
    assert wide.required(MIN_Z) == pytest.approx(1.0 - 0.146 / MIN_Z)
    assert wide.above_chance()
    # short of perfect by more than a third of a deviation: still judged by the decoys
    assert not ChanceLevel(score=0.9, decoy_median=0.587, decoy_spread=0.146).above_chance()
    # a narrow scatter: the usual test, unchanged
    narrow = ChanceLevel(score=0.3, decoy_median=0.2, decoy_spread=0.04)
    assert narrow.required(MIN_Z) == pytest.approx(0.32)
    assert not narrow.above_chance()


@dataclass(frozen=True)
class _Outcome:
    """An alignment result as :func:`concerns` reads it."""

    transform: RigidTransform
    chance: ChanceLevel
    score: float = 0.5
    alternative_score: float | None = None
    symmetry: SymmetryCheck | None = None
    preferred_smaller_rotation: bool = False
    search_voxel_A: float = 3.0
    refine_voxel_A: float = 2.0
    box_extent_A: float = 120.0
    beyond_limit: Candidate | None = None


UNSURE = ChanceLevel(score=0.62, decoy_median=0.6, decoy_spread=0.05)
SURE = ChanceLevel(score=0.95, decoy_median=0.6, decoy_spread=0.05)


def _inside(angle_deg: float, shift_A: float) -> RigidTransform:
    return RigidTransform(
        Rotation.from_rotvec([0.0, np.radians(angle_deg), 0.0]).as_matrix(), [shift_A, 0.0, 0.0]
    )


def test_an_unsure_answer_inside_a_limited_search_names_the_limit() -> None:
    params = AlignmentParams(max_shift_A=5, max_search_angle_deg=30)
    found = {c.code: c for c in concerns(_Outcome(_inside(12.0, 0.5), UNSURE), params)}
    assert "not_above_chance" in found
    angle = found["angle_limited"]
    assert angle.param == "max_search_angle_deg"
    assert "limited to 30°" in angle.message and "max_search_angle_deg = 180" in angle.message
    assert angle.suggestion == "max_search_angle_deg = 180"
    # a 5 Å limit is under two search voxels (3 Å): every shift found is near it
    shift = found["shift_limited"]
    assert shift.param == "max_shift_A" and "max_shift_A = 5 Å" in shift.message
    assert "max_shift_A = 11" in shift.message


def test_a_sure_answer_inside_its_limits_names_none() -> None:
    params = AlignmentParams(max_shift_A=5, max_search_angle_deg=30)
    assert concerns(_Outcome(_inside(12.0, 0.5), SURE), params) == []


def test_an_unsure_answer_far_from_a_wide_shift_limit_names_only_the_angle() -> None:
    params = AlignmentParams(max_shift_A=40, max_search_angle_deg=30)
    codes = {c.code for c in concerns(_Outcome(_inside(12.0, 4.0), UNSURE), params)}
    assert codes == {"not_above_chance", "angle_limited"}
    full = AlignmentParams(max_shift_A=40)
    assert {c.code for c in concerns(_Outcome(_inside(12.0, 4.0), UNSURE), full)} == {
        "not_above_chance"
    }


def test_a_rotation_far_beyond_a_narrow_search_says_try_180() -> None:
    """The true rotation at 130° with max_search_angle_deg 30: the answer is not sure, and the
    warning says that the search was limited and to search the whole of it."""
    p, box = 2.0, (64, 64, 64)
    reference = protein_like_map(box, p, seed=3)
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    truth = RigidTransform(Rotation.from_rotvec(np.radians(130.0) * axis).as_matrix(), [0, 0, 0])
    moving = move_with_scipy(reference, p, truth.inverse(), box, p)
    params = AlignmentParams(max_shift_A=40, max_search_angle_deg=30)
    result = align_maps(reference, moving, reference_voxel_A=p, moving_voxel_A=p, params=params)
    assert result.transform.rotation_error_deg(truth) > 90.0  # out of reach
    found = result.concerns()
    assert "not_above_chance" in {c.code for c in found}
    angle = [c for c in found if c.param == "max_search_angle_deg"]
    assert len(angle) == 1, [c.message for c in found]
    assert "max_search_angle_deg = 180" in angle[0].message
    assert angle[0].suggestion == "max_search_angle_deg = 180"


def test_a_shift_beyond_a_small_limit_names_the_limit() -> None:
    """The true shift 9 Å with max_shift_A 5: the shift found sits at the limit, and the
    warning suggests a larger one (twice the limit, or the limit and two search voxels)."""
    p, box = 2.0, (64, 64, 64)
    reference = protein_like_map(box, p, seed=3)
    truth = RigidTransform(np.eye(3), [9.0, 0.0, 0.0])
    moving = move_with_scipy(reference, p, truth.inverse(), box, p)
    result = align_maps(
        reference,
        moving,
        reference_voxel_A=p,
        moving_voxel_A=p,
        params=AlignmentParams(max_shift_A=5),
    )
    shift = [c for c in result.concerns() if c.param == "max_shift_A"]
    assert len(shift) == 1 and shift[0].code in {"shift_at_limit", "shift_limited"}
    assert "max_shift_A = 5 Å" in shift[0].message and "max_shift_A = 11" in shift[0].message


def test_a_better_rotation_beyond_the_limit_is_said_even_for_a_sure_answer() -> None:
    """A sure-looking answer inside a 30° search while a peak of the rotation function at 120°,
    beyond the limit, scores better: the answer may lie beyond the limit."""
    params = AlignmentParams(max_shift_A=40, max_search_angle_deg=30)
    better = Candidate(_inside(120.0, 0.0), SURE.score + 0.04)
    found = concerns(_Outcome(_inside(12.0, 0.5), SURE, beyond_limit=better), params)
    assert [c.code for c in found] == ["angle_limited"]
    assert "120° beyond the limit scores 0.990 against the solution's 0.950" in found[0].message
    assert found[0].suggestion == "max_search_angle_deg = 180"
    # a peak beyond the limit that scores alike (a symmetry mate): nothing to say
    alike = Candidate(_inside(120.0, 0.0), SURE.score + 0.005)
    assert concerns(_Outcome(_inside(12.0, 0.5), SURE, beyond_limit=alike), params) == []
