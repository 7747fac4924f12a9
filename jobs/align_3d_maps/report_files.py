"""The files of a job as the report lists them: every input of each volume (map, sharpened
map, half maps, mask, particles) and of the reference, with the slot each came from, and every
output of each volume (from its folder) and the particle files written.

Input paths are shown absolute and normalised (``specs/../case/a.mrc`` reads
``/abs/case/a.mrc``; symbolic links kept as the user named them); output paths relative to the
job folder, which is where they stay when the folder is moved.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from align3d.jobs.align_3d_maps.inputs import AlignInputs, VolumeInput
from align3d.jobs.align_3d_maps.names import (
    DIFFERENCE_FIGURE,
    FSC_FIGURE,
    OVERLAY_FIGURE,
    map_file,
)
from align3d.jobs.align_3d_maps.particle_outputs import ParticlesWritten
from align3d.jobs.align_3d_maps.slots import PARTICLES_ALL, REFERENCE_MAP, REFERENCE_MASK
from align3d.slots.payloads import VOLUME_MAPS, MapRole, VolumePayload

OUTPUT_ROLES = {
    **{map_file(role): f"aligned {role.label}" for role in VOLUME_MAPS},
    map_file(MapRole.MASK): "moved mask",
    map_file(MapRole.DIFFERENCE_MAP): "difference map (aligned - reference)",
    FSC_FIGURE: "figure: FSC",
    DIFFERENCE_FIGURE: "figure: difference slices",
    OVERLAY_FIGURE: "figure: overlay slices",
}
"""What each file of a volume's folder is (other files are listed by name)."""


@dataclass(frozen=True)
class FileRow:
    """One file of the report: what it is (``role``), the file, the slot it came from or goes
    to, and a note (the class of a volume's particles in a shared file, counts)."""

    role: str
    path: Path
    slot: str
    note: str = ""


def normalised(path: Path | str) -> Path:
    """``path`` absolute and without ``.`` or ``..`` parts (links are not resolved)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def shown(path: Path, workdir: Path) -> str:
    """How the report writes ``path``: relative to the job folder ``workdir`` when inside it,
    else absolute and normalised."""
    full = normalised(path)
    try:
        return full.relative_to(normalised(workdir)).as_posix()
    except ValueError:
        return str(full)


def _volume_files(volume: VolumePayload, slot: str) -> list[FileRow]:
    return [FileRow(role.label, Path(path), slot) for role, path in volume.maps().items()]


def reference_rows(inputs: AlignInputs) -> list[FileRow]:
    """The reference's maps and its mask (its own, or the ``reference_mask`` input)."""
    rows = _volume_files(inputs.reference, REFERENCE_MAP.name)
    mask = inputs.reference_mask
    if mask is not None:
        own = inputs.reference.mask is not None and Path(mask.path) == Path(inputs.reference.mask)
        rows.append(
            FileRow("mask", Path(mask.path), REFERENCE_MAP.name if own else REFERENCE_MASK.name)
        )
    return rows


def volume_input_rows(volume: VolumeInput, inputs: AlignInputs) -> list[FileRow]:
    """Every input file of one volume: its maps, its mask (with the slot that gave it) and its
    particles (its own ``particles_N``, or its class of ``particles_all``)."""
    rows = _volume_files(volume.volume, volume.slot)
    if volume.mask is not None:
        rows.append(FileRow("mask", Path(volume.mask.path), volume.mask_slot or volume.slot))
    if volume.particles is not None and volume.particles_slot is not None:
        rows.append(FileRow("particles", Path(volume.particles.path), volume.particles_slot))
    elif inputs.particles_all is not None:
        rows.append(
            FileRow(
                "particles",
                Path(inputs.particles_all.path),
                PARTICLES_ALL.name,
                f"the particles of class {volume.index}",
            )
        )
    return rows


def _order(name: str) -> tuple[int, str]:
    keys = list(OUTPUT_ROLES)
    return (keys.index(name) if name in keys else len(keys), name)


def volume_output_rows(
    folder: Path, index: int, particles: Sequence[ParticlesWritten]
) -> list[FileRow]:
    """Every file in a volume's folder (known files first, in a fixed order), then the particle
    files that follow the volume, with their counts."""
    names = sorted((p.name for p in folder.iterdir() if p.is_file()), key=_order)
    rows = [FileRow(OUTPUT_ROLES.get(name, "other"), folder / name, "") for name in names]
    for written in particles:
        for mine in (v for v in written.by_volume if v.index == index):
            shared = (
                f" (class {index} of {written.count} in the file)"
                if len(written.by_volume) > 1
                else ""
            )
            rows.append(
                FileRow(
                    "particles",
                    written.path,
                    written.slot,
                    f"{mine.count} particles{shared}, {mine.changed} poses changed",
                )
            )
    return rows
