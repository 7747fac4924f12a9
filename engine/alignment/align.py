"""Align one map onto a reference: global search, hand check, local refinement.

Pipeline (all arrays in memory; nothing here reads files):

1. Both maps are masked (given masks, or the sphere inscribed in each box), Fourier-cropped to a
   coarse *search* grid and low-passed (:mod:`align3d.engine.alignment.preprocess`).
2. The rotation function on Fourier amplitudes ranks rotations for both hands at once
   (:mod:`align3d.engine.alignment.rotation_function`), honouring the maximum search angle.
3. Each candidate rotation and hand gets its best shift within the maximum shift by FFT
   cross-correlation (:mod:`align3d.engine.alignment.translation`).
4. The best candidates are refined in 6 DOF by Gauss-Newton on the search grid, then the winner
   and the best clearly different alternative again on a finer grid at the low-pass resolution
   (:mod:`align3d.engine.alignment.refine`).

The score is the normalised cross-correlation of the masked, low-passed maps, so it does not
depend on the greyscale scale or offset of either map.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike, NDArray

from align3d.engine.alignment.confidence import (
    ChanceLevel,
    Concern,
    SymmetryCheck,
    chance_level,
    concerns,
    is_ambiguous,
    symmetry_check,
)
from align3d.engine.alignment.errors import InvalidMapError
from align3d.engine.alignment.geometry import RigidTransform, voxel_size_xyz
from align3d.engine.alignment.hypotheses import rotation_hypotheses
from align3d.engine.alignment.jit import threads
from align3d.engine.alignment.masks import checked_mask
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.preprocess import SourceMap, on_cube, working_map
from align3d.engine.alignment.refine import MovingSpline, ReferencePoints, refine
from align3d.engine.alignment.resample import Owned
from align3d.engine.alignment.symmetry import PointGroup, closest_mate, mates, point_group
from align3d.engine.alignment.translation import Candidate, shift_candidates

SEARCH_BOX_MIN, SEARCH_BOX_MAX = 40, 64
"""Bounds of the search grid (voxels per side) where the low-pass alone leaves fewer or more."""
REFINE_BOX_MIN, REFINE_BOX_MAX = 48, 96
"""Bounds of the final refinement grid (voxels per side)."""
COARSE_REFINED = 3
"""Best-scoring (rotation, hand, shift) candidates refined on the search grid."""


@dataclass(frozen=True)
class AlignmentResult:
    """Outcome of :func:`align_maps`.

    ``transform`` maps the moving map onto the reference (docs/conventions.md#the-transform);
    ``score`` is its NCC; ``alternative`` the best clearly different transform found (other hand,
    or a rotation more than 5° or a shift more than two search voxels away), ``alternative_score``
    its NCC on the same grid, or ``None`` when the search produced no other candidate.
    """

    transform: RigidTransform
    score: float
    alternative: RigidTransform | None
    alternative_score: float | None
    search_voxel_A: float
    refine_voxel_A: float
    chance: ChanceLevel | None = None
    symmetry: SymmetryCheck | None = None
    """How the symmetry mates of the solution score (symmetry named only)."""
    preferred_smaller_rotation: bool = False
    """Two clearly different solutions scored alike and the smaller rotation was chosen."""
    box_extent_A: float = float("inf")
    """The larger of the two maps' box extents (Å)."""
    params: AlignmentParams = field(default_factory=AlignmentParams)
    timings_s: dict[str, float] = field(default_factory=dict)
    beyond_limit: Candidate | None = None
    """With a ``max_search_angle_deg`` below 180: the best of the rotation function's peaks
    beyond the limit, its best shift and score on the search grid (compared with the solution's
    ``chance.score``); ``None`` for a search of every rotation."""
    moving_search_map: NDArray[np.float32] | None = field(default=None, compare=False, repr=False)
    """The moving map as the search saw it (masked, low-passed, standardised; a cube of
    ``search_voxel_A`` Å voxels about the moving map's own box centre, at most 64 across): a
    small print of the volume, to compare volumes with each other after the job."""

    def concerns(self) -> list[Concern]:
        """What may be wrong with this alignment (:mod:`align3d.engine.alignment.confidence`)."""
        return concerns(self, self.params)


def _clearly_different(
    a: RigidTransform, b: RigidTransform, shift_tol_A: float, group: PointGroup
) -> bool:
    """Whether ``a`` and ``b`` are different solutions: another hand, or, for the mate of
    ``a`` nearest ``b``, a rotation more than 5° or a shift more than ``shift_tol_A`` away."""
    if a.flip != b.flip:
        return True
    nearest = min(mates(a, group), key=lambda m: m.transform.rotation_error_deg(b)).transform
    return nearest.rotation_error_deg(b) > 5.0 or nearest.shift_error_A(b) > shift_tol_A


def _check_volume(name: str, volume: NDArray) -> NDArray[np.float32]:
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3 or min(vol.shape) < 4:
        raise InvalidMapError(
            f"{name} must be a 3-D map at least 4 voxels on each side, got {vol.shape}"
        )
    low, high = float(vol.min()), float(vol.max())  # a NaN or an infinity shows in one of them
    if not (np.isfinite(low) and np.isfinite(high)):
        raise InvalidMapError(f"{name} contains NaN or infinite values")
    if high == low:
        raise InvalidMapError(f"{name} is constant: nothing to align")
    return vol


def align_maps(
    reference: ArrayLike | SourceMap,
    moving: ArrayLike,
    *,
    reference_voxel_A: float | ArrayLike | None = None,
    moving_voxel_A: float | ArrayLike,
    params: AlignmentParams | None = None,
    reference_mask: ArrayLike | None = None,
    moving_mask: ArrayLike | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
    consume_masks: bool = False,
    moving_spectrum: Owned | None = None,
) -> AlignmentResult:
    """Find the rigid transform (and hand) that puts ``moving`` onto ``reference``.

    Parameters
    ----------
    reference, moving : 3-D arrays ``[z, y, x]``; any box (odd, even, non-cubic). The reference
        may also be given prepared (:func:`prepare_reference`), to align many maps onto it
        without transforming it each time; its mask and voxel size are then part of it
    reference_voxel_A, moving_voxel_A : voxel sizes in Å (scalar or ``(x, y, z)``), by keyword
        like every option; ``reference_voxel_A`` is required unless the reference is prepared
    params : search limits and low-pass resolution (:class:`AlignmentParams`)
    reference_mask, moving_mask : optional soft masks in [0, 1] on each map's own grid
    workers : threads for the FFTs (default: the process's thread count, which the compiled
        kernels use too; a worker process of a parallel job sets it to its share of the cores)
    progress : called with the name of each search stage as it completes (5 stages)
    consume_masks : the moving mask's memory may be reused (its values are lost): a large map
        then needs one full-size array less
    moving_spectrum : ``rfftn(moving)`` handed over, where the caller has it (without a mask)

    Returns
    -------
    AlignmentResult
        ``transform`` maps a point ``x`` of ``moving`` (Å, about its box centre) to
        ``y = R F^flip x + t`` in the reference frame.
    """
    with sfft.set_workers(workers or threads()):
        return _align(
            reference,
            reference_voxel_A,
            moving,
            moving_voxel_A,
            params,
            reference_mask,
            moving_mask,
            progress or (lambda stage: None),
            consume_masks,
            moving_spectrum,
        )


def prepare_reference(
    reference: ArrayLike, *, voxel_A: float | ArrayLike, mask: ArrayLike | None = None
) -> SourceMap:
    """The reference (masked, transformed) once, for :func:`align_maps` of many maps;
    ``voxel_A`` its voxel size in Å (scalar or ``(x, y, z)``), ``mask`` a soft mask in [0, 1]."""
    ref = _check_volume("reference map", reference)
    return SourceMap.from_map(
        ref, voxel_size_xyz(voxel_A), checked_mask("reference mask", mask, ref.shape)
    )


def _align(
    reference: ArrayLike | SourceMap,
    reference_voxel_A: float | ArrayLike | None,
    moving: ArrayLike,
    moving_voxel_A: float | ArrayLike,
    params: AlignmentParams | None,
    reference_mask: ArrayLike | None,
    moving_mask: ArrayLike | None,
    progress: Callable[[str], None],
    consume_masks: bool = False,
    moving_spectrum: Owned | None = None,
) -> AlignmentResult:
    params = params or AlignmentParams()
    clock = time.perf_counter()
    timings: dict[str, float] = {}
    if isinstance(reference, SourceMap):
        if reference_voxel_A is not None:
            raise TypeError("a prepared reference carries its voxel size: no reference_voxel_A")
        ref_src = reference
    elif reference_voxel_A is None:
        raise TypeError("align_maps needs reference_voxel_A (Å) unless the reference is prepared")
    else:
        ref_src = prepare_reference(reference, voxel_A=reference_voxel_A, mask=reference_mask)
    mov = _check_volume("moving map", moving)
    p_ref = ref_src.voxel_size_A
    p_mov = voxel_size_xyz(moving_voxel_A)
    lowpass_A = params.lowpass_resolution_A
    extent = max(
        float(np.max(np.array(ref_src.shape[::-1]) * p_ref)),
        float(np.max(np.array(mov.shape[::-1]) * p_mov)),
    )
    coarsest = float(max(p_ref.max(), p_mov.max()))
    # working grids: at the low-pass resolution, but at least SEARCH_BOX_MIN (REFINE_BOX_MIN)
    # voxels across so that small maps keep enough samples, and at most the *_MAX
    search_voxel = max(
        coarsest, min(lowpass_A / 2.0, extent / SEARCH_BOX_MIN), extent / SEARCH_BOX_MAX
    )
    refine_voxel = max(
        coarsest, min(lowpass_A / 3.0, extent / REFINE_BOX_MIN), extent / REFINE_BOX_MAX
    )
    lowpass_A = max(lowpass_A, 2.0 * coarsest)  # cannot filter beyond the coarser Nyquist
    edge = 2.0 * search_voxel
    moving_mask = checked_mask("moving mask", moving_mask, mov.shape)
    mov_src = SourceMap.from_map(
        mov, p_mov, moving_mask, consume_mask=consume_masks, spectrum=moving_spectrum
    )

    # --- search grid: both maps on one cube
    search_lowpass = max(lowpass_A, 2.0 * search_voxel)
    ref_work = working_map(ref_src, lowpass_A=search_lowpass, voxel_A=search_voxel, edge_A=edge)
    mov_work = working_map(mov_src, lowpass_A=search_lowpass, voxel_A=search_voxel, edge_A=edge)
    box = int(np.ceil(extent / search_voxel))
    ref_cube, ref_cube_w = on_cube(ref_work, box, search_voxel)
    mov_cube, _ = on_cube(mov_work, box, search_voxel)
    timings["prepare"] = time.perf_counter() - clock
    progress("prepare")

    group = point_group(params.symmetry)
    hypotheses, beyond = rotation_hypotheses(
        ref_cube, mov_cube, search_voxel, lowpass_A, params, group
    )
    timings["rotation_search"] = time.perf_counter() - clock - timings["prepare"]
    progress("rotation search")

    scored = sorted(
        shift_candidates(ref_cube, mov_cube, search_voxel, hypotheses, params.max_shift_A),
        key=lambda c: -c.score,
    )
    timings["translation_search"] = time.perf_counter() - clock - sum(timings.values())
    progress("translation search")

    # --- refine the best few on the search grid (every other voxel: a quick, coarse pass);
    # every refinement keeps to the search limits
    bounded = partial(
        refine, max_angle_deg=params.max_search_angle_deg, max_shift_A=params.max_shift_A
    )
    ref_points = ReferencePoints.from_map(ref_cube, np.full(3, search_voxel), ref_cube_w, stride=2)
    mov_spline = MovingSpline.from_map(mov_cube, np.full(3, search_voxel))
    refined: list[Candidate] = []
    for cand in scored[:COARSE_REFINED]:
        out = bounded(
            ref_points,
            mov_spline,
            cand.transform,
            max_iterations=10,
            tolerance_deg=0.05,
            tolerance_A=0.02 * search_voxel,
        )
        refined.append(Candidate(out.transform, out.score))
    refined.sort(key=lambda c: -c.score)
    best = refined[0]
    shift_tol = 2.0 * search_voxel
    alternatives = [
        c
        for c in refined[1:] + scored[COARSE_REFINED:]
        if _clearly_different(c.transform, best.transform, shift_tol, group)
    ]
    timings["coarse_refinement"] = time.perf_counter() - clock - sum(timings.values())
    progress("coarse refinement")

    # --- final refinement at the requested low-pass on a finer grid: converge on a lattice of
    # every other voxel, then polish with all voxels
    # no taper here: the score is taken over the reference's mask, and a moving map cut by a
    # sphere that does not move with it would bias the optimum
    ref_fine = working_map(
        ref_src, lowpass_A=lowpass_A, voxel_A=refine_voxel, edge_A=edge, taper=False
    )
    mov_fine = working_map(
        mov_src, lowpass_A=lowpass_A, voxel_A=refine_voxel, edge_A=edge, taper=False
    )
    fine_spline = MovingSpline.from_map(mov_fine.values, mov_fine.voxel_size_A)
    lattices = [
        ReferencePoints.from_map(ref_fine.values, ref_fine.voxel_size_A, ref_fine.weights, stride)
        for stride in (2, 1)
    ]

    def polish(start: RigidTransform, full: bool = True) -> Candidate:
        quick = bounded(
            lattices[0],
            fine_spline,
            start,
            max_iterations=40 if full else 6,
            tolerance_deg=0.005,
            tolerance_A=0.005 * refine_voxel,
        )
        final = bounded(
            lattices[1],
            fine_spline,
            quick.transform,
            max_iterations=5 if full else 0,
        )
        return Candidate(final.transform, final.score)

    final = polish(best.transform)
    # the alternative only needs a comparable score: a shorter polish
    alternative = polish(alternatives[0].transform, full=False) if alternatives else None
    smaller = False
    if (
        alternative is not None
        and is_ambiguous(final.score, alternative.score)
        and alternative.transform.flip == final.transform.flip
        and closest_mate(alternative.transform, group).angle_deg
        < closest_mate(final.transform, group).angle_deg
    ):
        # equally good and clearly different (pseudo-symmetry, or a symmetry not named):
        # the smaller change of the volume and of its particles' poses wins
        final, alternative, smaller = alternative, final, True
    if group.order > 1:  # of the symmetry mates, the one closest to the identity
        final = Candidate(closest_mate(final.transform, group).transform, final.score)
    timings["fine_refinement"] = time.perf_counter() - clock - sum(timings.values())
    progress("fine refinement")
    chance = chance_level(ref_cube, mov_cube, search_voxel, final.transform, params)
    beyond_limit = (  # none to score for a search of every rotation
        max(
            shift_candidates(ref_cube, mov_cube, search_voxel, beyond, params.max_shift_A),
            key=lambda c: c.score,
        )
        if beyond
        else None
    )
    symmetry = (
        symmetry_check(ref_cube, mov_cube, search_voxel, final.transform, group, params, chance)
        if group.order > 1
        else None
    )
    timings["confidence"] = time.perf_counter() - clock - sum(timings.values())
    timings["total"] = time.perf_counter() - clock
    return AlignmentResult(
        transform=final.transform,
        score=final.score,
        alternative=alternative.transform if alternative else None,
        alternative_score=alternative.score if alternative else None,
        search_voxel_A=search_voxel,
        refine_voxel_A=float(np.max(ref_fine.voxel_size_A)),
        chance=chance,
        symmetry=symmetry,
        preferred_smaller_rotation=smaller,
        box_extent_A=extent,
        params=params,
        timings_s=timings,
        moving_search_map=mov_cube,
        beyond_limit=beyond_limit,
    )
