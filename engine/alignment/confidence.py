"""How sure an alignment is: ambiguity between clearly different solutions."""

from __future__ import annotations

AMBIGUITY_MARGIN = 0.01
"""An alignment is ambiguous when the best clearly different alternative scores within this
much (NCC) of the best: typical of symmetric or pseudo-symmetric maps."""


def is_ambiguous(score: float, alternative: float | None) -> bool:
    return alternative is not None and score - alternative < AMBIGUITY_MARGIN
