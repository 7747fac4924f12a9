"""Import jobs: bring files into a workflow as typed slots (nothing is copied or changed).

Each is a parameter model (the file references of :mod:`align3d.schemas.documents`) and the payload it
emits. Relative paths are taken from the folder of the spec document. An import's output is
known before it runs, so the jobs that read from it are checked (preflight, ``align3d
validate``) before any work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from align3d.engine.inputs import absolute, file_payload, volume_payload
from align3d.engine.issues import JobProblem
from align3d.engine.jobdef import DeclaredJob, JobOutcome, RunContext, SlotDecl
from align3d.schemas.documents import FileRef, VolumeFiles
from align3d.slots.errors import MapReadError, ParticleFileError
from align3d.slots.payloads import ParticlesPayload, SlotKind, VolumesGroupPayload


class VolumesGroupFiles(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    volumes: list[VolumeFiles] = Field(min_length=1, description="The volumes, in order.")


class ParticlesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str = Field(description="RELION .star or CryoSPARC .cs file.")


def _volume_problems(params: BaseModel, base: Path) -> list[JobProblem]:
    """Every map (and mask) of a volume or volumes group readable: fail now, naming the file
    and the parameter, not mid-pipeline."""
    # files are read only when a job checks them (describe, schema, validate --no-files
    # stay quick)
    from align3d.slots.mrc import read_map

    volumes = params.volumes if isinstance(params, VolumesGroupFiles) else [params]
    problems = []
    for position, volume in enumerate(volumes):
        prefix = f"volumes[{position}]." if isinstance(params, VolumesGroupFiles) else ""
        for name in ("map", "map_sharp", "map_half_A", "map_half_B", "mask"):
            value = getattr(volume, name)
            if value is None:
                continue
            try:
                read_map(absolute(base, value), volume.voxel_size_A, constant_ok=name == "mask")
            except MapReadError as exc:
                problems.append(
                    JobProblem(code="unreadable_map", param=prefix + name, message=str(exc))
                )
    return problems


def _mask_problems(params: BaseModel, base: Path) -> list[JobProblem]:
    from align3d.slots.mrc import read_map

    assert isinstance(params, FileRef)
    try:
        read_map(absolute(base, params.path), params.voxel_size_A, constant_ok=True)
    except MapReadError as exc:
        return [JobProblem(code="unreadable_map", param="path", message=str(exc))]
    return []


def _particle_problems(params: BaseModel, base: Path) -> list[JobProblem]:
    from align3d.slots.particles import read_particles

    assert isinstance(params, ParticlesFile)
    try:
        read_particles(absolute(base, params.path))
    except ParticleFileError as exc:
        return [JobProblem(code="invalid_particles", param="path", message=str(exc))]
    return []


@dataclass(frozen=True)
class ImportJob(DeclaredJob):
    """A job with no inputs and one output, built from its parameters."""

    build: Callable[[Any, Path], BaseModel] = lambda params, base: BaseModel()
    problems: Callable[[BaseModel, Path], list[JobProblem]] = _volume_problems

    def outputs_before_run(self, params: BaseModel, base_dir: Path) -> dict[str, BaseModel]:
        """What :meth:`run` will emit (an import reads nothing to know it)."""
        return {self.outputs[0].name: self.build(params, base_dir)}

    def input_files(
        self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path
    ) -> list[Path]:
        """The files this import names (its result depends on their contents)."""
        payload = self.build(params, base_dir)
        volumes = payload.volumes if isinstance(payload, VolumesGroupPayload) else [payload]
        files: list[Path] = []
        for volume in volumes:
            files.extend(v for v in volume.__dict__.values() if isinstance(v, Path))
        return files

    def preflight(
        self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path
    ) -> list[JobProblem]:
        return self.problems(params, base_dir)

    def run(self, params: BaseModel, inputs: Mapping[str, Any], context: RunContext) -> JobOutcome:
        return JobOutcome(self.outputs_before_run(params, context.base_dir))


def _import(
    name: str,
    description: str,
    params_model: type[BaseModel],
    output: str,
    kind: SlotKind,
    build: Callable[[Any, Path], BaseModel],
    problems: Callable[[BaseModel, Path], list[JobProblem]] = _volume_problems,
) -> ImportJob:
    return ImportJob(
        name, description, params_model, (), (SlotDecl(output, kind, description),), build, problems
    )


IMPORT_VOLUME = _import(
    "import_volume",
    "A volume from MRC files.",
    VolumeFiles,
    "volume",
    SlotKind.VOLUME,
    lambda p, base: volume_payload(p, base),
)
IMPORT_VOLUMES_GROUP = _import(
    "import_volumes_group",
    "A volumes group from MRC files, in order.",
    VolumesGroupFiles,
    "volumes_group",
    SlotKind.VOLUMES_GROUP,
    lambda p, base: VolumesGroupPayload(volumes=[volume_payload(v, base) for v in p.volumes]),
)
IMPORT_MASK = _import(
    "import_mask",
    "A mask from an MRC file.",
    FileRef,
    "mask",
    SlotKind.MASK,
    lambda p, base: file_payload(p, SlotKind.MASK, base),
    _mask_problems,
)
IMPORT_PARTICLES = _import(
    "import_particles",
    "Particles from a RELION .star or CryoSPARC .cs file.",
    ParticlesFile,
    "particles",
    SlotKind.PARTICLES,
    lambda p, base: ParticlesPayload(path=absolute(base, p.path)),
    _particle_problems,
)
