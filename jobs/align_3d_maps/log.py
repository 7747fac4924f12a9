"""The job log's account of the alignments: the same numbers as result.json.

While the volumes run (in parallel, finishing in any order), one progress line per volume as it
finishes (:func:`log_progress`); once all are done, each volume's full account in index order
and the particle files written (:func:`log_volumes`), so that the log reads the same whatever
order the volumes finished in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from align3d.jobs.align_3d_maps.particle_outputs import ParticlesWritten
from align3d.jobs.align_3d_maps.report_header import at_nyquist
from align3d.schemas.documents import AlignmentRecord


def _matrix_lines(name: str, matrix: np.ndarray) -> list[str]:
    rows = [" ".join(f"{v: .6f}" for v in row) for row in matrix]
    return (
        [f"  {name} = [" + rows[0]]
        + [" " * (len(name) + 6) + r for r in rows[1:-1]]
        + [" " * (len(name) + 6) + rows[-1] + "]"]
    )


def log_alignment(log: Callable[[str], None], record: AlignmentRecord) -> None:
    """Log one volume's alignment (numbers as in result.json), then its warnings."""
    lines = [f"volume {record.index}:"]
    lines += _matrix_lines("rotation R", np.asarray(record.rotation))
    lines.append("  translation t (Å) = [" + ", ".join(f"{v:.6f}" for v in record.shift_A) + "]")
    lines.append(f"  hand flipped: {'yes' if record.hand_flipped else 'no'}")
    lines += _matrix_lines("matrix [[R F^flip, t], [0, 1]]", np.asarray(record.matrix))
    alt = record.alternative_score
    lines.append(
        f"  score (NCC) = {record.score:.6f}; best clearly different alternative = "
        + ("none" if alt is None else f"{alt:.6f}")
    )
    lines.append(
        f"  FSC 0.143 against the reference: before {record.fsc_0143_before_A} Å, "
        f"after {record.fsc_0143_A} Å"
        + (
            " (the grid's Nyquist: the curve never falls below 0.143)"
            if at_nyquist(record.fsc_0143_A, record.reference_grid)
            else ""
        )
    )
    if record.symmetry != "C1":
        lines.append(
            f"  symmetry {record.symmetry}: of the equally good symmetry mates, the one closest "
            f"to the identity ({record.rotation_angle_deg:.2f}°; lowest mate score "
            f"{record.symmetry_lowest_mate_score})"
        )
    if record.chance_z is not None:
        lines.append(
            f"  against random orientations: {record.chance_z:.1f} robust deviations above, "
            f"{100 * (record.chance_gain or 0):.0f}% of the room above them"
        )
    lines.append(f"  time {record.seconds:.2f} s")
    lines += [f"  WARNING: {w}" for w in record.warnings]
    for line in lines:
        log(line)


def log_progress(
    log: Callable[[str], None], record: AlignmentRecord, done: int, total: int
) -> None:
    """One line as volume ``record.index`` finishes (``done`` of ``total``): its rotation angle
    (°), shift length (Å), hand and score; the full account comes at the end."""
    shift = float(np.linalg.norm(record.shift_A))
    warned = len(record.warnings)
    log(
        f"volume {record.index} aligned ({done} of {total}): rotation "
        f"{record.rotation_angle_deg:.2f}°, shift {shift:.2f} Å, hand "
        f"{'flipped' if record.hand_flipped else 'kept'}, score {record.score:.4f}"
        + (f", {warned} warning{'s' if warned > 1 else ''}" if warned else "")
    )


def particles_line(written: ParticlesWritten) -> str:
    """What one particle file written holds, in words (the log's): its slot, its file (in the
    job folder), its source, how many particles and how many poses changed."""
    which = ", ".join(map(str, written.volumes))
    follows = (
        f"volume {which}"
        if len(written.volumes) == 1
        else f"the volumes of their classes ({which})"
    )
    return (
        f"{written.slot}: wrote {written.path.name}, {written.count} particles from "
        f"{written.source}; {written.changed} poses changed (following {follows})"
    )


def log_volumes(
    log: Callable[[str], None],
    records: Sequence[AlignmentRecord],
    particles: Sequence[ParticlesWritten] = (),
) -> None:
    """Every volume's account in index order, then each particle file written (in the order of
    the volumes it follows; a file shared by classes with each class's counts)."""
    for record in sorted(records, key=lambda r: r.index):
        log_alignment(log, record)
    for written in sorted(particles, key=lambda w: (w.volumes, w.slot)):
        log(particles_line(written))
        if len(written.by_volume) > 1:
            for volume in written.by_volume:
                log(
                    f"  volume {volume.index}: {volume.count} particles, "
                    f"{volume.changed} poses changed"
                )
