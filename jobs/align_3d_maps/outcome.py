"""What aligning one volume produced (:class:`VolumeOutcome`): the files, the alignment, the
FSC curves and slices that the record, the log, the report and the figures are made from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from align3d.engine.alignment.align import AlignmentResult
from align3d.engine.alignment.fsc import FSCCurve
from align3d.jobs.align_3d_maps.slices import Slices
from align3d.slots.payloads import MapRole


@dataclass(frozen=True)
class VolumeOutcome:
    """What aligning one volume produced: written files by map name (``map``, ``map_sharp``,
    ``map_half_A``, ``map_half_B``, ``mask``, and ``difference_map`` with diagnostics), the
    alignment, FSC curves, the slices the figures show, what the output grid cost (warnings),
    timings (s) and the low-pass of the difference map (Å; None without diagnostics)."""

    files: dict[MapRole, Path]
    alignment: AlignmentResult
    fsc_before: FSCCurve
    fsc_after: FSCCurve
    reference_slices: Slices
    aligned_slices: Slices
    difference_slices: Slices | None
    grid_warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    difference_lowpass_A: float | None = None

    @property
    def fsc_before_0143_A(self) -> float:
        return self.fsc_before.resolution_at(0.143)

    @property
    def fsc_after_0143_A(self) -> float:
        return self.fsc_after.resolution_at(0.143)


def finite_or_none(value: float) -> float | None:
    return round(value, 3) if np.isfinite(value) else None
