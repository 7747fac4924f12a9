"""Local refinement of a rigid transform in 6 degrees of freedom by Gauss-Newton.

The score is the weighted normalised cross-correlation (NCC) between reference values ``r_i`` at
points ``y_i`` (Å, reference frame) and the moving map sampled at ``x_i = F^f R^T (y_i - t)``
(docs/conventions.md#the-transform). Maximising the NCC equals minimising ``Σ w (r - a m - b)²``
over the transform and a greyscale scale ``a`` and offset ``b``; Gauss-Newton with Levenberg
damping solves it with the exact gradient of the cubic B-spline, so it converges in a few
iterations to the optimum of the interpolated maps (sub-degree and sub-voxel).

Perturbations are applied on the left: ``R <- exp([ω]_x) R`` and ``t <- t + δt``. With
``u = y - t``, ``A = F^f R^T`` and ``h = A^T ∇m(x)`` the Jacobian rows are ``∂m/∂ω = h × u`` and
``∂m/∂δt = -h``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.geometry import (
    RigidTransform,
    box_centre,
    clamp_norm,
    clamp_rotation,
    small_rotation,
)
from align3d.engine.alignment.spline.prefilter import spline_coefficients
from align3d.engine.alignment.spline.sample import normal_sums


@dataclass(frozen=True)
class ReferencePoints:
    """The reference side of the score: points (Å, ``x, y, z``), values and weights."""

    points_A: NDArray[np.float64]
    values: NDArray[np.float64]
    weights: NDArray[np.float64]

    @classmethod
    def from_map(
        cls,
        volume: NDArray[np.floating],
        voxel_size_A: NDArray[np.float64],
        weights: NDArray[np.floating],
        stride: int = 1,
        min_weight: float = 1e-3,
    ) -> ReferencePoints:
        """Voxels of ``volume`` whose weight exceeds ``min_weight``, every ``stride``-th along
        each axis (a coarser lattice for fast early iterations); values standardised (weighted
        mean 0, weighted variance 1)."""
        keep = np.zeros(volume.shape, dtype=bool)
        keep[::stride, ::stride, ::stride] = True
        keep &= np.asarray(weights) > min_weight
        iz, iy, ix = np.nonzero(keep)
        idx = np.stack([ix, iy, iz], axis=1).astype(np.float64)
        points = (idx - box_centre(volume.shape)) * voxel_size_A
        w = np.asarray(weights)[keep].astype(np.float64)  # the kept voxels only, then cast
        v = np.asarray(volume)[keep].astype(np.float64)
        v = v - np.sum(w * v) / np.sum(w)
        v /= np.sqrt(np.sum(w * v * v) / np.sum(w)) or 1.0
        return cls(points, v, w)


@dataclass(frozen=True)
class MovingSpline:
    """The moving map as cubic B-spline coefficients on its own grid."""

    coeffs: NDArray[np.float64]
    voxel_size_A: NDArray[np.float64]

    @classmethod
    def from_map(cls, volume: NDArray[np.floating], voxel_size_A: NDArray) -> MovingSpline:
        return cls(spline_coefficients(volume), np.asarray(voxel_size_A, dtype=np.float64))

    def normal_sums(self, transform: RigidTransform, ref: ReferencePoints) -> NDArray[np.float64]:
        """``S = Σ_i w_i v_i v_iᵀ`` with ``v = (∂m/∂ω, ∂m/∂δt, m, 1, r)`` (a 9x9 matrix): all
        that one Gauss-Newton step and the NCC need, gathered in one compiled pass over the
        points, where ``m`` is the moving map sampled at ``x = F^f R^T (y - t)``."""
        back = transform.linear.T  # A = F^f R^T
        to_index = back / self.voxel_size_A[:, None]
        offset = box_centre(self.coeffs.shape) - to_index @ transform.shift_A
        grad_matrix = back.T / self.voxel_size_A[None, :]  # h = R F^f ∇_x m
        return normal_sums(
            self.coeffs,
            ref.points_A,
            ref.values,
            ref.weights,
            to_index,
            offset,
            grad_matrix,
            transform.shift_A,
        )


def ncc_from_sums(sums: NDArray[np.float64]) -> float:
    """Weighted NCC of the moving values ``m`` and reference values ``r`` from :meth:`normal_sums`."""
    sw, sm, sr = sums[7, 7], sums[6, 7], sums[8, 7]
    cov = sums[6, 8] - sm * sr / sw
    var_m = sums[6, 6] - sm * sm / sw
    var_r = sums[8, 8] - sr * sr / sw
    return float(cov / np.sqrt(var_m * var_r)) if var_m > 0 and var_r > 0 else 0.0


def _gauss_newton_system(sums: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Normal equations for ``(δω, δt, Δa, Δb)`` of ``r ≈ a (m + J δ) + b`` at the greyscale
    fit ``(a, b)`` of the current values: columns ``X = (a J, m, 1)``, residual ``r - a m - b``."""
    sw, sm, smm, sr, smr = sums[7, 7], sums[6, 7], sums[6, 6], sums[8, 7], sums[6, 8]
    det = smm * sw - sm * sm
    a = (smr * sw - sm * sr) / det if det > 0 else 0.0
    b = (sr - a * sm) / sw
    scale = np.array([a] * 6 + [1.0, 1.0])
    xtx = sums[:8, :8] * np.outer(scale, scale)
    xtr = sums[:8, 8] * scale  # Σ w X r
    xtm = sums[:8, 6] * scale  # Σ w X m
    xt1 = sums[:8, 7] * scale  # Σ w X
    return xtx, xtr - a * xtm - b * xt1


