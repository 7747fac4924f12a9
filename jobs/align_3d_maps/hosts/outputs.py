"""The files of an Align 3D Maps run, each with what it is (map, sharpened map, half map,
mask, particles: a :class:`MapRole`), for a host to declare as typed outputs: known before the
run from the paired inputs (:func:`planned_outputs`), or read back from a completed run's
``result.json`` (:func:`output_files`). The two agree (``tests/test_host_pipeliner.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from align3d.engine.store import read_manifest
from align3d.jobs.align_3d_maps.hosts.pairing import SpecPlan
from align3d.jobs.align_3d_maps.names import map_file, particles_file, volume_folder
from align3d.jobs.align_3d_maps.slots import ALIGNED_VOLUMES, ALL_PARTICLES, PARTICLES_FOR_MAP_N
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.payloads import (
    HALF_MAPS,
    VOLUME_FILES,
    MapRole,
    ParticlesPayload,
    VolumePayload,
    VolumesGroupPayload,
)


@dataclass(frozen=True)
class OutputFile:
    """One output: ``path`` relative to the run folder; ``volume``: its volume's index."""

    path: Path
    role: MapRole
    volume: int | None = None


def read_result(run_dir: Path) -> ResultManifest:
    """The manifest of a completed run in ``run_dir``, of the current layout or the earlier
    one (FileNotFoundError when there is none)."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        raise FileNotFoundError(
            f"{run_dir} holds no readable result.json: the run did not complete"
        )
    return manifest


def planned_outputs(plan: SpecPlan, *, particles: bool, masks: bool) -> list[OutputFile]:
    """Every moved map and mask (volume order) and every particle file that a run of
    ``job_spec(inputs, plan, ..., particles=particles, masks=masks)`` writes, known before it
    runs: the files, roles, volumes and order that :func:`output_files` reads back afterwards."""
    files: list[OutputFile] = []
    for volume in plan.volumes:
        roles = [MapRole.MAP]
        if volume.sharpened:
            roles.append(MapRole.MAP_SHARP)
        if volume.halves:
            roles.extend(HALF_MAPS)
        if masks and (plan.masks_all is not None if plan.group else volume.masks):
            roles.append(MapRole.MASK)
        folder = Path(volume_folder(volume.index))
        files += [OutputFile(folder / map_file(role), role, volume.index) for role in roles]
    for volume in plan.volumes if particles and not plan.group else []:
        for source in volume.particles:
            name = particles_file(PARTICLES_FOR_MAP_N.at(volume.index), source.path)
            files.append(OutputFile(Path(name), MapRole.PARTICLES, volume.index))
    if particles and plan.group and plan.particles_all is not None:
        name = particles_file(ALL_PARTICLES.name, plan.particles_all.path)
        files.append(OutputFile(Path(name), MapRole.PARTICLES))
    return files


def output_files(manifest: ResultManifest) -> list[OutputFile]:
    """Every moved map and mask (volume order) and every particle file the run wrote (the run's
    log is the host's to declare: :data:`align3d.engine.logs.JOB_LOG`)."""
    files: list[OutputFile] = []
    for index, volume in moved_volumes(manifest):
        for role in VOLUME_FILES:
            path = getattr(volume, role)
            if path is not None:
                files.append(OutputFile(Path(path), role, index))
    for slot, payload in manifest.outputs.items():
        volume_index = PARTICLES_FOR_MAP_N.index_of(slot)
        if slot == ALL_PARTICLES.name or volume_index is not None:
            particles = ParticlesPayload.model_validate(payload)
            files.append(OutputFile(particles.path, MapRole.PARTICLES, volume_index))
    return files


def moved_volumes(manifest: ResultManifest) -> list[tuple[int, VolumePayload]]:
    """Each aligned volume's payload with its index."""
    group = VolumesGroupPayload.model_validate(manifest.outputs[ALIGNED_VOLUMES.name])
    indices = [record.index for record in manifest.details_as(AlignmentDetails).alignments]
    return list(zip(indices, group.volumes, strict=True))
