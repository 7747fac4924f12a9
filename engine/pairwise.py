"""Align one map file onto a reference map file and write the aligned map.

This is the per-volume unit of work: read both maps, find the transform
(:func:`engine.alignment.align_maps`), move the map onto the reference grid (reference box,
voxel size and header origin), write it atomically, and measure the FSC with the reference
before and after.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from engine.alignment import AlignmentParams, AlignmentResult, align_maps, fsc, resample_map
from engine.alignment.geometry import RigidTransform
from slots.mrc import MapData, read_map, write_map


@dataclass(frozen=True)
class PairOutcome:
    """What one pairwise alignment produced (paths, the alignment, FSC and timings)."""

    aligned_path: Path
    alignment: AlignmentResult
    fsc_before_0143_A: float
    fsc_after_0143_A: float
    timings_s: dict[str, float]

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary (DESIGN.md convention for the matrices)."""
        t = self.alignment.transform
        alt = self.alignment.alternative_score
        return {
            "aligned_map": str(self.aligned_path),
            "rotation": t.rotation.round(8).tolist(),
            "shift_A": t.shift_A.round(6).tolist(),
            "hand_flipped": t.flip,
            "matrix": t.matrix.round(8).tolist(),
            "rotation_angle_deg": round(t.angle_deg, 6),
            "score": round(self.alignment.score, 6),
            "alternative_score": None if alt is None else round(alt, 6),
            "fsc_0143_before_A": _finite_or_none(self.fsc_before_0143_A),
            "fsc_0143_A": _finite_or_none(self.fsc_after_0143_A),
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
        }


def _finite_or_none(value: float) -> float | None:
    return round(value, 3) if np.isfinite(value) else None


def move_onto(
    moving: MapData, transform: RigidTransform, reference: MapData, kind: str = "map"
) -> NDArray[np.float32]:
    """``moving`` moved by ``transform`` onto the grid of ``reference``."""
    return resample_map(
        moving.data,
        moving.voxel_size_A,
        transform,
        reference.data.shape,
        reference.voxel_size_A,
        kind=kind,  # type: ignore[arg-type]
    )


def fsc_resolution(a: NDArray, b: NDArray, voxel_size_A: float) -> float:
    """FSC = 0.143 resolution (Å) of two maps on one grid."""
    return fsc(a, b, voxel_size_A).resolution_at(0.143)


def align_files(
    reference_path: Path,
    moving_path: Path,
    aligned_path: Path,
    params: AlignmentParams,
    reference_voxel_A: float | None = None,
    moving_voxel_A: float | None = None,
) -> PairOutcome:
    """Align ``moving_path`` onto ``reference_path``; write the aligned map to ``aligned_path``."""
    clock = time.perf_counter()
    reference = read_map(reference_path, reference_voxel_A)
    moving = read_map(moving_path, moving_voxel_A)
    timings = {"read": time.perf_counter() - clock}
    result = align_maps(
        reference.data, reference.voxel_size_A, moving.data, moving.voxel_size_A, params
    )
    timings["align"] = result.timings_s["total"]
    start = time.perf_counter()
    aligned = move_onto(moving, result.transform, reference)
    timings["resample"] = time.perf_counter() - start
    start = time.perf_counter()
    write_map(aligned_path, aligned, reference.voxel_size_A, reference.header)
    timings["write"] = time.perf_counter() - start
    start = time.perf_counter()
    p = float(reference.voxel_size_A[0])
    before = move_onto(moving, RigidTransform(), reference)
    fsc_before = fsc_resolution(reference.data, before, p)
    fsc_after = fsc_resolution(reference.data, aligned, p)
    timings["fsc"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - clock
    return PairOutcome(aligned_path, result, fsc_before, fsc_after, timings)
