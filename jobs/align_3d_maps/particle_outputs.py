"""Particle files written by Align 3D Maps, with what they hold: how many particles, how many of
their poses changed, and which volumes they follow (for the log and the report)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from align3d.slots.particles import Mover, ParticleFile

ROTATION_TOLERANCE = 1e-9
"""Largest change of a pose matrix entry still counted as unchanged (a rotation of ~6e-8°)."""
ORIGIN_TOLERANCE_A = 1e-6
"""Largest change of an origin (Å) still counted as unchanged."""


@dataclass(frozen=True)
class VolumeParticles:
    """The particles of one volume in a file written: how many, how many poses changed."""

    index: int
    count: int
    changed: int


@dataclass(frozen=True)
class ParticlesWritten:
    """One particle file the job wrote.

    ``slot``: the output slot (``particles_for_map_N`` or ``all_particles``); ``source``: the
    input file; ``path``: the written file (absolute); ``count``: particles in it; ``changed``:
    particles whose pose (rotation or origin) differs from the input's; ``by_volume``: the same
    for the particles of each volume they follow (one volume, or the classes of a group)."""

    slot: str
    source: Path
    path: Path
    count: int
    changed: int
    by_volume: tuple[VolumeParticles, ...]

    @property
    def volumes(self) -> tuple[int, ...]:
        """The indices of the volumes whose moves the particles follow."""
        return tuple(v.index for v in self.by_volume)


def _changed_rows(
    a: NDArray[np.float64], origins: NDArray[np.float64], new_a: NDArray, new_o: NDArray
) -> NDArray[np.bool_]:
    """Which poses differ (beyond rounding) between ``(a, origins)`` and the new ones."""
    rotated = np.any(np.abs(np.asarray(new_a) - a) > ROTATION_TOLERANCE, axis=(1, 2))
    shifted = np.any(np.abs(np.asarray(new_o) - origins) > ORIGIN_TOLERANCE_A, axis=1)
    return rotated | shifted


def write_moved_particles(
    particles: ParticleFile,
    mover: Mover,
    target: Path,
    identity: bool,
    slot: str,
    volumes: tuple[int, ...],
    classes: NDArray[np.int64] | None = None,
) -> ParticlesWritten:
    """Write ``particles`` with poses from ``mover`` to ``target`` and say what changed.

    ``volumes``: the volumes the particles follow; with ``classes`` (each particle's volume,
    1-based) the counts are also given per volume, else every particle belongs to the one
    volume of ``volumes``. With ``identity`` (every transform is the identity) the file is
    written untouched, so that a no-op keeps every value, angle representations included, and
    no pose counts as changed. Priors, which move with the poses, are not counted again.
    """
    changed = np.zeros(len(particles), dtype=bool)
    calls: list[int] = []

    def counting(
        a: NDArray[np.float64], origins: NDArray[np.float64], rows: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        new_a, new_o = mover(a, origins, rows)
        if not calls:  # the poses come first; a second call moves the priors
            changed[rows] = _changed_rows(a, origins, new_a, new_o)
        calls.append(len(rows))
        return new_a, new_o

    written = (particles if identity else particles.updated(counting)).write(target)
    if classes is None:
        (only,) = volumes
        by_volume = (VolumeParticles(only, len(particles), int(changed.sum())),)
    else:
        by_volume = tuple(
            VolumeParticles(
                index, int((classes == index).sum()), int(changed[classes == index].sum())
            )
            for index in volumes
        )
    return ParticlesWritten(
        slot, Path(particles.path), written, len(particles), int(changed.sum()), by_volume
    )
