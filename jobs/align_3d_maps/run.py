"""Running Align 3D Maps: volumes as parallel tasks, then particles, then the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.poses import move_poses
from align3d.engine.alignment.symmetry import point_group
from align3d.engine.jobdef import JobInputError, JobOutcome, RunContext
from align3d.engine.parallel.plan import task_memory_bytes
from align3d.engine.parallel.run import run_tasks
from align3d.jobs.align_3d_maps.chimerax import with_grids, write_chimerax_script
from align3d.jobs.align_3d_maps.consistency import VolumePrint, choose_mates, register_checks
from align3d.jobs.align_3d_maps.detect_symmetry import reference_symmetry
from align3d.jobs.align_3d_maps.diagnostics import progress_bars
from align3d.jobs.align_3d_maps.inputs import AlignInputs
from align3d.jobs.align_3d_maps.log import log_progress, log_volumes
from align3d.jobs.align_3d_maps.names import particles_file, volume_folder
from align3d.jobs.align_3d_maps.params import AlignParams
from align3d.jobs.align_3d_maps.particle_outputs import ParticlesWritten, write_moved_particles
from align3d.jobs.align_3d_maps.preflight import class_problem
from align3d.jobs.align_3d_maps.provenance import write_alignments_table
from align3d.jobs.align_3d_maps.report import job_report
from align3d.jobs.align_3d_maps.slots import (
    ALIGNED_VOLUME_N,
    ALIGNED_VOLUMES,
    ALL_PARTICLES,
    MASK_ALIGNED_N,
    MASK_N,
    PARTICLES_ALL,
    PARTICLES_FOR_MAP_N,
    REFERENCE_VOLUME,
)
from align3d.jobs.align_3d_maps.task import VolumeResult, VolumeTask, absolute, align_one
from align3d.schemas.documents import AlignmentDetails
from align3d.slots.errors import ParticleFileError
from align3d.slots.particles import Mover, ParticleFile, read_particles
from align3d.slots.payloads import (
    VOLUME_FILES,
    MapRole,
    MaskPayload,
    ParticlesPayload,
    VolumePayload,
    VolumesGroupPayload,
)


def _read_particle_inputs(job_inputs: AlignInputs) -> dict[str, ParticleFile]:
    """Every particle input, read and checked before any alignment starts."""
    files: dict[str, ParticleFile] = {}
    for slot, payload in job_inputs.particle_inputs().items():
        try:
            files[slot] = read_particles(payload.path)
        except ParticleFileError as exc:
            raise JobInputError(f"{slot}: {exc}") from exc
    if job_inputs.particles_all is not None:
        source = files[PARTICLES_ALL.name]
        problem = class_problem(source, job_inputs.particles_all.path, set(job_inputs.indices))
        if problem is not None:
            raise JobInputError(f"{PARTICLES_ALL.name}: {problem.message}")
    return files


def _class_mover(transforms: dict[int, RigidTransform], classes: NDArray[np.int64]) -> Mover:
    def mover(a: NDArray, origins: NDArray, rows: NDArray) -> tuple[NDArray, NDArray]:
        new_a, new_o = np.array(a, dtype=np.float64), np.array(origins, dtype=np.float64)
        for index, transform in transforms.items():
            sel = classes[rows] == index
            if sel.any():
                new_a[sel], new_o[sel] = move_poses(a[sel], origins[sel], transform=transform)
        return new_a, new_o

    return mover


def _tasks(params: AlignParams, job_inputs: AlignInputs, workdir: Path) -> list[VolumeTask]:
    reference = absolute(job_inputs.reference)
    ref_mask = job_inputs.reference_mask
    return [
        VolumeTask(
            index=item.index,
            reference=reference,
            reference_mask=None if ref_mask is None else absolute(ref_mask),
            volume=absolute(item.volume),
            mask=None if item.mask is None else absolute(item.mask),
            params=params,
            folder=workdir / volume_folder(item.index),
        )
        for item in job_inputs.volumes
    ]


def _align_all(tasks: list[VolumeTask], context: RunContext) -> dict[int, VolumeResult]:
    """Every volume's task on the context's backend; each is logged as it finishes."""
    results: dict[int, VolumeResult] = {}
    memory = max(task_memory_bytes(task.voxels()) for task in tasks)
    with progress_bars(len(tasks), context.quiet) as (volume_bar, stage_bar):

        def finished(_: int, result: VolumeResult) -> None:
            results[result.index] = result
            log_progress(context.log, result.record, len(results), len(tasks))
            volume_bar.update(1)

        def serial_task(task: VolumeTask) -> VolumeResult:
            with stage_bar() as bar:
                return align_one(task, lambda stage: (bar.set_postfix_str(stage), bar.update(1)))

        local = context.backend.kind == "serial" or len(tasks) == 1
        run_tasks(serial_task if local else align_one, tasks, context.backend, memory, finished)
    return results


def run_align(params: AlignParams, inputs: Mapping[str, Any], context: RunContext) -> JobOutcome:
    """Align every volume (in parallel on the context's backend), then update particles and
    write the report. Files are written into ``context.workdir``."""
    job_inputs = AlignInputs.read(inputs)
    particle_files = _read_particle_inputs(job_inputs) if params.update_particle_alignments else {}
    tasks = _tasks(params, job_inputs, context.workdir)
    results = _align_all(tasks, context)
    results, consistency = _in_register(params, tasks, results, context)
    outputs: dict[str, BaseModel] = {REFERENCE_VOLUME.name: job_inputs.reference}
    aligned: list[VolumePayload] = []
    particles: list[ParticlesWritten] = []
    for item in job_inputs.volumes:
        result = results[item.index]
        rel = {
            name: path.relative_to(context.workdir)
            for name, path in result.files.items()
            if name in VOLUME_FILES  # not the difference map
        }
        payload = VolumePayload(**rel)
        aligned.append(payload)
        t = result.transform
        if not job_inputs.group:
            outputs[ALIGNED_VOLUME_N.at(item.index)] = payload
            if item.mask_slot == MASK_N.at(item.index) and MapRole.MASK in rel:
                outputs[MASK_ALIGNED_N.at(item.index)] = MaskPayload(path=rel[MapRole.MASK])
        if item.particles_slot in particle_files:
            source = particle_files[item.particles_slot]
            slot = PARTICLES_FOR_MAP_N.at(item.index)
            written = write_moved_particles(
                source,
                lambda a, o, rows, t=t: move_poses(a, o, transform=t),
                context.workdir / particles_file(slot, source.path),
                _is_identity(t),
                slot,
                (item.index,),
            )
            particles.append(written)
            outputs[slot] = ParticlesPayload(path=written.path.relative_to(context.workdir))
    outputs[ALIGNED_VOLUMES.name] = VolumesGroupPayload(volumes=aligned)
    if PARTICLES_ALL.name in particle_files:
        source = particle_files[PARTICLES_ALL.name]
        classes = source.classes()
        assert classes is not None  # checked by _read_particle_inputs
        transforms = {index: result.transform for index, result in results.items()}
        target = context.workdir / particles_file(ALL_PARTICLES.name, source.path)
        identity = all(_is_identity(t) for t in transforms.values())
        written = write_moved_particles(
            source,
            _class_mover(transforms, classes),
            target,
            identity,
            ALL_PARTICLES.name,
            tuple(sorted(transforms)),
            classes,
        )
        particles.append(written)
        outputs[ALL_PARTICLES.name] = ParticlesPayload(
            path=written.path.relative_to(context.workdir)
        )
    records = [with_grids(results[task.index].record, task) for task in tasks]
    figures = {item.index: results[item.index].figures for item in job_inputs.volumes}
    warnings = [w for record in records for w in record.warnings] + consistency.warnings
    log_volumes(context.log, records, particles)
    job_report(
        context.workdir,
        params.model_dump(mode="json"),
        inputs,
        records,
        figures,
        warnings,
        particles,
        context.command,
    )
    write_alignments_table(context.workdir, records)
    moved = {i: str(r.files[MapRole.MAP].relative_to(context.workdir)) for i, r in results.items()}
    write_chimerax_script(context.workdir, records, moved)
    details = AlignmentDetails(
        alignments=records,
        symmetry=params.symmetry,
        largest_rotation_between_volumes_deg=consistency.largest_rotation_deg,
        volumes_furthest_apart=consistency.pair,
        detected_symmetry=reference_symmetry(job_inputs.reference, context.log)
        if params.detect_symmetry
        else None,
    )
    return JobOutcome(outputs, warnings, details)


@dataclass(frozen=True)
class Consistency:
    largest_rotation_deg: float | None
    pair: list[int] | None
    warnings: list[str]


def _in_register(
    params: AlignParams,
    tasks: list[VolumeTask],
    results: dict[int, VolumeResult],
    context: RunContext,
) -> tuple[dict[int, VolumeResult], Consistency]:
    """The volumes' symmetry mates chosen together (:mod:`.consistency`); a volume whose mate
    changes is moved again by the new one. Returns the results and what to report."""
    if len(results) < 2:
        return results, Consistency(None, None, [])
    group = point_group(params.symmetry)
    choice = choose_mates({i: r.transform for i, r in results.items()}, group)
    if choice.changed:
        context.log(
            f"symmetry {group.name}: volume(s) {', '.join(map(str, choice.changed))} take the "
            "mate that keeps them in register with the other volumes of their frame"
        )
        redo = [
            replace(
                task,
                fixed=replace(
                    results[task.index].alignment, transform=choice.transforms[task.index]
                ),
            )
            for task in tasks
            if task.index in choice.changed
        ]
        for result in _align_all(redo, context).values():
            results[result.index] = result
    largest = round(choice.largest_rotation_deg, 4)
    context.log(
        f"largest rotation between the transforms of two volumes: {largest:.2f}° "
        f"(volumes {choice.largest_pair[0]} and {choice.largest_pair[1]}; how differently they "
        "came oriented)"
        if choice.largest_pair
        else "largest rotation between the transforms of two volumes: 0°"
    )
    warnings = _out_of_register(results, group.name if group.order > 1 else None)
    for w in warnings:
        context.log(f"WARNING: {w}")
    return results, Consistency(
        largest, list(choice.largest_pair) if choice.largest_pair else None, warnings
    )


def _out_of_register(results: dict[int, VolumeResult], symmetry: str | None) -> list[str]:
    """A warning for each two volumes with sure alignments that the job turned out of register
    with each other (:func:`.consistency.register_checks`); none for volumes that came in
    different frames."""
    prints = {
        i: VolumePrint(r.alignment.moving_search_map, r.alignment.search_voxel_A, r.transform)
        for i, r in results.items()
        if r.alignment.moving_search_map is not None
        and (r.alignment.chance is None or r.alignment.chance.above_chance())
    }
    return [
        f"volumes {c.first} and {c.second} end up out of register with each other: as they "
        f"came, their maps fit each other as well as (NCC {c.fit_before:.3f}) or better than as "
        f"the job places them ({c.fit_after:.3f}), yet their transforms differ by "
        + ("the hand" if c.hand_differs else f"{c.rotation_deg:.1f}°")
        + ": they shared a frame, and one of them is aligned wrongly or the two sit on "
        "different symmetry mates; "
        + (
            f"no choice of {symmetry} mates brings them together"
            if symmetry
            else "if the map is symmetric, name its symmetry so that the mates are chosen together"
        )
        for c in register_checks(prints)
        if c.out_of_register()
    ]


def _is_identity(t: RigidTransform) -> bool:
    return not t.flip and bool(np.all(t.rotation == np.eye(3))) and not np.any(t.shift_A)
