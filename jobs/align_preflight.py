"""Check every input file of an Align 3D Maps job before any heavy work, all problems at once.

Each problem is ``(code, slot, message)``; the message names the file and says what to do.
Codes: ``unreadable_map`` (missing, not MRC, truncated, unsupported mode, not 3-D, NaN or
infinite values, constant, no voxel size), ``grid_mismatch`` (a half map, sharpened map or mask
on another grid than its map), ``invalid_mask`` (values outside [0, 1], empty),
``invalid_particles`` (missing, unreadable, no poses, a format its name does not say),
``class_without_volume``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from slots.mrc import MapData, MapReadError, mask_problems, read_map
from slots.particles import ParticleFile, ParticleFileError, read_particles
from slots.payloads import VolumePayload

Problem = tuple[str, str | None, str]


def _read(
    path: Path, voxel: float | None, slot: str, problems: list[Problem], constant_ok: bool = False
) -> MapData | None:
    try:
        return read_map(path, voxel, constant_ok)
    except MapReadError as exc:
        problems.append(("unreadable_map", slot, str(exc)))
        return None


def _check_volume(slot: str, volume: VolumePayload, problems: list[Problem]) -> MapData | None:
    main = _read(volume.map, volume.voxel_size_A, slot, problems)
    for name, path in volume.maps().items():
        if name == "map":
            continue
        other = _read(path, volume.voxel_size_A, slot, problems)
        if (
            main is not None
            and other is not None
            and (
                other.data.shape != main.data.shape
                or not np.allclose(other.voxel_size_A, main.voxel_size_A, rtol=1e-3)
            )
        ):
            problems.append(
                (
                    "grid_mismatch",
                    slot,
                    f"{path}: {name} grid {other.data.shape} at {other.voxel_size_A[0]:.4g} Å "
                    f"does not match the volume's map {volume.map} ({main.data.shape} at "
                    f"{main.voxel_size_A[0]:.4g} Å)",
                )
            )
    if volume.mask is not None:
        _check_mask(slot, volume.mask, volume.voxel_size_A, main, problems)
    return main


def _check_mask(
    slot: str, path: Path, voxel: float | None, owner: MapData | None, problems: list[Problem]
) -> None:
    mask = _read(path, voxel, slot, problems, constant_ok=True)
    if mask is not None:
        shape = None if owner is None else owner.data.shape
        problems.extend(("invalid_mask", slot, p) for p in mask_problems(mask, path, shape))


def preflight(params: Any, inputs: Mapping[str, Any]) -> list[Problem]:
    """Every problem of the job's input files (reads every map once)."""
    problems: list[Problem] = []
    reference: VolumePayload = inputs["reference_map"]
    ref = _check_volume("reference_map", reference, problems)
    if "reference_mask" in inputs:
        mask = inputs["reference_mask"]
        _check_mask(
            "reference_mask", mask.path, mask.voxel_size_A or reference.voxel_size_A, ref, problems
        )
    if "maps_to_align_group" in inputs:
        volumes = list(enumerate(inputs["maps_to_align_group"].volumes, start=1))
        slot_of = {i: "maps_to_align_group" for i, _ in volumes}
    else:
        volumes = sorted(inputs.get("maps_to_align", []), key=lambda x: x[0])
        slot_of = {i: "maps_to_align" for i, _ in volumes}
    mains = {index: _check_volume(slot_of[index], volume, problems) for index, volume in volumes}
    masks = sorted(inputs.get("masks_all_classes", []), key=lambda x: x[0])
    for position, (_, mask) in enumerate(masks):
        owners = [mains.get(volumes[position][0])] if len(masks) > 1 else list(mains.values())
        for owner in owners or [None]:
            _check_mask("masks_all_classes", mask.path, mask.voxel_size_A, owner, problems)
    for index, _ in volumes:
        if f"mask_{index}" in inputs:
            mask = inputs[f"mask_{index}"]
            _check_mask(f"mask_{index}", mask.path, mask.voxel_size_A, mains.get(index), problems)
    if getattr(params, "update_particle_alignments", False):
        _check_particles(inputs, {index for index, _ in volumes}, problems)
    return problems


def class_problem(particles: ParticleFile, path: Path, indices: set[int]) -> tuple[str, str] | None:
    """``(code, message)`` when group-mode particles cannot each follow a volume of their class:
    no class column, or classes with no volume among ``indices``."""
    classes = particles.classes()
    if classes is None:
        return (
            "invalid_particles",
            f"{path}: no class column (rlnClassNumber or alignments3D/class) to tell which "
            "volume each particle belongs to",
        )
    orphans = sorted(set(classes.tolist()) - indices)
    if orphans:
        return (
            "class_without_volume",
            f"{path}: particles of class(es) {orphans} have no volume (volumes: "
            f"{sorted(indices)}; classes count from 1 in RELION, from 0 in CryoSPARC)",
        )
    return None


def _check_particles(inputs: Mapping[str, Any], indices: set[int], problems: list[Problem]) -> None:
    for slot, payload in inputs.items():
        if not (slot == "particles_all" or slot.startswith("particles_")):
            continue
        try:
            particles = read_particles(payload.path)
        except ParticleFileError as exc:
            problems.append(("invalid_particles", slot, str(exc)))
            continue
        if slot != "particles_all":
            continue
        problem = class_problem(particles, payload.path, indices)
        if problem is not None:
            problems.append((problem[0], slot, problem[1]))
