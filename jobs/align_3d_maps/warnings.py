"""What may be wrong with one volume's alignment, said in words for the log, the report and
result.json."""

from __future__ import annotations

from engine.alignment.align import AlignmentResult
from engine.alignment.confidence import is_ambiguous


def volume_warnings(index: int, result: AlignmentResult) -> list[str]:
    """The warnings of volume ``index``'s alignment."""
    warnings = []
    alt = result.alternative_score
    if alt is not None and is_ambiguous(result.score, alt):
        warnings.append(
            f"volume {index}: ambiguous alignment: a clearly different alternative scores "
            f"{alt:.4f} against {result.score:.4f} (a symmetric or pseudo-symmetric map? "
            "any symmetry mate is then equally right)"
        )
    return warnings
