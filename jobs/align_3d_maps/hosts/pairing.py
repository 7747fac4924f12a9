"""Which half maps, sharpened map, mask and particles go with which map to align, from the job
that produced each file, never from its position in a list: pairing by position, CryoSPARC's
quirk (removing a volume renumbers the other volumes but not their particle inputs), is what we
refuse.

A host describes every file as a :class:`HostFile`: its path, the job (or, for a file imported
from outside the project, the folder) it came from, and the jobs upstream of that one. A file
goes with the map whose job produced it; failing that, with the map whose job is upstream or
downstream of its own (a PostProcess's sharpened map and a MaskCreate's mask go with the
Refine3D map they were made from). A file whose origin says nothing (imported from outside the
project) fits every map equally, and so does a file that fits several maps equally well: the
tie goes to the map whose file name it shares most of (``v1_half1.mrc`` with ``v1_map.mrc``,
``run_half1_class001_unfil.mrc`` with ``run_class001.mrc``), and when the names do not settle it
either, the file is refused with a message that says what to do. The classes of one job (a Class3D,
``run_itNNN_classKKK.mrc``) that share one particle file become a volumes group, class K =
volume K, and each particle follows its class's volume.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

from align3d.jobs.align_3d_maps.job import JOB
from align3d.jobs.align_3d_maps.slots import (
    GROUP,
    INDIVIDUAL,
    MASK_N,
    MASKS_ALL_CLASSES,
    PARTICLES_ALL,
    PARTICLES_N,
    REFERENCE_MAP,
    REFERENCE_MASK,
)
from align3d.schemas.documents import JobSpec
from align3d.slots.payloads import HALF_MAPS, MapRole

CLASS_NUMBER = re.compile(r"_class(\d+)", re.IGNORECASE)


class PairingError(ValueError):
    """The host's inputs cannot be paired without guessing; the message says what to do."""


@dataclass(frozen=True)
class HostFile:
    """One input file as the host knows it. ``source``: the job that produced it (or the
    folder it was imported from); ``upstream``: every job upstream of ``source``; ``name``:
    how the host shows it (for messages); ``known_source``: False when ``source`` says nothing
    about which map it belongs to (a file imported from outside the project)."""

    path: Path
    source: str
    upstream: frozenset[str] = frozenset()
    name: str = ""
    known_source: bool = True

    @property
    def shown(self) -> str:
        return self.name or str(self.path)

    @property
    def class_number(self) -> int | None:
        found = CLASS_NUMBER.findall(self.path.name)
        return int(found[-1]) if found else None


@dataclass(frozen=True)
class HostInputs:
    """What a host connected to the job."""

    reference: HostFile
    maps: Sequence[HostFile]
    reference_mask: HostFile | None = None
    halves: Sequence[HostFile] = ()
    sharpened: Sequence[HostFile] = ()
    masks: Sequence[HostFile] = ()
    particles: Sequence[HostFile] = ()


@dataclass
class VolumePlan:
    """One volume to align and the files paired with it."""

    index: int
    map: HostFile
    halves: list[HostFile] = field(default_factory=list)
    sharpened: list[HostFile] = field(default_factory=list)
    masks: list[HostFile] = field(default_factory=list)
    particles: list[HostFile] = field(default_factory=list)

    def of(self, role: MapRole) -> list[HostFile]:
        """The files paired with this volume as ``role`` (either half map role: both halves,
        which is A and which B being settled by their names once paired)."""
        if role in HALF_MAPS:
            return self.halves
        return {
            MapRole.MAP_SHARP: self.sharpened,
            MapRole.MASK: self.masks,
            MapRole.PARTICLES: self.particles,
        }[role]


def _what(role: MapRole) -> str:
    """How messages name a file of ``role`` while it is being paired (a half map, before the
    two halves are told apart)."""
    return "half map" if role in HALF_MAPS else role.label


@dataclass(frozen=True)
class SpecPlan:
    """The volumes, paired; ``group``: the classes of one job with one particle file (a
    volumes group), whose ``particles_all`` and ``masks_all`` are shared."""

    volumes: list[VolumePlan]
    group: bool = False
    particles_all: HostFile | None = None
    masks_all: HostFile | None = None


RELATED = 1
"""Closeness of two files one of whose jobs is upstream of the other's."""


