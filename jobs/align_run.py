"""Running Align 3D Maps: volumes as parallel tasks, then particles, then the report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from engine.alignment.geometry import RigidTransform
from engine.alignment.poses import move_poses
from engine.jobdef import JobInputError, JobOutcome, RunContext
from engine.parallel.plan import task_memory_bytes
from engine.parallel.run import run_tasks
from jobs.align_diagnostics import job_report, log_alignment, progress_bars
from jobs.align_preflight import class_problem
from jobs.align_task import VolumeResult, VolumeTask, align_one
from slots.particles import Mover, ParticleFile, ParticleFileError, read_particles
from slots.payloads import (
    MaskPayload,
    ParticlesPayload,
    VolumePayload,
    VolumesGroupPayload,
)

if TYPE_CHECKING:
    from jobs.align_3d_maps import AlignParams


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
        problem = class_problem(files["particles_all"], inputs["particles_all"].path, indices)
        if problem is not None:
            raise JobInputError(f"particles_all: {problem[1]}")
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
    """Align every volume (in parallel on the context's backend), then update particles and
    write the report. Files are written into ``context.workdir``."""
    reference_volume: VolumePayload = inputs["reference_map"]
    ref_mask = (
        inputs["reference_mask"].path if "reference_mask" in inputs else reference_volume.mask
    )
    volumes = _volumes_to_align(inputs)
    particle_files = (
        _read_particle_inputs(inputs, volumes) if params.update_particle_alignments else {}
    )
    tasks = []
    for position, (index, volume) in enumerate(volumes):
        folder = context.workdir / f"volume_{index:03d}"
        maps = {name: Path(path).resolve() for name, path in volume.maps().items()}
        out_files = {name: folder / f"{name}.mrc" for name in [*maps, "mask"]}
        mask = _mask_for(inputs, index, position, len(volumes)) or volume.mask
        tasks.append(
            VolumeTask(
                index,
                Path(reference_volume.map).resolve(),
                reference_volume.voxel_size_A,
                None if ref_mask is None else Path(ref_mask).resolve(),
                maps,
                out_files,
                None if mask is None else Path(mask).resolve(),
                volume.voxel_size_A,
                params.alignment(),
                params.apply_mask_to_volumes,
                params.log_diagnostics,
                folder,
            )
        )
    results: dict[int, VolumeResult] = {}
    warnings: list[str] = []
    memory = max(task_memory_bytes(task.voxels()) for task in tasks)
    with progress_bars(len(tasks), context.quiet) as (volume_bar, stage_bar):

        def finished(_: int, result: VolumeResult) -> None:
            results[result.index] = result
            warnings.extend(log_alignment(context.log, result.index, result.record))
            volume_bar.update(1)

        def serial_task(task: VolumeTask) -> VolumeResult:
            with stage_bar() as bar:
                return align_one(task, lambda stage: (bar.set_postfix_str(stage), bar.update(1)))

        local = context.backend.kind == "serial" or len(tasks) == 1
        run_tasks(serial_task if local else align_one, tasks, context.backend, memory, finished)
    outputs: dict[str, BaseModel] = {"reference_volume": reference_volume}
    aligned: list[VolumePayload] = []
    transforms: dict[int, RigidTransform] = {}
    for index, _ in volumes:
        result = results[index]
        rel = {name: path.relative_to(context.workdir) for name, path in result.files.items()}
        payload = VolumePayload(**rel)
        aligned.append(payload)
        t = RigidTransform.from_matrix(result.record["matrix"])
        transforms[index] = t
        if "maps_to_align" in inputs:
            outputs[f"aligned_volume_{index}"] = payload
            if f"mask_{index}" in inputs and "mask" in rel:
                outputs[f"mask_aligned_{index}"] = MaskPayload(path=rel["mask"])
        if f"particles_{index}" in particle_files:
            source = particle_files[f"particles_{index}"]
            target = context.workdir / f"particles_for_map_{index}{source.path.suffix}"
            written = _write_particles(
                source, lambda a, o, rows, t=t: move_poses(a, o, t), target, _is_identity(t)
            )
            outputs[f"particles_for_map_{index}"] = ParticlesPayload(
                path=written.relative_to(context.workdir)
            )
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
    records = [results[index].record for index, _ in volumes]
    figures = {index: results[index].figures for index, _ in volumes}
    job_report(context.workdir, params.model_dump(mode="json"), inputs, records, figures, warnings)
    return JobOutcome(outputs, {"alignments": records, "warnings": warnings})


def _is_identity(t: RigidTransform) -> bool:
    return not t.flip and bool(np.all(t.rotation == np.eye(3))) and not np.any(t.shift_A)
