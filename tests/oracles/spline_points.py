"""The cubic B-spline at scattered points, for tests of the basis the kernels share (values and
index-space gradients; not compiled to disk: tests only)."""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.spline.basis import _spline_at


@numba.njit
def _at_points(coeffs, points, values, gradients):  # type: ignore[no-untyped-def]
    for p in range(points.shape[0]):
        v, gx, gy, gz = _spline_at(coeffs, points[p, 0], points[p, 1], points[p, 2], True)
        values[p] = v
        gradients[p, 0] = gx
        gradients[p, 1] = gy
        gradients[p, 2] = gz


def sample_cubic_with_gradient(
    coeffs: NDArray[np.float32], points: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Values and index-space gradients at fractional indices ``(ix, iy, iz)`` (rows)."""
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    values = np.empty(pts.shape[0])
    gradients = np.empty((pts.shape[0], 3))
    _at_points(np.ascontiguousarray(coeffs), pts, values, gradients)
    return values, gradients


def sample_cubic(coeffs: NDArray[np.float32], points: NDArray[np.float64]) -> NDArray[np.float64]:
    return sample_cubic_with_gradient(coeffs, points)[0]
