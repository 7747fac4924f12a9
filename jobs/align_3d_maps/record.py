"""One volume's alignment as the result manifest records it (:class:`AlignmentRecord`): the
numbers and the warnings that result.json, job.log, report.html and the ``align`` command's
summary all show, made in one place."""

from __future__ import annotations

from align3d.jobs.align_3d_maps.outcome import VolumeOutcome, finite_or_none
from align3d.jobs.align_3d_maps.warnings import volume_warnings
from align3d.schemas.documents import AlignmentRecord


def alignment_record(
    index: int, outcome: VolumeOutcome, symmetry: str, seconds: float
) -> AlignmentRecord:
    """The record of volume ``index``'s alignment (``outcome``), aligned modulo ``symmetry``
    in ``seconds`` (wall time, s); its warnings are the alignment's concerns (search limits,
    chance, ambiguity, symmetry) and what the output grid cost."""
    t = outcome.alignment.transform
    chance = outcome.alignment.chance
    mates = outcome.alignment.symmetry
    return AlignmentRecord(
        index=index,
        rotation=t.rotation.tolist(),
        shift_A=t.shift_A.tolist(),
        hand_flipped=t.flip,
        matrix=t.matrix.tolist(),
        rotation_angle_deg=t.angle_deg,
        score=outcome.alignment.score,
        alternative_score=outcome.alignment.alternative_score,
        chance_z=None if chance is None else round(chance.z, 3),
        chance_gain=None if chance is None else round(chance.gain, 4),
        fsc_0143_A=finite_or_none(outcome.fsc_after_0143_A),
        fsc_0143_before_A=finite_or_none(outcome.fsc_before_0143_A),
        seconds=seconds,
        symmetry=symmetry,
        symmetry_lowest_mate_score=None if mates is None else round(mates.lowest_mate_score, 6),
        warnings=volume_warnings(index, outcome.alignment) + outcome.grid_warnings,
    )
