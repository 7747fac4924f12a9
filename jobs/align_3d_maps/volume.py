"""Align one volume (files) onto a reference: the per-volume unit of work.

Read the volume's map, find the transform (:func:`engine.alignment.align_maps`), then move every
map of the volume (map, sharpened map, half maps) and its mask onto the reference grid
(reference box, voxel size and header origin) with that one transform, write them atomically,
and measure the FSC with the reference before and after. Job-agnostic: paths in, paths out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from engine.alignment.align import AlignmentResult, align_maps
from engine.alignment.fsc import FSCCurve, fsc_of_spectra
from engine.alignment.geometry import RigidTransform
from engine.alignment.params import AlignmentParams
from engine.alignment.resample import resample_map
from slots.errors import MapReadError
from slots.mrc import MapData, grid_problem, read_map, write_map


@dataclass(frozen=True)
class VolumeOutcome:
    """What aligning one volume produced: written files by map name (``map``, ``map_sharp``,
    ``map_half_A``, ``map_half_B``, ``mask``), the alignment, FSC (Å) and timings (s)."""

    files: dict[str, Path]
    alignment: AlignmentResult
    fsc_before: FSCCurve
    fsc_after: FSCCurve
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def fsc_before_0143_A(self) -> float:
        return self.fsc_before.resolution_at(0.143)

    @property
    def fsc_after_0143_A(self) -> float:
        return self.fsc_after.resolution_at(0.143)

    @property
    def aligned_path(self) -> Path:
        return self.files["map"]

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
            "fsc_0143_before_A": finite_or_none(self.fsc_before_0143_A),
            "fsc_0143_A": finite_or_none(self.fsc_after_0143_A),
            "warnings": [concern.message for concern in self.alignment.concerns()],
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
        }


def finite_or_none(value: float) -> float | None:
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


def _read_alongside(
    path: Path,
    main: MapData,
    main_path: Path,
    name: str,
    voxel: float | None,
    constant_ok: bool = False,
) -> MapData:
    """Read a map (or, with ``constant_ok``, a mask) that must share the grid of the volume's
    main map."""
    other = read_map(path, voxel, constant_ok)
    problem = grid_problem(other, path, main, main_path, name)
    if problem is not None:
        raise MapReadError(problem)
    return other


def align_volume(
    reference: MapData,
    maps: dict[str, Path],
    out_files: dict[str, Path],
    params: AlignmentParams,
    reference_mask: NDArray[np.floating] | None = None,
    mask: Path | None = None,
    voxel_size_A: float | None = None,
    use_masks: bool = True,
    progress: Callable[[str], None] | None = None,
    mask_voxel_A: float | None = None,
    fixed: AlignmentResult | None = None,
) -> VolumeOutcome:
    """Align the volume whose files are ``maps`` (``map`` required) onto ``reference``.

    ``mask`` (on the volume's grid) moves with the volume; with ``use_masks`` it and
    ``reference_mask`` also restrict the alignment. Each moved map (and ``mask``) is written to
    ``out_files[name]``.
    """
    clock = time.perf_counter()
    moving = read_map(maps["map"], voxel_size_A)
    moving_mask = None
    if mask is not None:
        voxel = mask_voxel_A or voxel_size_A
        moving_mask = _read_alongside(mask, moving, maps["map"], "mask", voxel, constant_ok=True)
    timings = {"read": time.perf_counter() - clock}
    result = fixed or align_maps(
        reference.data,
        reference.voxel_size_A,
        moving.data,
        moving.voxel_size_A,
        params,
        reference_mask=reference_mask if use_masks else None,
        moving_mask=moving_mask.data if (use_masks and moving_mask is not None) else None,
        progress=progress,
    )
    timings["align"] = result.timings_s["total"]
    start = time.perf_counter()
    files: dict[str, Path] = {}
    aligned_main: NDArray[np.float32] | None = None
    for name, path in maps.items():
        data = (
            moving
            if name == "map"
            else _read_alongside(path, moving, maps["map"], name, voxel_size_A)
        )
        aligned = move_onto(data, result.transform, reference)
        files[name] = write_map(out_files[name], aligned, reference.voxel_size_A, reference.header)
        if name == "map":
            aligned_main = aligned
    if moving_mask is not None:
        moved_mask = move_onto(moving_mask, result.transform, reference, kind="mask")
        files["mask"] = write_map(
            out_files["mask"], moved_mask, reference.voxel_size_A, reference.header
        )
    timings["resample_write"] = time.perf_counter() - start
    start = time.perf_counter()
    p = float(reference.voxel_size_A[0])
    shape = reference.data.shape
    same_grid = moving.data.shape == shape and np.allclose(
        moving.voxel_size_A, reference.voxel_size_A, rtol=1e-6
    )
    # on the reference's grid already, the untransformed map is itself (no resampling)
    before = moving.data if same_grid else move_onto(moving, RigidTransform(), reference)
    spectrum = sfft.rfftn(np.asarray(reference.data, dtype=np.float32))  # once, for both
    fsc_before = fsc_of_spectra(spectrum, sfft.rfftn(before.astype(np.float32)), shape, p)
    fsc_after = fsc_of_spectra(spectrum, sfft.rfftn(aligned_main), shape, p)
    timings["fsc"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - clock
    return VolumeOutcome(files, result, fsc_before, fsc_after, timings)


def align_files(
    reference_path: Path,
    moving_path: Path,
    aligned_path: Path,
    params: AlignmentParams,
    reference_voxel_A: float | None = None,
    moving_voxel_A: float | None = None,
) -> VolumeOutcome:
    """Align the map ``moving_path`` onto ``reference_path``; write it to ``aligned_path``."""
    clock = time.perf_counter()
    reference = read_map(reference_path, reference_voxel_A)
    read_s = time.perf_counter() - clock
    outcome = align_volume(
        reference,
        {"map": moving_path},
        {"map": aligned_path},
        params,
        voxel_size_A=moving_voxel_A,
    )
    outcome.timings_s["read"] += read_s
    outcome.timings_s["total"] += read_s
    return outcome