def _closeness(file: HostFile, map_: HostFile) -> int | None:
    """0: the same job made both; 1: one job is upstream of the other; 2: the origin of one of
    them says nothing; None: unrelated."""
    if not (file.known_source and map_.known_source):
        return 2
    if file.source == map_.source:
        return 0
    if map_.source in file.upstream or file.source in map_.upstream:
        return RELATED
    return None


MIN_SHARED_NAME = 3
"""Characters a file's name must share with its map's (in one run) to count as naming it."""


def _shared_name(a: str, b: str) -> int:
    """The length of the longest run of characters two file stems share."""
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size


def _by_name(file: HostFile, maps: Sequence[HostFile], found: list[int]) -> list[int]:
    """The one map of ``found`` whose file name shares the longest run with ``file``'s (at
    least :data:`MIN_SHARED_NAME` characters, and longer than any other map's), else
    ``found``."""
    stem = file.path.name.split(".")[0]
    shared = [_shared_name(stem, maps[i].path.name.split(".")[0]) for i in found]
    best = max(shared)
    if best >= MIN_SHARED_NAME and shared.count(best) == 1:
        return [found[shared.index(best)]]
    return found


def _matches(file: HostFile, maps: Sequence[HostFile]) -> tuple[list[int], int | None]:
    """Positions of the maps ``file`` is closest to, and how close."""
    scores = [_closeness(file, m) for m in maps]
    known = [s for s in scores if s is not None]
    if not known:
        return [], None
    best = min(known)
    return [i for i, s in enumerate(scores) if s == best], best


def _class_indices(maps: Sequence[HostFile]) -> list[int] | None:
    """The class numbers of maps that are the classes of one job, else None."""
    numbers = [m.class_number for m in maps]
    if len({m.source for m in maps}) != 1 or None in numbers or len(set(numbers)) != len(maps):
        return None
    return [int(n) for n in numbers if n is not None]


def _names(maps: Sequence[HostFile], positions: Sequence[int]) -> str:
    return ", ".join(maps[i].shown for i in positions)


def plan_volumes(inputs: HostInputs) -> SpecPlan:
    """Pair every file with its map (see the module docstring); :class:`PairingError` when
    that needs a guess."""
    maps = list(inputs.maps)
    if not maps:
        raise PairingError("no map to align: connect one or more maps to align")
    shown = [m.shown for m in maps]
    if len(set(shown)) != len(shown):
        raise PairingError("a map to align is connected twice: " + ", ".join(shown))
    classes = _class_indices(maps)
    indices = classes if classes is not None else list(range(1, len(maps) + 1))
    volumes = [VolumePlan(index, m) for index, m in zip(indices, maps, strict=True)]
    group = _group_particles(inputs, maps, classes)
    if group is not None:
        return _group_plan(inputs, volumes, group)
    for role, files in (
        (MapRole.MAP_HALF_A, inputs.halves),
        (MapRole.MAP_SHARP, inputs.sharpened),
        (MapRole.MASK, inputs.masks),
        (MapRole.PARTICLES, inputs.particles),
    ):
        for file in files:
            for position in _owners(file, role, maps, siblings_share=role is MapRole.MASK):
                volumes[position].of(role).append(file)
    for volume in volumes:
        _check_counts(volume)
    return SpecPlan(sorted(volumes, key=lambda v: v.index))


def _owners(
    file: HostFile, role: MapRole, maps: Sequence[HostFile], siblings_share: bool
) -> list[int]:
    """The maps ``file`` belongs to: exactly one, or (``siblings_share``: a mask) every class
    of one job that it fits equally well."""
    if len(maps) == 1:
        return [0]
    found, closeness = _matches(file, maps)
    if not found:
        raise PairingError(
            f"{_what(role)} {file.shown} comes from {file.source}, which made none of the maps to "
            f"align ({_names(maps, range(len(maps)))}) and is neither upstream nor downstream "
            "of one; align3d pairs each file with its map by the job that produced them. "
            "Connect the file made with its map, or align that map in a job of its own"
        )
    if len(found) > 1:
        siblings = len({maps[i].source for i in found}) == 1
        if siblings_share and siblings and closeness is not None and closeness <= RELATED:
            return found
        found = _by_name(file, maps, found)
    if len(found) > 1:
        raise PairingError(
            f"{_what(role)} {file.shown} fits several maps to align equally well "
            f"({_names(maps, found)}), and its name does not say which: align3d pairs files "
            "with their map by the job that made them (or, for imported files, by a shared "
            "name such as v1_map.mrc and v1_half1.mrc), never by position. Rename the files, "
            "or align those maps in separate jobs"
        )
    return found


