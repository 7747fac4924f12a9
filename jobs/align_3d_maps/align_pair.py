"""The ``align`` command's files: one moving map (and its mask) onto one reference."""

from __future__ import annotations

import time
from pathlib import Path

from align3d.engine.alignment.params import AlignmentParams
from align3d.jobs.align_3d_maps.difference_map import Diagnostics
from align3d.jobs.align_3d_maps.early_reads import EarlyReads
from align3d.jobs.align_3d_maps.outcome import VolumeOutcome
from align3d.jobs.align_3d_maps.params import OutputGridChoice
from align3d.jobs.align_3d_maps.reference import reference_for
from align3d.jobs.align_3d_maps.volume import align_volume
from align3d.slots.payloads import MapRole


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
    output_grid: OutputGridChoice = "reference",
    diagnostics: Diagnostics | None = None,
) -> VolumeOutcome:
    """Align the map ``moving_path`` onto ``reference_path``; write it to ``aligned_path``.

    ``mask_path``: the moving map's mask (on its grid, values in [0, 1]): it restricts the
    search and is moved with the map to ``moved_mask_path``. ``reference_mask_path``: the
    reference's mask (on the reference's grid), restricting the search. Masks take the voxel
    size of their map (``moving_voxel_A``, ``reference_voxel_A`` override the headers).
    ``early``: both maps being read already (:class:`EarlyReads`, started with the same paths
    and voxel sizes while the numerical stack loaded; not with a reference mask).
    ``output_grid``, ``diagnostics``: as for :func:`align_volume`."""
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
    out_files = {MapRole.MAP: aligned_path}
    if moved_mask_path is not None:
        out_files[MapRole.MASK] = moved_mask_path
    outcome = align_volume(
        reference,
        {MapRole.MAP: moving_path},
        out_files,
        params,
        mask=mask_path,
        voxel_size_A=moving_voxel_A,
        mask_voxel_A=moving_voxel_A,
        early=early,
        output_grid=output_grid,
        diagnostics=diagnostics,
    )
    outcome.timings_s["read"] += read_s
    outcome.timings_s["total"] += read_s
    return outcome
