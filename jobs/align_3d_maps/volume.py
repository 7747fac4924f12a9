"""Align one volume (files) onto a prepared reference: the per-volume unit of work.

Read the volume's map (once: its data checks ride on the read), find the transform
(:func:`align3d.engine.alignment.align.align_maps`), then move every map of the volume (map, sharpened
map, half maps) and its mask with that one transform onto the output grid (:mod:`.grids`),
one map at a time so that memory holds one map and its output. The FSC with the reference
(before and after) and the difference map come from spectra made once; the figures from
central slices kept in memory: nothing is read back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from align3d.engine.alignment.align import AlignmentResult, align_maps
from align3d.engine.alignment.difference import difference_from_spectra, difference_lowpass_A
from align3d.engine.alignment.fsc import FSCCurve, fsc_of_spectra
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.jit import threads
from align3d.engine.alignment.masks import mask_value_problem
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.resample import Owned
from align3d.engine.parallel.share import rebalance
from align3d.jobs.align_3d_maps.early_reads import EarlyReads, on_grid
from align3d.jobs.align_3d_maps.grids import (
    CONTENT_FRACTION,
    OutputGrid,
    content_radius_A,
    grid_warnings,
    own_grid,
)
from align3d.jobs.align_3d_maps.provenance import map_labels as labels
from align3d.jobs.align_3d_maps.reference import PreparedReference, reference_for
from align3d.jobs.align_3d_maps.slices import Slices, central_slices
from align3d.slots.errors import MapReadError
from align3d.slots.mrc import MapData, grid_problem, read_grid, read_map, write_map
from align3d.slots.mrc_stream import read_ahead, write_map_slabs


@dataclass(frozen=True)
class VolumeOutcome:
    """What aligning one volume produced: written files by map name (``map``, ``map_sharp``,
    ``map_half_A``, ``map_half_B``, ``mask``, and ``difference_map`` with diagnostics), the
    alignment, FSC curves, the slices the figures show, what the output grid cost (warnings),
    timings (s) and the low-pass of the difference map (Å; None without diagnostics)."""

    files: dict[str, Path]
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


def _read_alongside(
    path: Path, main: MapData, main_path: Path, name: str, voxel: float | None
) -> MapData:
    """Read a map (or a mask, ``name == "mask"``) that must share the grid of the volume's main
    map, checking its values as it is read."""
    other = read_map(path, voxel, constant_ok=name == "mask")
    problem = grid_problem(other, path, main, main_path, name)
    if problem is None and name == "mask":
        values = mask_value_problem(other.data)
        problem = None if values is None else f"{path}: {values}"
    if problem is not None:
        raise MapReadError(problem)
    return other


def _balance() -> int:
    """Take this process's current share of the cores (more when other processes of the run
    have gone idle) for the next stage; returns the thread count for FFTs."""
    rebalance()
    return threads()


def _reference_grid(reference: PreparedReference) -> OutputGrid:
    return OutputGrid(reference.shape, reference.voxel_size_A, reference.header)


@dataclass(frozen=True)
class Diagnostics:
    """With diagnostics on: where the difference map goes and the alignment's low-pass (Å), the
    finest the difference map is low-passed to (:func:`difference_lowpass_A`)."""

    difference_map: Path
    lowpass_A: float


def align_volume(
    reference: PreparedReference,
    maps: dict[str, Path],
    out_files: dict[str, Path],
    params: AlignmentParams,
    mask: Path | None = None,
    voxel_size_A: float | None = None,
    use_masks: bool = True,
    progress: Callable[[str], None] | None = None,
    mask_voxel_A: float | None = None,
    fixed: AlignmentResult | None = None,
    output_grid: str = "reference",
    diagnostics: Diagnostics | None = None,
    index: int = 1,
    early: EarlyReads | None = None,
) -> VolumeOutcome:
    """Align the volume whose files are ``maps`` (``map`` required) onto ``reference``.

    ``mask`` (on the volume's grid) moves with the volume; with ``use_masks`` it also restricts
    the alignment. Each moved map (and ``mask``) is written to ``out_files[name]``. ``fixed``:
    an alignment already found, applied instead of a search. ``early``: where ``map`` is being
    read already, with its spectrum (``align3d align``), taken from there.

    Memory holds the reference's spectrum and, at any time, at most two full-size maps of the
    volume and one output: each map is handed over to the resampling, which reuses its memory,
    and the other maps (all but ``map``) are written slab by slab as they are computed.
    A mask used by the search is let go after it and read again to be moved (it is the one file
    read twice: holding it would add a full-size map to the peak).
    """
    clock = time.perf_counter()
    early_spectrum = None
    if early is None:
        moving = read_map(maps["map"], voxel_size_A)
    else:
        read = early.moving()
        moving, early_spectrum = read.map, read.spectrum
        del read
    main_grid = read_grid(maps["map"], voxel_size_A)
    # the volume's other files are read later: let the disk bring them in during the search
    read_ahead([path for name, path in maps.items() if name != "map"] + ([mask] if mask else []))
    mask_voxel = mask_voxel_A or voxel_size_A
    timings = {"read": time.perf_counter() - clock}
    start = time.perf_counter()
    voxel_in = moving.voxel_size_A
    on_reference = _reference_grid(reference)
    same_grid = on_grid(moving, reference.shape, reference.voxel_size_A)
    # before: the map as it was, on the reference's grid (trilinear is enough to compare); on
    # the same grid its spectrum is the one the search starts from too
    before = (
        moving.data
        if same_grid
        else on_reference.moved_mask(moving.data, voxel_in, RigidTransform())
    )
    p = float(reference.voxel_size_A[0])
    if early_spectrum is not None and same_grid:
        before_spectrum = early_spectrum
    else:
        before_spectrum = sfft.rfftn(before, workers=_balance())
    del early_spectrum
    fsc_before = fsc_of_spectra(
        reference.spectrum, before_spectrum, shape=reference.shape, voxel_A=p
    )
    del before
    timings["fsc"] = time.perf_counter() - start
    if fixed is not None:
        result = fixed
        del before_spectrum
    else:
        search_mask = None
        if use_masks and mask is not None:
            search_mask = _read_alongside(mask, moving, maps["map"], "mask", mask_voxel).data
        # without a mask, the search starts from the map's spectrum: handed over (freed once
        # cropped to the search's grids), not computed again
        handed = Owned(before_spectrum) if same_grid and search_mask is None else None
        del before_spectrum
        result = align_maps(
            reference.search,
            moving.data,
            moving_voxel_A=moving.voxel_size_A,
            params=params,
            moving_mask=search_mask,
            progress=progress,
            consume_masks=True,
            moving_spectrum=handed,
        )
        del search_mask, handed
    timings["align"] = time.perf_counter() - start - timings["fsc"]
    start = time.perf_counter()
    t = result.transform
    data = moving.data
    del moving
    out = on_reference
    if output_grid == "own":
        out = own_grid(
            reference.shape,
            reference.voxel_size_A,
            reference.header,
            data.shape,
            voxel_in,
            t,
            content_radius_A(data, voxel_in),
        )
    content = _content(data, voxel_in)
    files: dict[str, Path] = {}
    if out is not on_reference:  # the map on its own grid, and on the reference's for the FSC
        own = out.moved(data, voxel_in, t)
        files["map"] = write_map(
            out_files["map"], own, out.voxel_size_A, out.header, labels(index, "map", t)
        )
        kept = content.kept(_content(own, out.voxel_size_A, content.threshold))
        del own
        owned = Owned(data)
        del data
        aligned = on_reference.moved(owned, voxel_in, t)
    else:
        owned = Owned(data)
        del data
        aligned = out.moved(owned, voxel_in, t)
        kept = content.kept(_content(aligned, out.voxel_size_A, content.threshold))
    timings["resample_write"] = time.perf_counter() - start
    start = time.perf_counter()
    # the aligned map goes out to its file while its FSC is computed (the write waits on the
    # disk, the FFT on the cores); both are done before the difference map takes memory
    with ThreadPoolExecutor(1, thread_name_prefix="map-writer") as writer:
        written = None
        if "map" not in files:
            written = writer.submit(
                write_map,
                out_files["map"],
                aligned,
                out.voxel_size_A,
                out.header,
                labels(index, "map", t),
            )
        spectrum = sfft.rfftn(aligned, workers=_balance())
        fsc_after = fsc_of_spectra(reference.spectrum, spectrum, shape=reference.shape, voxel_A=p)
        aligned_slices = central_slices(aligned)
    if written is not None:
        files["map"] = written.result()  # the write's error, if any, is raised here
    del aligned, written
    difference_slices, difference_lowpass = None, None
    if diagnostics is not None:
        extent_A = min(reference.shape) * p
        difference_lowpass = difference_lowpass_A(diagnostics.lowpass_A, fsc_after, extent_A)
        difference = difference_from_spectra(
            reference.spectrum,
            spectrum,
            shape=reference.shape,
            voxel_A=p,
            lowpass_A=difference_lowpass,
            overwrite=True,
        )
        del spectrum
        files["difference_map"] = write_map(
            diagnostics.difference_map,
            difference,
            reference.voxel_size_A,
            reference.header,
            labels(index, "difference_map", t),
        )
        difference_slices = central_slices(difference)
        del difference
    else:
        del spectrum
    timings["fsc"] += time.perf_counter() - start
    start = time.perf_counter()
    for name, path in maps.items():
        if name == "map":
            continue
        other = read_map(path, voxel_size_A)
        problem = grid_problem(other, path, main_grid, maps["map"], name)
        if problem is not None:
            raise MapReadError(problem)
        owned = Owned(other.data)
        del other
        with sfft.set_workers(_balance()):
            # written slab by slab as it is computed: the bytes go out while the next slab is
            # interpolated, and the whole moved map is never in memory
            files[name] = write_map_slabs(
                out_files[name],
                out.shape,
                tuple(float(v) for v in out.voxel_size_A),  # type: ignore[arg-type]
                out.moved_slabs(owned, voxel_in, t),
                out.header.origin_A,
                out.header.nstart,
                labels(index, name, t),
            )
    if mask is not None:
        moving_mask = read_map(mask, mask_voxel, constant_ok=True)
        problem = grid_problem(moving_mask, mask, main_grid, maps["map"], "mask")
        values = mask_value_problem(moving_mask.data)
        if problem is not None or values is not None:
            raise MapReadError(problem or f"{mask}: {values}")
        moved_mask = out.moved_mask(moving_mask.data, moving_mask.voxel_size_A, t)
        del moving_mask
        files["mask"] = write_map(
            out_files["mask"], moved_mask, out.voxel_size_A, out.header, labels(index, "mask", t)
        )
    timings["resample_write"] += time.perf_counter() - start
    timings["total"] = time.perf_counter() - clock
    return VolumeOutcome(
        files,
        result,
        fsc_before,
        fsc_after,
        reference.slices,
        aligned_slices,
        difference_slices,
        grid_warnings(index, voxel_in, out, kept, output_grid),
        timings,
        difference_lowpass,
    )


@dataclass(frozen=True)
class Content:
    """A map's content: density above ``threshold`` and its mass (sum x voxel volume)."""

    threshold: float
    mass: float

    def kept(self, moved: Content) -> float:
        """The share of this content that ``moved`` still has (1 when there is none)."""
        return moved.mass / self.mass if self.mass > 0 else 1.0


def _content(
    volume: NDArray[np.float32], voxel_A: tuple[float, float, float], threshold: float | None = None
) -> Content:
    """The content of a map, from every 2nd voxel along each axis (1/8 of the memory of a
    mask; plenty for a share of the mass)."""
    sample = volume[::2, ::2, ::2]
    limit = CONTENT_FRACTION * float(volume.max()) if threshold is None else threshold
    mass = float(np.where(sample > limit, sample, 0.0).sum(dtype=np.float64))
    return Content(limit, mass * 8.0 * float(np.prod(voxel_A)))


def align_files(
    reference_path: Path,
    moving_path: Path,
    aligned_path: Path,
    params: AlignmentParams,
    reference_voxel_A: float | None = None,
    moving_voxel_A: float | None = None,
    mask_path: Path | None = None,
    moved_mask_path: Path | None = None,
    reference_mask_path: Path | None = None,
    early: EarlyReads | None = None,
) -> VolumeOutcome:
    """Align the map ``moving_path`` onto ``reference_path``; write it to ``aligned_path``.

    ``mask_path``: the moving map's mask (on its grid, values in [0, 1]): it restricts the
    search and is moved with the map to ``moved_mask_path``. ``reference_mask_path``: the
    reference's mask (on the reference's grid), restricting the search. Masks take the voxel
    size of their map (``moving_voxel_A``, ``reference_voxel_A`` override the headers).
    ``early``: both maps being read already (:class:`EarlyReads`, started with the same paths
    and voxel sizes while the numerical stack loaded; not with a reference mask)."""
    if mask_path is not None and moved_mask_path is None:
        raise ValueError("a mask to move needs the path of the moved mask")
    clock = time.perf_counter()
    reference = reference_for(
        reference_path,
        reference_voxel_A,
        reference_mask_path,
        reference_voxel_A if reference_mask_path is not None else None,
        early.reference() if early is not None else None,
    )
    read_s = time.perf_counter() - clock
    out_files = {"map": aligned_path}
    if moved_mask_path is not None:
        out_files["mask"] = moved_mask_path
    outcome = align_volume(
        reference,
        {"map": moving_path},
        out_files,
        params,
        mask=mask_path,
        voxel_size_A=moving_voxel_A,
        mask_voxel_A=moving_voxel_A,
        early=early,
    )
    outcome.timings_s["read"] += read_s
    outcome.timings_s["total"] += read_s
    return outcome