def _check_counts(volume: VolumePlan) -> None:
    where = f"map {volume.map.shown}"
    if len(volume.halves) not in (0, 2):
        listed = ", ".join(h.shown for h in volume.halves)
        raise PairingError(
            f"{where} has {len(volume.halves)} half maps ({listed}); give both half maps or none"
        )
    volume.halves.sort(key=lambda h: h.path.name)
    for role in (MapRole.MAP_SHARP, MapRole.MASK, MapRole.PARTICLES):
        files = volume.of(role)
        if len(files) > 1:
            raise PairingError(
                f"{where} has {len(files)} {_what(role)} files ({', '.join(f.shown for f in files)}); "
                "give at most one"
            )


def _group_particles(
    inputs: HostInputs, maps: Sequence[HostFile], classes: list[int] | None
) -> HostFile | None:
    """The one particle file shared by every class of one job (a volumes group), or None."""
    if len(maps) < 2 or len(inputs.particles) != 1:
        return None
    particles = inputs.particles[0]
    found, closeness = _matches(particles, maps)
    if len(found) < 2 or closeness is None or closeness > RELATED:
        return None
    if classes is None:
        return None  # refused later, as ambiguous
    if sorted(classes) != list(range(1, len(classes) + 1)):
        have = ", ".join(str(c) for c in sorted(classes))
        raise PairingError(
            f"particles {particles.shown} are shared by classes {have} of {maps[0].source}; "
            "each particle follows the volume of its class, so connect every class from 1 "
            f"to {max(classes)}, or select the particles of these classes first"
        )
    return particles


def _group_plan(inputs: HostInputs, volumes: list[VolumePlan], particles: HostFile) -> SpecPlan:
    if inputs.halves or inputs.sharpened:
        raise PairingError(
            "half maps or sharpened maps cannot be paired with the classes of one job (a "
            "volumes group); align the classes without them, or each refined class in a job "
            "of its own"
        )
    if len(inputs.masks) > 1:
        raise PairingError(
            "the classes of one job take one mask for all of them; connect one mask, or align "
            "each class in a job of its own"
        )
    return SpecPlan(
        sorted(volumes, key=lambda v: v.index),
        group=True,
        particles_all=particles,
        masks_all=inputs.masks[0] if inputs.masks else None,
    )


def _volume_ref(volume: VolumePlan, with_index: bool) -> dict[str, object]:
    ref: dict[str, object] = {MapRole.MAP: str(volume.map.path)}
    if volume.halves:
        for role, half in zip(HALF_MAPS, volume.halves, strict=True):
            ref[role] = str(half.path)
    if volume.sharpened:
        ref[MapRole.MAP_SHARP] = str(volume.sharpened[0].path)
    if with_index:
        ref["index"] = volume.index
    return ref


def job_spec(
    inputs: HostInputs,
    plan: SpecPlan,
    params: Mapping[str, object],
    *,
    particles: bool,
    masks: bool,
) -> JobSpec:
    """An ``align_3d_maps`` job spec (absolute paths) for the paired inputs, with the job
    parameters ``params`` (by name, as the host gives them). The paired particles and masks are
    connected only with ``particles`` and ``masks`` (the host's ``update_particle_alignments``
    and ``create_mask_inputs``, from its options or from what is connected)."""
    spec: dict[str, object] = {REFERENCE_MAP.name: {MapRole.MAP: str(inputs.reference.path)}}
    if inputs.reference_mask is not None:
        spec[REFERENCE_MASK.name] = {"path": str(inputs.reference_mask.path)}
    if plan.group:
        spec[GROUP] = {"volumes": [_volume_ref(v, with_index=False) for v in plan.volumes]}
        if particles and plan.particles_all is not None:
            spec[PARTICLES_ALL.name] = {"path": str(plan.particles_all.path)}
        if masks and plan.masks_all is not None:
            spec[MASKS_ALL_CLASSES.name] = [{"path": str(plan.masks_all.path)}]
    else:
        spec[INDIVIDUAL] = [_volume_ref(v, with_index=True) for v in plan.volumes]
        for volume in plan.volumes:
            if particles and volume.particles:
                spec[PARTICLES_N.at(volume.index)] = {"path": str(volume.particles[0].path)}
            if masks and volume.masks:
                spec[MASK_N.at(volume.index)] = {"path": str(volume.masks[0].path)}
    return JobSpec.model_validate({"job": JOB.name, "params": dict(params), "inputs": spec})
