"""Align 3D Maps: put volumes in register with a reference (rotation, shift, hand).

Inputs and outputs are pure functions of (params, connected inputs):

* inputs: ``reference_map`` (volume, required), ``reference_mask`` (mask); exactly one of
  ``maps_to_align_group`` (volumes group) or ``maps_to_align`` (one or more volumes, each with a
  stable index N); in group mode ``particles_all`` (update on) and ``masks_all_classes`` (create
  masks on: 1 mask, or one per volume in order); in individual mode ``particles_N`` (update on)
  and ``mask_N`` (create masks on) for each connected volume N.
* outputs: ``reference_volume`` (unmodified), ``aligned_volumes`` (volumes group); individual
  mode: ``aligned_volume_N``, ``mask_aligned_N`` (for each connected ``mask_N``),
  ``particles_for_map_N`` (for each connected ``particles_N``); group mode: ``all_particles``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from engine.alignment.params import AlignmentParams
from engine.jobdef import Connected, JobOutcome, RunContext, SlotSpec
from jobs.align_preflight import preflight
from slots.payloads import (
    SlotKind,
)

PER_VOLUME = re.compile(r"^(particles|mask)_(\d+)$")


class AlignParams(BaseModel):
    """Parameters of Align 3D Maps (hard limits in the field constraints)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    update_particle_alignments: StrictBool = Field(
        False, description="Update the poses of each volume's particles to follow its volume."
    )
    create_mask_inputs: StrictBool = Field(
        False, description="Add a mask input per volume (mask_N, or masks_all_classes)."
    )
    apply_mask_to_volumes: StrictBool = Field(
        True, description="Use the masks to restrict the alignment (masks always move along)."
    )
    log_diagnostics: StrictBool = Field(
        True, description="Log rotation matrices and write figures and difference maps."
    )
    check_both_chiralities: StrictBool = Field(
        True, description="Also try the mirrored hand of each volume."
    )
    max_shift_A: float = Field(40.0, ge=0.0, le=1000.0, description="Maximum shift, Å.")
    max_search_angle_deg: float = Field(
        180.0, ge=0.0, le=180.0, description="Maximum search angle, degrees (180: all rotations)."
    )
    lowpass_resolution_A: float = Field(
        10.0, gt=0.0, le=1000.0, description="Low-pass filter applied before aligning, Å."
    )

    def alignment(self) -> AlignmentParams:
        return AlignmentParams(
            max_shift_A=self.max_shift_A,
            max_search_angle_deg=self.max_search_angle_deg,
            lowpass_resolution_A=self.lowpass_resolution_A,
            check_both_chiralities=self.check_both_chiralities,
        )


def _group_mode(connected: Connected) -> bool:
    return connected.has("maps_to_align_group")


def _volume_indices(connected: Connected) -> tuple[int, ...]:
    return tuple(connected.volume_indices.get("maps_to_align", ()))


