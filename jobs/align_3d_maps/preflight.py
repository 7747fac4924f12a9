"""Check every input file of an Align 3D Maps job before any heavy work, all problems at once.

Maps are checked by their headers (the data are read once, by the job, which checks them as it
reads: NaN or infinite values, a constant map, mask values outside [0, 1]). Particle files are
parsed, and the parse is kept for the run. Each problem names the file and says what to do.
Codes: ``unreadable_map`` (missing, not MRC, truncated, unsupported mode, not 3-D, an image
stack, no voxel size), ``grid_mismatch`` (a half map, sharpened map or mask on another grid
than its map: box or voxel size), ``wrong_mask_count``, ``invalid_particles`` (missing,
unreadable, no poses, a format its name does not say), ``class_without_volume``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from align3d.engine.issues import JobProblem
from align3d.jobs.align_3d_maps.inputs import AlignInputs
from align3d.jobs.align_3d_maps.rules import mask_count_problems
from align3d.jobs.align_3d_maps.slots import REFERENCE_MAP
from align3d.slots.errors import MapReadError, ParticleFileError
from align3d.slots.mrc import MapGrid, grid_problem, read_grid
from align3d.slots.particles import ParticleFile, read_particles
from align3d.slots.payloads import MapRole, MaskPayload, VolumePayload


def _read(path: Path, voxel: float | None, slot: str, problems: list[JobProblem]) -> MapGrid | None:
    """The map's header, checked (the data are checked when the job reads them, once)."""
    try:
        return read_grid(path, voxel)
    except MapReadError as exc:
        problems.append(JobProblem(code="unreadable_map", slot=slot, message=str(exc), file=path))
        return None


def _check_volume(slot: str, volume: VolumePayload, problems: list[JobProblem]) -> MapGrid | None:
    main = _read(volume.map, volume.voxel_size_A, slot, problems)
    for role, path in volume.maps().items():
        if role == MapRole.MAP:
            continue
        other = _read(path, volume.voxel_size_A, slot, problems)
        if main is not None and other is not None:
            mismatch = grid_problem(other, path, main, volume.map, role)
            if mismatch is not None:
                problems.append(
                    JobProblem(code="grid_mismatch", slot=slot, message=mismatch, file=path)
                )
    return main


def _check_mask(
    slot: str,
    mask: MaskPayload,
    owner: MapGrid | None,
    owner_path: Path | None,
    problems: list[JobProblem],
) -> None:
    grid = _read(mask.path, mask.voxel_size_A, slot, problems)
    if grid is not None and owner is not None and owner_path is not None:
        mismatch = grid_problem(grid, mask.path, owner, owner_path, "mask")
        if mismatch is not None:
            problems.append(
                JobProblem(code="grid_mismatch", slot=slot, message=mismatch, file=mask.path)
            )


def preflight(params: Any, inputs: Mapping[str, Any]) -> list[JobProblem]:
    """Every problem of the job's input files."""
    problems: list[JobProblem] = []
    job_inputs = AlignInputs.read(inputs)
    reference = job_inputs.reference
    ref = _check_volume(REFERENCE_MAP.name, reference, problems)
    if job_inputs.reference_mask is not None:
        slot = "reference_mask" if "reference_mask" in inputs else REFERENCE_MAP.name
        _check_mask(slot, job_inputs.reference_mask, ref, reference.map, problems)
    if job_inputs.group and job_inputs.masks_all:
        problems.extend(mask_count_problems(len(job_inputs.masks_all), len(job_inputs.volumes)))
    for item in job_inputs.volumes:
        main = _check_volume(item.slot, item.volume, problems)
        if item.mask is not None and item.mask_slot is not None:
            _check_mask(item.mask_slot, item.mask, main, item.volume.map, problems)
    if getattr(params, "update_particle_alignments", False):
        _check_particles(job_inputs, problems)
    return _unique(problems)


def _unique(problems: list[JobProblem]) -> list[JobProblem]:
    """One mask shared by every volume is checked against each; say each problem once."""
    return list(dict.fromkeys(problems))


def class_problem(particles: ParticleFile, path: Path, indices: set[int]) -> JobProblem | None:
    """Why group-mode particles cannot each follow a volume of their class: no class column, or
    classes with no volume among ``indices``; None when they can."""
    classes = particles.classes()
    if classes is None:
        return JobProblem(
            code="invalid_particles",
            message=f"{path}: no class column (rlnClassNumber or alignments3D/class) to tell which "
            "volume each particle belongs to",
        )
    orphans = sorted(set(classes.tolist()) - indices)
    if orphans:
        return JobProblem(
            code="class_without_volume",
            message=f"{path}: particles of class(es) {orphans} have no volume (volumes: "
            f"{sorted(indices)}; classes count from 1 in RELION, from 0 in CryoSPARC)",
        )
    return None


def _check_particles(job_inputs: AlignInputs, problems: list[JobProblem]) -> None:
    for slot, payload in job_inputs.particle_inputs().items():
        try:
            particles = read_particles(payload.path)
        except ParticleFileError as exc:
            problems.append(
                JobProblem(code="invalid_particles", slot=slot, message=str(exc), file=payload.path)
            )
            continue
        if payload is job_inputs.particles_all:
            problem = class_problem(particles, payload.path, set(job_inputs.indices))
            if problem is not None:
                problems.append(problem.model_copy(update={"slot": slot, "file": payload.path}))


FIGURES_BYTES = 2 * 2**20
"""The three PNG figures of a volume and its share of report.html, generously."""


def estimate_output_bytes(params: Any, inputs: Mapping[str, Any]) -> int:
    """The bytes the job will write: every map and mask of every volume on the reference grid
    (float32), the difference maps and figures with diagnostics on, and the particle files
    (about their input size)."""
    job_inputs = AlignInputs.read(inputs)
    nz, ny, nx = read_grid(job_inputs.reference.map, job_inputs.reference.voxel_size_A).shape
    per_map = 4 * nz * ny * nx + 1024
    total = 0
    for item in job_inputs.volumes:
        maps = len(item.volume.maps()) + (1 if item.mask is not None else 0)
        total += maps * per_map
        if params.log_diagnostics:
            total += per_map + FIGURES_BYTES
    if params.update_particle_alignments:
        total += sum(
            p.path.stat().st_size for p in job_inputs.particle_inputs().values() if p.path.exists()
        )
    return total
