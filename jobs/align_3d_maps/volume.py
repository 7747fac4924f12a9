"""Align one volume (files) onto a prepared reference: the per-volume unit of work.

Read the volume's map (once: its data checks ride on the read), find the transform
(:func:`align3d.engine.alignment.align.align_maps`), then move every map of the volume (map, sharpened
map, half maps) and its mask with that one transform onto the output grid (:mod:`.grids`),
one map at a time so that memory holds one map and its output. The FSC with the reference
(before and after) and the difference map come from spectra made once; the figures from
central slices kept in memory: nothing is read back.

The volume's other files are read by :mod:`.volume_reads`, moved by :mod:`.volume_moves`; the
difference map is :mod:`.difference_map`'s; what comes back is a :class:`.outcome.VolumeOutcome`.
The ``align`` command's pair of files goes through :mod:`.align_pair`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import scipy.fft as sfft

from align3d.engine.alignment.align import AlignmentResult, align_maps
from align3d.engine.alignment.fsc import fsc_of_spectra
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.resample import Owned
from align3d.jobs.align_3d_maps.difference_map import Diagnostics, write_difference_map
from align3d.jobs.align_3d_maps.early_reads import EarlyReads, on_grid
from align3d.jobs.align_3d_maps.grids import content_radius_A, grid_warnings, own_grid
from align3d.jobs.align_3d_maps.outcome import VolumeOutcome
from align3d.jobs.align_3d_maps.params import OutputGridChoice
from align3d.jobs.align_3d_maps.provenance import map_labels as labels
from align3d.jobs.align_3d_maps.reference import PreparedReference
from align3d.jobs.align_3d_maps.slices import central_slices
from align3d.jobs.align_3d_maps.volume_moves import (
    balance,
    content_of,
    reference_grid,
    write_moved_slabs,
)
from align3d.jobs.align_3d_maps.volume_reads import read_alongside
from align3d.slots.mrc import read_grid, read_map, write_map
from align3d.slots.mrc_stream import read_ahead
from align3d.slots.payloads import MapRole


def align_volume(
    reference: PreparedReference,
    maps: dict[MapRole, Path],
    out_files: dict[MapRole, Path],
    params: AlignmentParams,
    mask: Path | None = None,
    voxel_size_A: float | None = None,
    use_masks: bool = True,
    progress: Callable[[str], None] | None = None,
    mask_voxel_A: float | None = None,
    fixed: AlignmentResult | None = None,
    output_grid: OutputGridChoice = "reference",
    diagnostics: Diagnostics | None = None,
    index: int = 1,
    early: EarlyReads | None = None,
) -> VolumeOutcome:
    """Align the volume whose files are ``maps`` (``map`` required) onto ``reference``.

    ``mask`` (on the volume's grid) moves with the volume; with ``use_masks`` it also restricts
    the alignment. Each moved map (and ``mask``) is written to ``out_files[role]``. ``fixed``:
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
        moving = read_map(maps[MapRole.MAP], voxel_size_A)
    else:
        read = early.moving()
        moving, early_spectrum = read.map, read.spectrum
        del read
    main_grid = read_grid(maps[MapRole.MAP], voxel_size_A)
    # the volume's other files are read later: let the disk bring them in during the search
    read_ahead(
        [path for role, path in maps.items() if role != MapRole.MAP] + ([mask] if mask else [])
    )
    mask_voxel = mask_voxel_A or voxel_size_A
    timings = {"read": time.perf_counter() - clock}
    start = time.perf_counter()
    voxel_in = moving.voxel_size_A
    on_reference = reference_grid(reference)
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
        before_spectrum = sfft.rfftn(before, workers=balance())
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
            search_mask = read_alongside(
                mask, main_grid, maps[MapRole.MAP], MapRole.MASK, mask_voxel
            ).data
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
    content = content_of(data, voxel_in)
    files: dict[MapRole, Path] = {}
    if out is not on_reference:  # the map on its own grid, and on the reference's for the FSC
        own = out.moved(data, voxel_in, t)
        files[MapRole.MAP] = write_map(
            out_files[MapRole.MAP], own, out.voxel_size_A, out.header, labels(index, MapRole.MAP, t)
        )
        kept = content.kept(content_of(own, out.voxel_size_A, content.threshold))
        del own
        owned = Owned(data)
        del data
        aligned = on_reference.moved(owned, voxel_in, t)
    else:
        owned = Owned(data)
        del data
        aligned = out.moved(owned, voxel_in, t)
        kept = content.kept(content_of(aligned, out.voxel_size_A, content.threshold))
    timings["resample_write"] = time.perf_counter() - start
    start = time.perf_counter()
    # the aligned map goes out to its file while its FSC is computed (the write waits on the
    # disk, the FFT on the cores); both are done before the difference map takes memory
    with ThreadPoolExecutor(1, thread_name_prefix="map-writer") as writer:
        written = None
        if MapRole.MAP not in files:
            written = writer.submit(
                write_map,
                out_files[MapRole.MAP],
                aligned,
                out.voxel_size_A,
                out.header,
                labels(index, MapRole.MAP, t),
            )
        spectrum = sfft.rfftn(aligned, workers=balance())
        fsc_after = fsc_of_spectra(reference.spectrum, spectrum, shape=reference.shape, voxel_A=p)
        aligned_slices = central_slices(aligned)
    if written is not None:
        files[MapRole.MAP] = written.result()  # the write's error, if any, is raised here
    del aligned, written
    difference_slices, difference_lowpass = None, None
    if diagnostics is not None:
        handed_spectrum = Owned(spectrum)
        del spectrum
        difference = write_difference_map(
            diagnostics, reference, handed_spectrum, fsc_after, index, t
        )
        files[MapRole.DIFFERENCE_MAP] = difference.path
        difference_slices, difference_lowpass = difference.slices, difference.lowpass_A
    else:
        del spectrum
    timings["fsc"] += time.perf_counter() - start
    start = time.perf_counter()
    for role, path in maps.items():
        if role == MapRole.MAP:
            continue
        other = read_alongside(path, main_grid, maps[MapRole.MAP], role, voxel_size_A)
        owned = Owned(other.data)
        del other
        files[role] = write_moved_slabs(
            owned, voxel_in, t, out, out_files[role], labels(index, role, t)
        )
        del owned
    if mask is not None:
        moving_mask = read_alongside(mask, main_grid, maps[MapRole.MAP], MapRole.MASK, mask_voxel)
        moved_mask = out.moved_mask(moving_mask.data, moving_mask.voxel_size_A, t)
        del moving_mask
        files[MapRole.MASK] = write_map(
            out_files[MapRole.MASK],
            moved_mask,
            out.voxel_size_A,
            out.header,
            labels(index, MapRole.MASK, t),
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
