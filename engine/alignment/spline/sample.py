"""Spline values (and gradients) at scattered points, and the fused Gauss-Newton normal sums of
the refinement (one compiled pass over the reference points)."""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from engine.alignment.spline.basis import _spline_at


@numba.njit(cache=True, parallel=True, nogil=True)
def _sample_cubic(
    coeffs: NDArray,
    points: NDArray,
    matrix: NDArray,
    offset: NDArray,
    grad_matrix: NDArray,
    want_gradient: bool,
    values: NDArray,
    gradients: NDArray,
) -> None:
    """Spline values at ``s = matrix @ point + offset`` (index space, ``x, y, z``) and, when
    asked, ``grad_matrix @ ∇_s`` (the gradient carried to whatever frame the caller needs)."""
    for p in numba.prange(points.shape[0]):
        px = points[p, 0]
        py = points[p, 1]
        pz = points[p, 2]
        sx = matrix[0, 0] * px + matrix[0, 1] * py + matrix[0, 2] * pz + offset[0]
        sy = matrix[1, 0] * px + matrix[1, 1] * py + matrix[1, 2] * pz + offset[1]
        sz = matrix[2, 0] * px + matrix[2, 1] * py + matrix[2, 2] * pz + offset[2]
        v, gx, gy, gz = _spline_at(coeffs, sx, sy, sz, want_gradient)
        values[p] = v
        if want_gradient:
            for k in range(3):
                gradients[p, k] = (
                    grad_matrix[k, 0] * gx + grad_matrix[k, 1] * gy + grad_matrix[k, 2] * gz
                )


_IDENTITY = np.eye(3)
_ZERO = np.zeros(3)


def sample_cubic(
    coeffs: NDArray[np.floating],
    points: NDArray[np.float64],
    matrix: NDArray[np.float64] = _IDENTITY,
    offset: NDArray[np.float64] = _ZERO,
) -> NDArray[np.float64]:
    """Cubic B-spline values at fractional indices ``matrix @ point + offset`` for each row of
    ``points`` (shape ``(n, 3)``; by default the points are indices ``ix, iy, iz`` themselves)."""
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    values = np.empty(pts.shape[0])
    _sample_cubic(
        coeffs,
        pts,
        np.asarray(matrix, float),
        np.asarray(offset, float),
        _IDENTITY,
        False,
        values,
        np.empty((1, 3)),
    )
    return values


def sample_cubic_with_gradient(
    coeffs: NDArray[np.floating],
    points: NDArray[np.float64],
    matrix: NDArray[np.float64] = _IDENTITY,
    offset: NDArray[np.float64] = _ZERO,
    grad_matrix: NDArray[np.float64] = _IDENTITY,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Values and ``grad_matrix @ ∇`` of the cubic B-spline, where ``∇`` is the gradient with
    respect to the fractional indices ``(ix, iy, iz)`` (see :func:`sample_cubic`)."""
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    values = np.empty(pts.shape[0])
    gradients = np.empty((pts.shape[0], 3))
    _sample_cubic(
        coeffs,
        pts,
        np.asarray(matrix, float),
        np.asarray(offset, float),
        np.asarray(grad_matrix, float),
        True,
        values,
        gradients,
    )
    return values, gradients


@numba.njit(cache=True, parallel=True, nogil=True)
def _normal_sums(
    coeffs: NDArray,
    points: NDArray,
    ref_values: NDArray,
    weights: NDArray,
    matrix: NDArray,
    offset: NDArray,
    grad_matrix: NDArray,
    shift: NDArray,
    blocks: int,
) -> NDArray:
    n_points = points.shape[0]
    partial = np.zeros((blocks, 9, 9))
    size = (n_points + blocks - 1) // blocks
    for blk in numba.prange(blocks):
        v = np.empty(9)
        acc = partial[blk]
        lo = blk * size
        hi = min(lo + size, n_points)
        for p in range(lo, hi):
            px = points[p, 0]
            py = points[p, 1]
            pz = points[p, 2]
            sx = matrix[0, 0] * px + matrix[0, 1] * py + matrix[0, 2] * pz + offset[0]
            sy = matrix[1, 0] * px + matrix[1, 1] * py + matrix[1, 2] * pz + offset[1]
            sz = matrix[2, 0] * px + matrix[2, 1] * py + matrix[2, 2] * pz + offset[2]
            value, gx, gy, gz = _spline_at(coeffs, sx, sy, sz, True)
            hx = grad_matrix[0, 0] * gx + grad_matrix[0, 1] * gy + grad_matrix[0, 2] * gz
            hy = grad_matrix[1, 0] * gx + grad_matrix[1, 1] * gy + grad_matrix[1, 2] * gz
            hz = grad_matrix[2, 0] * gx + grad_matrix[2, 1] * gy + grad_matrix[2, 2] * gz
            ux = px - shift[0]
            uy = py - shift[1]
            uz = pz - shift[2]
            v[0] = hy * uz - hz * uy  # h x u
            v[1] = hz * ux - hx * uz
            v[2] = hx * uy - hy * ux
            v[3] = -hx
            v[4] = -hy
            v[5] = -hz
            v[6] = value
            v[7] = 1.0
            v[8] = ref_values[p]
            w = weights[p]
            for i in range(9):
                wi = w * v[i]
                for j in range(i, 9):
                    acc[i, j] += wi * v[j]
    total = np.zeros((9, 9))
    for blk in range(blocks):
        total += partial[blk]
    for i in range(9):
        for j in range(i):
            total[i, j] = total[j, i]
    return total


def normal_sums(
    coeffs: NDArray[np.floating],
    points: NDArray[np.float64],
    ref_values: NDArray[np.float64],
    weights: NDArray[np.float64],
    matrix: NDArray[np.float64],
    offset: NDArray[np.float64],
    grad_matrix: NDArray[np.float64],
    shift: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``Σ_i w_i v_i v_iᵀ`` with ``v = (h × u, -h, m, 1, r)`` for a Gauss-Newton step.

    ``m`` and ``∇`` are the spline's value and index-space gradient at ``matrix @ y + offset``,
    ``h = grad_matrix @ ∇``, ``u = y - shift`` (see :mod:`engine.alignment.refine`).
    """
    # a fixed number of partial sums, added in a fixed order: the same result for any number of
    # threads (a parallel job gives the same numbers as a serial one)
    blocks = 32
    return _normal_sums(
        coeffs,
        np.ascontiguousarray(points, dtype=np.float64),
        ref_values,
        weights,
        np.asarray(matrix, float),
        np.asarray(offset, float),
        np.asarray(grad_matrix, float),
        np.asarray(shift, float),
        blocks,
    )
