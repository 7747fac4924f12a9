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


class MapRole(StrEnum):
    """What a file is to its volume. The values are the field names of :class:`VolumePayload`
    (and of the job spec's volumes) and the stems of the files the align job writes for a
    volume (``map_half_A.mrc``), so that documents and files read the same; :attr:`label` is
    how messages and the report name it."""

    MAP = "map"
    MAP_SHARP = "map_sharp"
    MAP_HALF_A = "map_half_A"
    MAP_HALF_B = "map_half_B"
    MASK = "mask"
    DIFFERENCE_MAP = "difference_map"
    PARTICLES = "particles"

    @property
    def label(self) -> str:
        """The role in words: ``sharpened map``, ``half map A``, ..."""
        return _LABELS[self]


_LABELS = {
    MapRole.MAP: "map",
    MapRole.MAP_SHARP: "sharpened map",
    MapRole.MAP_HALF_A: "half map A",
    MapRole.MAP_HALF_B: "half map B",
    MapRole.MASK: "mask",
    MapRole.DIFFERENCE_MAP: "difference map",
    MapRole.PARTICLES: "particles",
}
HALF_MAPS = (MapRole.MAP_HALF_A, MapRole.MAP_HALF_B)
VOLUME_MAPS = (MapRole.MAP, MapRole.MAP_SHARP, *HALF_MAPS)
"""The maps of a volume, which move together (in the order of :class:`VolumePayload`)."""
VOLUME_FILES = (*VOLUME_MAPS, MapRole.MASK)
"""Every file a :class:`VolumePayload` names: its maps and its mask."""

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

    def maps(self) -> dict[MapRole, Path]:
        """The maps of this volume that are present, by role (mask excluded)."""
        present = {role: getattr(self, role) for role in VOLUME_MAPS}
        return {role: path for role, path in present.items() if path is not None}


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
