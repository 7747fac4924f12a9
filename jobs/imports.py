"""Import jobs: bring files into a workflow as typed slots (nothing is copied or changed).

Each is a parameter model and the payload it emits, on one declarative class. Relative paths
are taken from the folder of the spec document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.jobdef import Connected, JobOutcome, RunContext, SlotSpec
from slots.mrc import read_map
from slots.particles import read_particles
from slots.payloads import (
    MaskPayload,
    ParticlesPayload,
    SlotKind,
    VolumePayload,
    VolumesGroupPayload,
)

_PARAMS = ConfigDict(frozen=True, extra="forbid")


class VolumeFiles(BaseModel):
    model_config = _PARAMS
    map: str = Field(description="The map (MRC).")
    map_sharp: str | None = Field(None, description="Sharpened map (MRC).")
    map_half_A: str | None = Field(None, description="Half map A (MRC).")
    map_half_B: str | None = Field(None, description="Half map B (MRC).")
    mask: str | None = Field(None, description="Mask (MRC).")
    voxel_size_A: float | None = Field(None, gt=0, description="Voxel size override, Å.")


class VolumesGroupFiles(BaseModel):
    model_config = _PARAMS
    volumes: list[VolumeFiles] = Field(min_length=1, description="The volumes, in order.")


class MaskFile(BaseModel):
    model_config = _PARAMS
    path: str = Field(description="The mask (MRC, values in [0, 1]).")
    voxel_size_A: float | None = Field(None, gt=0, description="Voxel size override, Å.")


class ParticlesFile(BaseModel):
    model_config = _PARAMS
    path: str = Field(description="RELION .star or CryoSPARC .cs file.")


def _absolute(base: Path, path: str | None) -> Path | None:
    return None if path is None else (base / path).resolve()


def _volume(files: VolumeFiles, base: Path) -> VolumePayload:
    payload = VolumePayload(
        **{
            k: _absolute(base, getattr(files, k))
            for k in ("map", "map_sharp", "map_half_A", "map_half_B", "mask")
        },
        voxel_size_A=files.voxel_size_A,
    )
    for path in payload.maps().values():
        read_map(path, files.voxel_size_A)  # fail now, naming the file, not mid-pipeline
    if payload.mask is not None:
        read_map(payload.mask, files.voxel_size_A, constant_ok=True)
    return payload


def _mask(files: MaskFile, base: Path) -> MaskPayload:
    path = _absolute(base, files.path)
    read_map(path, files.voxel_size_A, constant_ok=True)
    return MaskPayload(path=path, voxel_size_A=files.voxel_size_A)


def _particles(files: ParticlesFile, base: Path) -> ParticlesPayload:
    path = _absolute(base, files.path)
    read_particles(path)  # fail now, naming the file, not mid-pipeline
    return ParticlesPayload(path=path)


@dataclass(frozen=True)
class ImportJob:
    """A job with no inputs and one output, built from its parameters."""

    name: str
    description: str
    params_model: type[BaseModel]
    output: str
    kind: SlotKind
    build: Callable[[Any, Path], BaseModel]

    def input_slots(self, params: BaseModel, connected: Connected) -> list[SlotSpec]:
        return []

    def output_slots(self, params: BaseModel, connected: Connected) -> list[SlotSpec]:
        return [SlotSpec(self.output, self.kind, description=self.description)]

    def run(self, params: BaseModel, inputs: Mapping[str, Any], context: RunContext) -> JobOutcome:
        return JobOutcome({self.output: self.build(params, context.base_dir)})


IMPORT_VOLUME = ImportJob(
    "import_volume", "A volume from MRC files.", VolumeFiles, "volume", SlotKind.VOLUME, _volume
)
IMPORT_VOLUMES_GROUP = ImportJob(
    "import_volumes_group",
    "A volumes group from MRC files, in order.",
    VolumesGroupFiles,
    "volumes_group",
    SlotKind.VOLUMES_GROUP,
    lambda p, base: VolumesGroupPayload(volumes=[_volume(v, base) for v in p.volumes]),
)
IMPORT_MASK = ImportJob(
    "import_mask", "A mask from an MRC file.", MaskFile, "mask", SlotKind.MASK, _mask
)
IMPORT_PARTICLES = ImportJob(
    "import_particles",
    "Particles from a RELION .star or CryoSPARC .cs file.",
    ParticlesFile,
    "particles",
    SlotKind.PARTICLES,
    _particles,
)
