"""Slot kinds and their typed payloads: what flows along the edges of a workflow graph.

A payload names files; it does not hold arrays. Paths are as given (relative paths are resolved
against the folder of the document that holds them, by whoever reads the document).

* ``volume``: a map plus optional sharpened map and half maps (and, once aligned, its mask);
* ``volumes_group``: an ordered list of volumes;
* ``mask``: one mask map, values in [0, 1];
* ``particles``: a RELION STAR or CryoSPARC ``.cs`` file.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SlotKind(StrEnum):
    """The kinds of data a slot carries; an edge connects slots of the same kind."""

    VOLUME = "volume"
    VOLUMES_GROUP = "volumes_group"
    MASK = "mask"
    PARTICLES = "particles"


_FROZEN = ConfigDict(frozen=True, extra="forbid")

VoxelSize = Annotated[
    float | None,
    Field(
        None,
        gt=0,
        description="Voxel size in Å, overriding the file header (for headers that say 0).",
    ),
]


class VolumePayload(BaseModel):
    """A volume: its map and, optionally, sharpened map, half maps and mask (all MRC files on
    one grid). Every map of a volume moves with the volume's transform."""

    model_config = _FROZEN
    kind: Literal["volume"] = "volume"
    map: Path = Field(description="The map (MRC).")
    map_sharp: Path | None = Field(None, description="Sharpened map (MRC), optional.")
    map_half_A: Path | None = Field(None, description="Half map A (MRC), optional.")
    map_half_B: Path | None = Field(None, description="Half map B (MRC), optional.")
    mask: Path | None = Field(None, description="The volume's mask (MRC, values in [0, 1]).")
    voxel_size_A: VoxelSize = None

    def maps(self) -> dict[str, Path]:
        """The maps of this volume that are present, by field name (mask excluded)."""
        fields = ("map", "map_sharp", "map_half_A", "map_half_B")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


class VolumesGroupPayload(BaseModel):
    """An ordered list of volumes (for example the classes of a 3D classification)."""

    model_config = _FROZEN
    kind: Literal["volumes_group"] = "volumes_group"
    volumes: list[VolumePayload] = Field(min_length=1, description="The volumes, in order.")


class MaskPayload(BaseModel):
    """A mask map (MRC, values in [0, 1])."""

    model_config = _FROZEN
    kind: Literal["mask"] = "mask"
    path: Path = Field(description="The mask (MRC).")
    voxel_size_A: VoxelSize = None


class ParticlesPayload(BaseModel):
    """Particles: a RELION STAR file (``.star``) or a CryoSPARC dataset (``.cs``)."""

    model_config = _FROZEN
    kind: Literal["particles"] = "particles"
    path: Path = Field(description="A RELION .star or CryoSPARC .cs file.")

    @field_validator("path")
    @classmethod
    def _known_format(cls, value: Path) -> Path:
        if value.suffix.lower() not in (".star", ".cs"):
            raise ValueError(f"{value}: particles must be a RELION .star or a CryoSPARC .cs file")
        return value

    @property
    def format(self) -> Literal["star", "cs"]:
        return "star" if self.path.suffix.lower() == ".star" else "cs"


Payload = VolumePayload | VolumesGroupPayload | MaskPayload | ParticlesPayload

PAYLOAD_OF_KIND: dict[SlotKind, type[BaseModel]] = {
    SlotKind.VOLUME: VolumePayload,
    SlotKind.VOLUMES_GROUP: VolumesGroupPayload,
    SlotKind.MASK: MaskPayload,
    SlotKind.PARTICLES: ParticlesPayload,
}
