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
from align3d.engine.alignment.jit import threads
from align3d.engine.alignment.masks import mask_value_problem
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.preprocess import SourceMap, on_cube, working_map
from align3d.engine.alignment.refine import MovingSpline, ReferencePoints, refine
from align3d.engine.alignment.resample import Owned
from align3d.engine.alignment.rotation_function import ROT_Z_PI, amplitude_rotation_function
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


def _checked_mask(name: str, mask: ArrayLike | None, volume: NDArray) -> NDArray | None:
    if mask is None:
        return None
    m = np.asarray(mask, dtype=np.float32)
    if m.shape != volume.shape:
        raise InvalidMapError(f"{name} has shape {m.shape} but its map has shape {volume.shape}")
    problem = mask_value_problem(m)
    if problem is not None:
        raise InvalidMapError(f"{name}: {problem}")
    if float(m.min()) < 0.0 or float(m.max()) > 1.0:
        m = np.clip(m, 0.0, 1.0)  # rounding within the tolerance of the rule
    return m


def align_maps(
    reference: ArrayLike | SourceMap,
    reference_voxel_A: float | ArrayLike,
    moving: ArrayLike,
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
        without transforming it each time; its mask is then part of it
    reference_voxel_A, moving_voxel_A : voxel sizes in Å (scalar or ``(x, y, z)``)
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
    reference: ArrayLike, voxel_A: float | ArrayLike, mask: ArrayLike | None = None
) -> SourceMap:
    """The reference (masked, transformed) once, for :func:`align_maps` of many maps."""
    ref = _check_volume("reference map", reference)
    return SourceMap.from_map(
        ref, voxel_size_xyz(voxel_A), _checked_mask("reference mask", mask, ref)
    )


def _align(
    reference: ArrayLike | SourceMap,
    reference_voxel_A: float | ArrayLike,
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
        ref_src = reference
    else:
        ref_src = prepare_reference(reference, reference_voxel_A, reference_mask)
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
    moving_mask = _checked_mask("moving mask", moving_mask, mov)
    mov_src = SourceMap.from_map(
        mov, p_mov, moving_mask, consume_mask=consume_masks, spectrum=moving_spectrum
    )

    # --- search grid: both maps on one cube
    search_lowpass = max(lowpass_A, 2.0 * search_voxel)
    ref_work = working_map(ref_src, search_lowpass, search_voxel, edge)
    mov_work = working_map(mov_src, search_lowpass, search_voxel, edge)
    box = int(np.ceil(extent / search_voxel))
    ref_cube, ref_cube_w = on_cube(ref_work, box, search_voxel)
    mov_cube, _ = on_cube(mov_work, box, search_voxel)
    timings["prepare"] = time.perf_counter() - clock
    progress("prepare")

    group = point_group(params.symmetry)
    hypotheses = _rotation_hypotheses(ref_cube, mov_cube, search_voxel, lowpass_A, params, group)
    timings["rotation_search"] = time.perf_counter() - clock - timings["prepare"]
    progress("rotation search")

    scored = sorted(
        shift_candidates(ref_cube, mov_cube, search_voxel, hypotheses, params.max_shift_A),
        key=lambda c: -c.score,
    )
    timings["translation_search"] = time.perf_counter() - clock - sum(timings.values())
    progress("translation search")

    # --- refine the best few on the search grid (every other voxel: a quick, coarse pass)
    ref_points = ReferencePoints.from_map(ref_cube, np.full(3, search_voxel), ref_cube_w, stride=2)
    mov_spline = MovingSpline.from_map(mov_cube, np.full(3, search_voxel))
    refined: list[Candidate] = []
    for cand in scored[:COARSE_REFINED]:
        out = refine(
            ref_points,
            mov_spline,
            cand.transform,
            params.max_search_angle_deg,
            params.max_shift_A,
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
    ref_fine = working_map(ref_src, lowpass_A, refine_voxel, edge, taper=False)
    mov_fine = working_map(mov_src, lowpass_A, refine_voxel, edge, taper=False)
    fine_spline = MovingSpline.from_map(mov_fine.values, mov_fine.voxel_size_A)
    lattices = [
        ReferencePoints.from_map(ref_fine.values, ref_fine.voxel_size_A, ref_fine.weights, stride)
        for stride in (2, 1)
    ]

    def polish(start: RigidTransform, full: bool = True) -> Candidate:
        quick = refine(
            lattices[0],
            fine_spline,
            start,
            params.max_search_angle_deg,
            params.max_shift_A,
            max_iterations=40 if full else 6,
            tolerance_deg=0.005,
            tolerance_A=0.005 * refine_voxel,
        )
        final = refine(
            lattices[1],
            fine_spline,
            quick.transform,
            params.max_search_angle_deg,
            params.max_shift_A,
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
    )


def _amplitudes(cube: NDArray[np.float32]) -> NDArray[np.float64]:
    """``|rfftn|`` of a cube zero-padded to twice its size (finer Fourier sampling), as it
    comes: a shift of the map changes phases only, so neither centring matters."""
    n = cube.shape[0]
    return np.abs(sfft.rfftn(cube, s=(2 * n,) * 3)).astype(np.float64)


def _rotation_hypotheses(
    ref_cube: NDArray,
    mov_cube: NDArray,
    voxel_A: float,
    lowpass_A: float,
    params: AlignmentParams,
    group: PointGroup,
) -> list[RigidTransform]:
    """Candidate (rotation, hand) pairs from the amplitude rotation function. With symmetry,
    each peak stands for its mate closest to the identity, and the maximum search angle applies
    to that mate (the search is modulo the group)."""
    n = ref_cube.shape[0]
    pad = 2 * n
    max_radius = min(pad * voxel_A / lowpass_A, pad // 2 - 2)
    radii = np.arange(2.0, max_radius + 1e-9, 1.0)
    rf = amplitude_rotation_function(
        _amplitudes(ref_cube), _amplitudes(mov_cube), radii, half_spectrum=True
    )
    limit = params.max_search_angle_deg
    hands = [False, True] if params.check_both_chiralities else [False]
    symmetric = group.order > 1
    out: list[RigidTransform] = []
    for flip in hands:
        post = ROT_Z_PI if flip else np.eye(3)
        allowed = None
        if limit < 180.0 and not symmetric:
            allowed = rf.angle_within(limit, post if flip else None)
        for q, _ in rf.peaks(params.rotation_candidates, 10.0, allowed):
            hypothesis = RigidTransform(q @ post, np.zeros(3), flip)
            if symmetric:
                hypothesis = closest_mate(hypothesis, group).transform
                if hypothesis.angle_deg > limit + 1e-9:
                    continue
            out.append(hypothesis)
        # the unrotated map is always a candidate: it is the only one when the search angle
        # is smaller than the grid spacing
        out.append(RigidTransform(np.eye(3), np.zeros(3), flip))
    return out
