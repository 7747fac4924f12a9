"""The fused Gauss-Newton normal sums of the refinement: the moving map's spline value and
gradient at every reference point, gathered into one 9 x 9 matrix in one compiled pass."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.jit import BLOCKS, as_kernel_array, kernel, sum_blocks
from align3d.engine.alignment.spline.basis import _spline_at


def _matrix(value: NDArray) -> NDArray[np.float64]:
    return as_kernel_array(value, np.float64)


@kernel(
    "void(float32[:, :, ::1], float64[:, ::1], float64[::1], float64[::1], float64[:, ::1],"
    " float64[::1], float64[:, ::1], float64[::1], float64[:, ::1], int64, int64)"
)
def _normal_sums(
    coeffs: NDArray,
    points: NDArray,
    ref_values: NDArray,
    weights: NDArray,
    matrix: NDArray,
    offset: NDArray,
    grad_matrix: NDArray,
    shift: NDArray,
    acc: NDArray,
    lo: int,
    hi: int,
) -> None:
    """Add ``Σ w v vᵀ`` (upper triangle) of the points ``lo:hi`` into ``acc`` (9 x 9)."""
    v = np.empty(9)
    local = np.zeros((9, 9))  # private to this call: the compiler need not reload it from acc
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
                local[i, j] += wi * v[j]
    for i in range(9):
        for j in range(i, 9):
            acc[i, j] += local[i, j]


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
    ``h = grad_matrix @ ∇``, ``u = y - shift`` (see :mod:`align3d.engine.alignment.refine`).
    """
    # a fixed number of partial sums, added in a fixed order: the same result for any number of
    # threads (a parallel job gives the same numbers as a serial one)
    pts = _matrix(points)
    total = sum_blocks(
        _normal_sums,
        pts.shape[0],
        np.zeros((BLOCKS, 9, 9)),
        coeffs,
        pts,
        _matrix(ref_values),
        _matrix(weights),
        _matrix(matrix),
        _matrix(offset),
        _matrix(grad_matrix),
        _matrix(shift),
    )
    lower = np.tril_indices(9, -1)
    total[lower] = total.T[lower]
    return total
