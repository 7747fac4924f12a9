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
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from engine.alignment import AlignmentParams, RigidTransform
from engine.alignment.poses import move_poses
from engine.jobdef import Connected, JobInputError, JobOutcome, RunContext, SlotSpec
from engine.pairwise import align_volume, finite_or_none
from jobs.align_diagnostics import job_report, log_alignment, progress_bars, volume_figures
from jobs.align_preflight import preflight
from slots.mrc import read_map
from slots.particles import Mover, ParticleFile, ParticleFileError, read_particles
from slots.payloads import (
    MaskPayload,
    ParticlesPayload,
    SlotKind,
    VolumePayload,
    VolumesGroupPayload,
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
        return run_align(params, inputs, context)


def _volumes_to_align(inputs: Mapping[str, Any]) -> list[tuple[int, VolumePayload]]:
    if "maps_to_align_group" in inputs:
        group: VolumesGroupPayload = inputs["maps_to_align_group"]
        return [(i + 1, v) for i, v in enumerate(group.volumes)]
    return sorted(inputs.get("maps_to_align", []), key=lambda item: item[0])


def _mask_for(inputs: Mapping[str, Any], index: int, position: int, count: int) -> Path | None:
    if f"mask_{index}" in inputs:
        return inputs[f"mask_{index}"].path
    masks = [m for _, m in sorted(inputs.get("masks_all_classes", []), key=lambda x: x[0])]
    if len(masks) == 1:
        return masks[0].path
    if masks:
        if len(masks) != count:
            raise JobInputError(
                f"masks_all_classes: give 1 mask or one per volume ({count}), got {len(masks)}"
            )
        return masks[position].path
    return None


def _read_particle_inputs(
    inputs: Mapping[str, Any], volumes: list[tuple[int, VolumePayload]]
) -> dict[str, ParticleFile]:
    """Every particle input, read and checked before any alignment starts."""
    files: dict[str, ParticleFile] = {}
    indices = {index for index, _ in volumes}
    for slot, payload in inputs.items():
        if slot == "particles_all" or slot.startswith("particles_"):
            try:
                files[slot] = read_particles(payload.path)
            except ParticleFileError as exc:
                raise JobInputError(f"{slot}: {exc}") from exc
    if "particles_all" in files:
        classes = files["particles_all"].classes()
        path = inputs["particles_all"].path
        if classes is None:
            raise JobInputError(
                f"particles_all: {path} has no class column (rlnClassNumber or "
                "alignments3D/class) to tell which volume each particle belongs to"
            )
        orphans = sorted(set(classes.tolist()) - indices)
        if orphans:
            raise JobInputError(
                f"particles_all: {path} has particles of class(es) {orphans} but the group has "
                f"volumes {sorted(indices)} (classes count from 1 in RELION, from 0 in CryoSPARC)"
            )
    return files


def _class_mover(transforms: dict[int, RigidTransform], classes: NDArray[np.int64]) -> Mover:
    def mover(a: NDArray, origins: NDArray, rows: NDArray) -> tuple[NDArray, NDArray]:
        new_a, new_o = np.array(a, dtype=np.float64), np.array(origins, dtype=np.float64)
        for index, transform in transforms.items():
            sel = classes[rows] == index
            if sel.any():
                new_a[sel], new_o[sel] = move_poses(a[sel], origins[sel], transform)
        return new_a, new_o

    return mover


def _write_particles(particles: ParticleFile, mover: Mover, target: Path, identity: bool) -> Path:
    """The particles with poses from ``mover`` (untouched when the transform is the identity,
    so that a no-op keeps every value, angle representations included)."""
    return (particles if identity else particles.updated(mover)).write(target)


def run_align(params: AlignParams, inputs: Mapping[str, Any], context: RunContext) -> JobOutcome:
    reference_volume: VolumePayload = inputs["reference_map"]
    reference = read_map(reference_volume.map, reference_volume.voxel_size_A)
    ref_mask_path = (
        inputs["reference_mask"].path if "reference_mask" in inputs else reference_volume.mask
    )
    reference_mask = None
    if ref_mask_path is not None:
        mask_map = read_map(ref_mask_path, reference_volume.voxel_size_A, constant_ok=True)
        if mask_map.data.shape != reference.data.shape:
            raise JobInputError(
                f"{ref_mask_path}: reference mask grid {mask_map.data.shape} does not match "
                f"the reference map {reference.data.shape}"
            )
        reference_mask = mask_map.data
    volumes = _volumes_to_align(inputs)
    particle_files = (
        _read_particle_inputs(inputs, volumes) if params.update_particle_alignments else {}
    )
    transforms: dict[int, RigidTransform] = {}
    outputs: dict[str, BaseModel] = {"reference_volume": reference_volume}
    aligned: list[VolumePayload] = []
    records: list[dict[str, Any]] = []
    figures: dict[int, list[Path]] = {}
    warnings: list[str] = []
    with progress_bars(len(volumes), context.quiet) as (volume_bar, stage_bar):
        for position, (index, volume) in enumerate(volumes):
            start = time.perf_counter()
            folder = Path(f"volume_{index:03d}")
            mask = _mask_for(inputs, index, position, len(volumes)) or volume.mask
            maps = volume.maps()
            out_files = {name: context.workdir / folder / f"{name}.mrc" for name in maps}
            out_files["mask"] = context.workdir / folder / "mask.mrc"
            stages = stage_bar()
            outcome = align_volume(
                reference,
                maps,
                out_files,
                params.alignment(),
                reference_mask,
                mask,
                volume.voxel_size_A,
                params.apply_mask_to_volumes,
                progress=lambda stage, bar=stages: (bar.set_postfix_str(stage), bar.update(1)),
            )
            stages.close()
            rel = {name: path.relative_to(context.workdir) for name, path in outcome.files.items()}
            payload = VolumePayload(**{k: v for k, v in rel.items()})
            aligned.append(payload)
            if "maps_to_align" in inputs:
                outputs[f"aligned_volume_{index}"] = payload
                if f"mask_{index}" in inputs and "mask" in rel:
                    outputs[f"mask_aligned_{index}"] = MaskPayload(path=rel["mask"])
            t = outcome.alignment.transform
            transforms[index] = t
            if f"particles_{index}" in particle_files:
                source = particle_files[f"particles_{index}"]
                target = context.workdir / f"particles_for_map_{index}{source.path.suffix}"
                written = _write_particles(
                    source, lambda a, o, rows, t=t: move_poses(a, o, t), target, _is_identity(t)
                )
                outputs[f"particles_for_map_{index}"] = ParticlesPayload(
                    path=written.relative_to(context.workdir)
                )
            records.append(
                {
                    "index": index,
                    "rotation": t.rotation.tolist(),
                    "shift_A": t.shift_A.tolist(),
                    "hand_flipped": t.flip,
                    "matrix": t.matrix.tolist(),
                    "score": outcome.alignment.score,
                    "alternative_score": outcome.alignment.alternative_score,
                    "fsc_0143_A": finite_or_none(outcome.fsc_after_0143_A),
                    "fsc_0143_before_A": finite_or_none(outcome.fsc_before_0143_A),
                    "seconds": time.perf_counter() - start,
                }
            )
            if params.log_diagnostics:
                figures[index] = volume_figures(
                    reference,
                    outcome,
                    context.workdir / folder,
                    params.lowpass_resolution_A,
                    index,
                )
            records[-1]["seconds"] = time.perf_counter() - start
            warnings += log_alignment(context.log, index, records[-1])
            volume_bar.update(1)
    outputs["aligned_volumes"] = VolumesGroupPayload(volumes=aligned)
    if "particles_all" in particle_files:
        source = particle_files["particles_all"]
        classes = source.classes()
        assert classes is not None
        target = context.workdir / f"all_particles{source.path.suffix}"
        identity = all(_is_identity(t) for t in transforms.values())
        written = _write_particles(source, _class_mover(transforms, classes), target, identity)
        outputs["all_particles"] = ParticlesPayload(path=written.relative_to(context.workdir))
        context.log(f"all_particles: {len(source)} particles follow their class's volume")
    job_report(context.workdir, params.model_dump(mode="json"), inputs, records, figures, warnings)
    return JobOutcome(outputs, {"alignments": records, "warnings": warnings})


def _is_identity(t: RigidTransform) -> bool:
    return not t.flip and bool(np.all(t.rotation == np.eye(3))) and not np.any(t.shift_A)


JOB = AlignJob()