class AlignJob:
    name = "align_3d_maps"
    description = "Align volumes onto a reference volume (rotation, shift, hand)."
    params_model = AlignParams

    def input_slots(self, params: AlignParams, connected: Connected) -> list[SlotSpec]:
        slots = [
            SlotSpec(
                "reference_map", SlotKind.VOLUME, required=True, description="The reference volume."
            ),
            SlotSpec("reference_mask", SlotKind.MASK, description="Mask of the reference."),
            SlotSpec(
                "maps_to_align_group",
                SlotKind.VOLUMES_GROUP,
                description="Volumes to align, as one group.",
            ),
            SlotSpec(
                "maps_to_align",
                SlotKind.VOLUME,
                multiple=True,
                description="Volumes to align, one by one (each with a stable index).",
            ),
        ]
        if _group_mode(connected):
            if params.update_particle_alignments:
                slots.append(
                    SlotSpec(
                        "particles_all",
                        SlotKind.PARTICLES,
                        required=True,
                        description="Particles of all classes (by class number).",
                    )
                )
            if params.create_mask_inputs:
                slots.append(
                    SlotSpec(
                        "masks_all_classes",
                        SlotKind.MASK,
                        multiple=True,
                        description="One mask for all volumes, or one per volume.",
                    )
                )
            return slots
        for n in _volume_indices(connected):
            if params.update_particle_alignments:
                slots.append(
                    SlotSpec(
                        f"particles_{n}",
                        SlotKind.PARTICLES,
                        volume_index=n,
                        description=f"Particles of volume {n}.",
                    )
                )
            if params.create_mask_inputs:
                slots.append(
                    SlotSpec(
                        f"mask_{n}",
                        SlotKind.MASK,
                        volume_index=n,
                        description=f"Mask of volume {n}.",
                    )
                )
        return slots

    def output_slots(self, params: AlignParams, connected: Connected) -> list[SlotSpec]:
        slots = [
            SlotSpec("reference_volume", SlotKind.VOLUME, description="The reference, as given."),
            SlotSpec("aligned_volumes", SlotKind.VOLUMES_GROUP, description="All aligned volumes."),
        ]
        if _group_mode(connected):
            if params.update_particle_alignments:
                slots.append(
                    SlotSpec(
                        "all_particles",
                        SlotKind.PARTICLES,
                        description="Particles following their class's volume.",
                    )
                )
            return slots
        for n in _volume_indices(connected):
            slots.append(
                SlotSpec(
                    f"aligned_volume_{n}",
                    SlotKind.VOLUME,
                    volume_index=n,
                    description=f"Volume {n}, aligned.",
                )
            )
            if params.create_mask_inputs and connected.has(f"mask_{n}"):
                slots.append(
                    SlotSpec(
                        f"mask_aligned_{n}",
                        SlotKind.MASK,
                        volume_index=n,
                        description=f"Mask of volume {n}, aligned.",
                    )
                )
            if params.update_particle_alignments and connected.has(f"particles_{n}"):
                slots.append(
                    SlotSpec(
                        f"particles_for_map_{n}",
                        SlotKind.PARTICLES,
                        volume_index=n,
                        description=f"Particles of volume {n}, poses updated.",
                    )
                )
        return slots

    def check(self, params: AlignParams, connected: Connected) -> list[tuple[str, str | None, str]]:
        """Rules of this job beyond slot types: (code, slot, message) for each problem."""
        problems: list[tuple[str, str | None, str]] = []
        group, individual = _group_mode(connected), connected.has("maps_to_align")
        if group and individual:
            problems.append(
                (
                    "group_and_individual",
                    "maps_to_align",
                    "connect either maps_to_align_group or maps_to_align, not both",
                )
            )
        if not group and not individual:
            problems.append(
                (
                    "missing_required_input",
                    "maps_to_align",
                    "nothing to align: connect maps_to_align_group or maps_to_align",
                )
            )
        indices = set(_volume_indices(connected))
        for slot in connected.counts:
            match = PER_VOLUME.match(slot)
            if match and (group or int(match.group(2)) not in indices):
                have = ", ".join(str(i) for i in sorted(indices)) or "none"
                problems.append(
                    (
                        "per_volume_without_volume",
                        slot,
                        f"{slot} belongs to volume {match.group(2)}, which is not "
                        f"connected to maps_to_align (volumes: {have})",
                    )
                )
        masks = connected.counts.get("masks_all_classes", 0)
        size = connected.group_sizes.get("maps_to_align_group")
        if (
            group
            and params.create_mask_inputs
            and masks
            and size is not None
            and masks not in (1, size)
        ):
            problems.append(
                (
                    "wrong_mask_count",
                    "masks_all_classes",
                    f"give 1 mask or one per volume ({size}), got {masks}",
                )
            )
        return problems

    def preflight(
        self, params: AlignParams, inputs: Mapping[str, Any]
    ) -> list[tuple[str, str | None, str]]:
        """Every problem of the input files, found before any heavy work."""
        return preflight(params, inputs)

    def run(
        self, params: AlignParams, inputs: Mapping[str, Any], context: RunContext
    ) -> JobOutcome:
        from jobs.align_run import run_align

        return run_align(params, inputs, context)


JOB = AlignJob()
