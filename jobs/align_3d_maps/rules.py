"""Rules of Align 3D Maps that both the graph check (before any file is read) and the
preflight (with the files) apply."""

from __future__ import annotations

from align3d.engine.issues import JobProblem
from align3d.jobs.align_3d_maps.slots import MASKS_ALL_CLASSES


def mask_count_problems(masks: int, volumes: int) -> list[JobProblem]:
    """A group takes one mask for all its volumes, or one per volume."""
    if masks in (1, volumes):
        return []
    return [
        JobProblem(
            code="wrong_mask_count",
            slot=MASKS_ALL_CLASSES.name,
            message=f"give 1 mask or one per volume ({volumes}), got {masks}",
        )
    ]
