"""The slots of Align 3D Maps, declared once: what ``align3d describe``, the README's job
reference, the JSON Schema, the resolver and the host adapters all read.

Exactly one of ``maps_to_align_group`` (a volumes group) or ``maps_to_align`` (individual
volumes, each with a stable index N) is connected. Per-volume templates (``particles_N``,
``mask_N``, ``aligned_volume_N``, ``mask_aligned_N``, ``particles_for_map_N``) expand to one
slot per connected volume N and appear only when their condition holds.
"""

from __future__ import annotations

from typing import Any

from align3d.engine.jobdef import Condition, Connected, SlotDecl
from align3d.slots.payloads import SlotKind

GROUP = "maps_to_align_group"
INDIVIDUAL = "maps_to_align"


def group_mode(connected: Connected) -> bool:
    return connected.has(GROUP)


def _when(text: str, test: Any) -> Condition:
    return Condition(text, test)


GROUP_UPDATE = _when(
    "a volumes group is connected and update_particle_alignments is on",
    lambda p, c, n: group_mode(c) and p.update_particle_alignments,
)
GROUP_MASKS = _when(
    "a volumes group is connected and create_mask_inputs is on",
    lambda p, c, n: group_mode(c) and p.create_mask_inputs,
)
EACH_UPDATE = _when(
    "for each volume N of maps_to_align, when update_particle_alignments is on",
    lambda p, c, n: not group_mode(c) and p.update_particle_alignments,
)
EACH_MASKS = _when(
    "for each volume N of maps_to_align, when create_mask_inputs is on",
    lambda p, c, n: not group_mode(c) and p.create_mask_inputs,
)
EACH_VOLUME = _when("for each volume N of maps_to_align", lambda p, c, n: not group_mode(c))

REFERENCE_MAP = SlotDecl(
    "reference_map",
    SlotKind.VOLUME,
    "The reference volume: every volume is moved onto its frame and grid.",
    required=True,
)
REFERENCE_MASK = SlotDecl(
    "reference_mask",
    SlotKind.MASK,
    "Mask of the reference (values in [0, 1]); restricts the alignment when "
    "apply_mask_to_volumes is on. Default: the reference volume's own mask, if any.",
)
MAPS_TO_ALIGN_GROUP = SlotDecl(
    GROUP,
    SlotKind.VOLUMES_GROUP,
    "The volumes to align, as one group (e.g. the classes of a 3D classification, volume N "
    "= class N); connecting it drops individual volumes.",
    replaces=INDIVIDUAL,
)
MAPS_TO_ALIGN = SlotDecl(
    INDIVIDUAL,
    SlotKind.VOLUME,
    "The volumes to align, one connection each; each keeps a stable index N (its 'index', "
    "or its position from 1).",
    multiple=True,
    indexed=True,
)
PARTICLES_ALL = SlotDecl(
    "particles_all",
    SlotKind.PARTICLES,
    "The particles of all volumes of the group; each follows the volume of its class "
    "(rlnClassNumber from 1, or CryoSPARC alignments3D/class from 0).",
    required=True,
    when=GROUP_UPDATE,
)
MASKS_ALL_CLASSES = SlotDecl(
    "masks_all_classes",
    SlotKind.MASK,
    "One mask for every volume of the group, or one per volume, in order.",
    multiple=True,
    when=GROUP_MASKS,
)
PARTICLES_N = SlotDecl(
    "particles_N", SlotKind.PARTICLES, "The particles of volume N.", when=EACH_UPDATE
)
MASK_N = SlotDecl(
    "mask_N", SlotKind.MASK, "The mask of volume N (on its grid); moves with it.", when=EACH_MASKS
)

INPUTS = (
    REFERENCE_MAP,
    REFERENCE_MASK,
    MAPS_TO_ALIGN_GROUP,
    MAPS_TO_ALIGN,
    PARTICLES_ALL,
    MASKS_ALL_CLASSES,
    PARTICLES_N,
    MASK_N,
)

REFERENCE_VOLUME = SlotDecl(
    "reference_volume", SlotKind.VOLUME, "The reference, as given (unchanged)."
)
ALIGNED_VOLUMES = SlotDecl(
    "aligned_volumes",
    SlotKind.VOLUMES_GROUP,
    "Every aligned volume (its maps and mask moved), in volume order.",
)
ALL_PARTICLES = SlotDecl(
    "all_particles",
    SlotKind.PARTICLES,
    "particles_all with poses that follow each particle's class volume.",
    when=GROUP_UPDATE,
)
ALIGNED_VOLUME_N = SlotDecl(
    "aligned_volume_N",
    SlotKind.VOLUME,
    "Volume N aligned: its map, sharpened map, half maps and mask moved.",
    when=EACH_VOLUME,
)
MASK_ALIGNED_N = SlotDecl(
    "mask_aligned_N",
    SlotKind.MASK,
    "mask_N moved with volume N.",
    when=_when(
        "for each volume N whose mask_N is connected (create_mask_inputs on)",
        lambda p, c, n: not group_mode(c) and p.create_mask_inputs and c.has(MASK_N.at(n)),
    ),
)
PARTICLES_FOR_MAP_N = SlotDecl(
    "particles_for_map_N",
    SlotKind.PARTICLES,
    "particles_N with poses that follow volume N.",
    when=_when(
        "for each volume N whose particles_N is connected (update_particle_alignments on)",
        lambda p, c, n: (
            not group_mode(c) and p.update_particle_alignments and c.has(PARTICLES_N.at(n))
        ),
    ),
)

OUTPUTS = (
    REFERENCE_VOLUME,
    ALIGNED_VOLUMES,
    ALL_PARTICLES,
    ALIGNED_VOLUME_N,
    MASK_ALIGNED_N,
    PARTICLES_FOR_MAP_N,
)