@dataclass(frozen=True)
class Refined:
    transform: RigidTransform
    score: float
    iterations: int


def refine(
    ref: ReferencePoints,
    moving: MovingSpline,
    start: RigidTransform,
    *,
    max_angle_deg: float = 180.0,
    max_shift_A: float = np.inf,
    max_iterations: int = 40,
    tolerance_deg: float = 1e-4,
    tolerance_A: float = 1e-4,
) -> Refined:
    """Refine ``start`` to the nearest NCC maximum, keeping ``angle(R) <= max_angle_deg`` and
    ``|t| <= max_shift_A`` (steps that leave the bounds are projected back onto them); the
    bounds and tolerances (degrees, Å) by keyword."""
    current = start
    sums = moving.normal_sums(current, ref)
    score = ncc_from_sums(sums)
    damping = 1e-4
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        xtx, xte = _gauss_newton_system(sums)
        improved = False
        for attempt in range(8):
            lhs = xtx + damping * np.diag(np.concatenate([np.diag(xtx)[:6], np.zeros(2)]))
            step = np.linalg.lstsq(lhs, xte, rcond=None)[0]
            if attempt == 0 and _within(step, tolerance_deg, tolerance_A):
                # the optimum is within the tolerance of here: stop without sampling the map
                # once more to score that last step (a full-lattice pass)
                return Refined(current, score, iteration - 1)
            rot = clamp_rotation(small_rotation(step[:3]) @ current.rotation, max_angle_deg)
            shift = clamp_norm(current.shift_A + step[3:6], max_shift_A)
            trial = RigidTransform(rot, shift, start.flip)
            trial_sums = moving.normal_sums(trial, ref)
            trial_score = ncc_from_sums(trial_sums)
            if trial_score >= score - 1e-12:
                improved = True
                current, sums, score = trial, trial_sums, trial_score
                damping = max(damping / 4, 1e-7)
                break
            damping *= 8
        if not improved or _within(step, tolerance_deg, tolerance_A):
            break
    return Refined(current, score, iteration)


def _within(step: NDArray[np.float64], tolerance_deg: float, tolerance_A: float) -> bool:
    """Whether a Gauss-Newton step ``(δω [rad], δt [Å], ...)`` turns by less than
    ``tolerance_deg`` and moves by less than ``tolerance_A``."""
    return bool(
        np.degrees(np.linalg.norm(step[:3])) < tolerance_deg
        and np.linalg.norm(step[3:6]) < tolerance_A
    )
