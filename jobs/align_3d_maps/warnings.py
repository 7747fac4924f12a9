"""What may be wrong with one volume's alignment, said in words for the log, the report and
result.json (the concerns of :mod:`align3d.engine.alignment.confidence`, named by volume)."""

from __future__ import annotations

from align3d.engine.alignment.align import AlignmentResult


def volume_label(index: int) -> str:
    """How a warning names its volume: ``volume 3: ...``."""
    return f"volume {index}: "


def volume_warnings(index: int, result: AlignmentResult) -> list[str]:
    """The warnings of volume ``index``'s alignment."""
    return [f"{volume_label(index)}{concern.message}" for concern in result.concerns()]
