"""Align 3D Maps: put volumes in register with a reference (rotation, shift, hand).

The declaration (parameters in :mod:`.params`, slots in :mod:`.slots`) and the rules that
slot types alone cannot say. Importing this module loads no compiled kernel (``align3d
validate``, ``schema`` and ``describe`` stay quick); :meth:`AlignJob.run` loads the numerical
work when a job runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from align3d.engine.issues import JobProblem
from align3d.engine.jobdef import Connected, DeclaredJob, JobOutcome, RunContext
from align3d.jobs.align_3d_maps.params import AlignParams
from align3d.jobs.align_3d_maps.rules import mask_count_problems
from align3d.jobs.align_3d_maps.slots import (
    GROUP,
    INDIVIDUAL,
    INPUTS,
    MASKS_ALL_CLASSES,
    OUTPUTS,
    group_mode,
)
from align3d.schemas.documents import AlignmentDetails

ERROR_CODES: dict[str, str] = {
    "group_and_individual": "both maps_to_align_group and maps_to_align are connected",
    "per_volume_without_volume": "a per-volume slot (particles_N, mask_N) whose volume N is not "
    "connected",
    "wrong_mask_count": "masks_all_classes holds neither one mask nor one per volume",
    "grid_mismatch": "maps of one volume (or a volume and its mask) on different grids",
    "class_without_volume": "particles of a class that has no volume in the group",
}
"""The error codes of this job's own rules (the runtime's are in align3d.engine.issues.ERROR_CODES)."""


@dataclass(frozen=True)
class AlignJob(DeclaredJob):
    details_model: ClassVar[type[BaseModel] | None] = AlignmentDetails
    error_codes: ClassVar[Mapping[str, str]] = ERROR_CODES

    def check(self, params: AlignParams, connected: Connected) -> list[JobProblem]:  # type: ignore[override]
        """Rules of this job beyond slot types, every problem at once."""
        problems: list[JobProblem] = []
        group, individual = group_mode(connected), connected.has(INDIVIDUAL)
        if group and individual:
            problems.append(
                JobProblem(
                    code="group_and_individual",
                    slot=INDIVIDUAL,
                    message=f"connect either {GROUP} or {INDIVIDUAL}, not both",
                )
            )
        if not group and not individual:
            problems.append(
                JobProblem(
                    code="missing_required_input",
                    slot=INDIVIDUAL,
                    message=f"nothing to align: connect {GROUP} or {INDIVIDUAL}",
                )
            )
        indices = set(self.volume_indices(connected))
        for slot in connected.counts:
            found = self.template_of(slot)
            if found is not None and (group or found[1] not in indices):
                have = ", ".join(str(i) for i in sorted(indices)) or "none"
                problems.append(
                    JobProblem(
                        code="per_volume_without_volume",
                        slot=slot,
                        message=f"{slot} belongs to volume {found[1]}, which is not connected "
                        f"to {INDIVIDUAL} (volumes: {have})",
                    )
                )
        masks = connected.counts.get(MASKS_ALL_CLASSES.name, 0)
        size = connected.group_sizes.get(GROUP)
        if group and params.create_mask_inputs and masks and size is not None:
            problems.extend(mask_count_problems(masks, size))
        return problems

    def preflight(
        self, params: AlignParams, inputs: Mapping[str, Any], base_dir: Path
    ) -> list[JobProblem]:
        """Every problem of the input files, found before any heavy work."""
        from align3d.jobs.align_3d_maps.preflight import preflight

        return preflight(params, inputs)

    def output_bytes(self, params: AlignParams, inputs: Mapping[str, Any], base_dir: Path) -> int:  # type: ignore[override]
        """The bytes the job will write (every map on the reference grid, figures, particles)."""
        from align3d.jobs.align_3d_maps.preflight import estimate_output_bytes

        return estimate_output_bytes(params, inputs)

    def run(
        self, params: AlignParams, inputs: Mapping[str, Any], context: RunContext
    ) -> JobOutcome:
        from align3d.jobs.align_3d_maps.run import run_align

        return run_align(params, inputs, context)


JOB = AlignJob(
    name="align_3d_maps",
    description="Align volumes onto a reference volume (rotation, shift, hand).",
    params_model=AlignParams,
    inputs=INPUTS,
    outputs=OUTPUTS,
)
