"""The connected inputs of Align 3D Maps, read once into typed records: the reference, each
volume to align with its stable index, its mask and its particles.

The preflight, the run and the report all read the inputs through :class:`AlignInputs`, so
that which mask goes with which volume is decided in one place (``mask_N``, else
``masks_all_classes``, one for all or one per volume in order, else the volume's own mask).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
from align3d.slots.payloads import MaskPayload, ParticlesPayload, VolumePayload, VolumesGroupPayload


@dataclass(frozen=True)
class VolumeInput:
    """One volume to align: its stable index, the slot it came from, its files, its mask (and
    the slot that gave it) and its particles (individual mode)."""

    index: int
    slot: str
    volume: VolumePayload
    mask: MaskPayload | None
    mask_slot: str | None
    particles: ParticlesPayload | None
    particles_slot: str | None


@dataclass(frozen=True)
class AlignInputs:
    """Every input of one job. ``group``: the volumes came as one volumes group."""

    reference: VolumePayload
    reference_mask: MaskPayload | None
    volumes: list[VolumeInput]
    group: bool
    particles_all: ParticlesPayload | None
    masks_all: list[MaskPayload]

    @classmethod
    def read(cls, inputs: Mapping[str, Any]) -> AlignInputs:
        reference: VolumePayload = inputs[REFERENCE_MAP.name]
        ref_mask = inputs.get(REFERENCE_MASK.name)
        if ref_mask is not None:
            ref_mask = _on_volume(ref_mask, reference)
        elif reference.mask is not None:
            ref_mask = MaskPayload(path=reference.mask, voxel_size_A=reference.voxel_size_A)
        group = GROUP in inputs
        if group:
            payload: VolumesGroupPayload = inputs[GROUP]
            listed = [(i, v) for i, v in enumerate(payload.volumes, start=1)]
        else:
            listed = sorted(inputs.get(INDIVIDUAL, []), key=lambda item: item[0])
        masks_all = [
            m for _, m in sorted(inputs.get(MASKS_ALL_CLASSES.name, []), key=lambda x: x[0])
        ]
        volumes = []
        for position, (index, volume) in enumerate(listed):
            mask, mask_slot = _mask_of(inputs, index, position, len(listed), masks_all, volume)
            if mask is not None and mask_slot is None:
                mask_slot = GROUP if group else INDIVIDUAL
            particles_slot = PARTICLES_N.at(index)
            particles = inputs.get(particles_slot)
            volumes.append(
                VolumeInput(
                    index,
                    GROUP if group else INDIVIDUAL,
                    volume,
                    mask,
                    mask_slot,
                    particles,
                    particles_slot if particles is not None else None,
                )
            )
        return cls(reference, ref_mask, volumes, group, inputs.get(PARTICLES_ALL.name), masks_all)

    @property
    def indices(self) -> list[int]:
        return [v.index for v in self.volumes]

    def particle_inputs(self) -> dict[str, ParticlesPayload]:
        """Every connected particles input, by slot."""
        found = {v.particles_slot: v.particles for v in self.volumes if v.particles is not None}
        if self.particles_all is not None:
            found[PARTICLES_ALL.name] = self.particles_all
        return {slot: payload for slot, payload in found.items() if slot is not None}


def _mask_of(
    inputs: Mapping[str, Any],
    index: int,
    position: int,
    count: int,
    masks_all: list[MaskPayload],
    volume: VolumePayload,
) -> tuple[MaskPayload | None, str | None]:
    """The mask that goes with volume ``index`` and the slot it comes from. A group's masks
    count that is neither 1 nor the number of volumes gives none here; the preflight reports
    it (``wrong_mask_count``)."""
    own = inputs.get(MASK_N.at(index))
    if own is not None:
        return _on_volume(own, volume), MASK_N.at(index)
    if len(masks_all) == 1:
        return _on_volume(masks_all[0], volume), MASKS_ALL_CLASSES.name
    if masks_all and len(masks_all) == count:
        return _on_volume(masks_all[position], volume), MASKS_ALL_CLASSES.name
    if volume.mask is not None:
        return MaskPayload(path=volume.mask, voxel_size_A=volume.voxel_size_A), None
    return None, None


def _on_volume(mask: MaskPayload, volume: VolumePayload) -> MaskPayload:
    """A mask lies on its volume's grid: without a voxel size of its own, it takes the
    volume's override."""
    if mask.voxel_size_A is not None or volume.voxel_size_A is None:
        return mask
    return mask.model_copy(update={"voxel_size_A": volume.voxel_size_A})
