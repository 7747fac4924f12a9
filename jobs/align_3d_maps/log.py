"""The job log's account of one volume's alignment: the same numbers as result.json."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from schemas.documents import AlignmentRecord


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
