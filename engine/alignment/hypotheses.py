"""Rotation hypotheses for the search: the peaks of the amplitude rotation function
(:mod:`align3d.engine.alignment.rotation_function`) within the maximum search angle, for each
hand searched, and the best peaks beyond that angle (to tell whether the answer may lie there).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.rotation_function import ROT_Z_PI, amplitude_rotation_function
from align3d.engine.alignment.symmetry import PointGroup, closest_mate


def amplitudes(cube: NDArray[np.float32]) -> NDArray[np.float64]:
    """``|rfftn|`` of a cube zero-padded to twice its size (finer Fourier sampling), as it
    comes: a shift of the map changes phases only, so neither centring matters."""
    n = cube.shape[0]
    return np.abs(sfft.rfftn(cube, s=(2 * n,) * 3)).astype(np.float64)


def rotation_hypotheses(
    ref_cube: NDArray,
    mov_cube: NDArray,
    voxel_A: float,
    lowpass_A: float,
    params: AlignmentParams,
    group: PointGroup,
) -> tuple[list[RigidTransform], list[RigidTransform]]:
    """Candidate (rotation, hand) pairs from the amplitude rotation function, within the
    maximum search angle and (with an angle below 180°) the best peaks beyond it, scored only to
    tell whether the answer may lie there. With symmetry, each peak stands for its mate closest
    to the identity, and the maximum search angle applies to that mate (the search is modulo the
    group)."""
    n = ref_cube.shape[0]
    pad = 2 * n
    max_radius = min(pad * voxel_A / lowpass_A, pad // 2 - 2)
    radii = np.arange(2.0, max_radius + 1e-9, 1.0)
    rf = amplitude_rotation_function(
        amplitudes(ref_cube), amplitudes(mov_cube), radii, half_spectrum=True
    )
    limit = params.max_search_angle_deg
    hands = [False, True] if params.check_both_chiralities else [False]
    symmetric = group.order > 1
    out: list[RigidTransform] = []
    beyond: list[RigidTransform] = []
    for flip in hands:
        post = ROT_Z_PI if flip else np.eye(3)
        allowed = None
        if limit < 180.0 and not symmetric:
            allowed = rf.angle_within(limit, post if flip else None)
            # the function's own peaks that lie beyond the limit (not the edge of the limit,
            # where the slope of a peak inside it would stand as a maximum)
            for q, _ in rf.peaks(params.rotation_candidates, 10.0):
                outside = RigidTransform(q @ post, np.zeros(3), flip)
                if outside.angle_deg > limit + 1e-9:
                    beyond.append(outside)
        for q, _ in rf.peaks(params.rotation_candidates, 10.0, allowed):
            hypothesis = RigidTransform(q @ post, np.zeros(3), flip)
            if symmetric:
                hypothesis = closest_mate(hypothesis, group).transform
                if hypothesis.angle_deg > limit + 1e-9:
                    beyond.append(hypothesis)
                    continue
            out.append(hypothesis)
        # the unrotated map is always a candidate: it is the only one when the search angle
        # is smaller than the grid spacing
        out.append(RigidTransform(np.eye(3), np.zeros(3), flip))
    return out, beyond
