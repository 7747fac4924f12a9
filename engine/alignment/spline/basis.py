"""The cubic B-spline basis: weights of the four taps, their derivatives, the mirror boundary,
and the value and index-space gradient of a spline at one point."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.jit import inline


@inline
def _mirror(i: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * n - 2
    i = abs(i) % period
    return period - i if i >= n else i


@inline
def _trilinear(
    grid: NDArray,
    z0: int,
    z1: int,
    y0: int,
    y1: int,
    x0: int,
    x1: int,
    tz: float,
    ty: float,
    tx: float,
) -> float:
    """Trilinear blend of the 8 grid values at the corners ``(z0|z1, y0|y1, x0|x1)``, with
    the weights ``t`` of the second corner along each axis."""
    c00 = grid[z0, y0, x0] * (1.0 - tx) + grid[z0, y0, x1] * tx
    c01 = grid[z0, y1, x0] * (1.0 - tx) + grid[z0, y1, x1] * tx
    c10 = grid[z1, y0, x0] * (1.0 - tx) + grid[z1, y0, x1] * tx
    c11 = grid[z1, y1, x0] * (1.0 - tx) + grid[z1, y1, x1] * tx
    c0 = c00 * (1.0 - ty) + c01 * ty
    c1 = c10 * (1.0 - ty) + c11 * ty
    return c0 * (1.0 - tz) + c1 * tz


@inline
def _bspline_weights(t: float) -> tuple[float, float, float, float]:
    u = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    return (
        u * u * u / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    )


@inline
def _bspline_weights_f32(t: float) -> tuple[float, float, float, float]:
    """:func:`_bspline_weights` in float32 (``t`` a float32): for resampling, whose output is
    float32 anyway."""
    one = np.float32(1.0)
    sixth = np.float32(1.0 / 6.0)
    u = one - t
    t2 = t * t
    t3 = t2 * t
    three = np.float32(3.0)
    return (
        u * u * u * sixth,
        (three * t3 - np.float32(6.0) * t2 + np.float32(4.0)) * sixth,
        (-three * t3 + three * t2 + three * t + one) * sixth,
        t3 * sixth,
    )


@inline
def _bspline_derivative_weights(t: float) -> tuple[float, float, float, float]:
    u = 1.0 - t
    return (-0.5 * u * u, 1.5 * t * t - 2.0 * t, -1.5 * t * t + t + 0.5, 0.5 * t * t)


@inline
def _spline_at(
    coeffs: NDArray, sx: float, sy: float, sz: float, want_gradient: bool
) -> tuple[float, float, float, float]:
    """Spline value and index-space gradient at ``(sx, sy, sz)``; zeros outside the box."""
    n0, n1, n2 = coeffs.shape
    if not (0.0 <= sx <= n2 - 1 and 0.0 <= sy <= n1 - 1 and 0.0 <= sz <= n0 - 1):
        return 0.0, 0.0, 0.0, 0.0
    fx = np.floor(sx)
    fy = np.floor(sy)
    fz = np.floor(sz)
    wx = _bspline_weights(sx - fx)
    wy = _bspline_weights(sy - fy)
    wz = _bspline_weights(sz - fz)
    dx = _bspline_derivative_weights(sx - fx)
    dy = _bspline_derivative_weights(sy - fy)
    dz = _bspline_derivative_weights(sz - fz)
    ix0 = int(fx) - 1
    iy0 = int(fy) - 1
    iz0 = int(fz) - 1
    xs = (_mirror(ix0, n2), _mirror(ix0 + 1, n2), _mirror(ix0 + 2, n2), _mirror(ix0 + 3, n2))
    ys = (_mirror(iy0, n1), _mirror(iy0 + 1, n1), _mirror(iy0 + 2, n1), _mirror(iy0 + 3, n1))
    zs = (_mirror(iz0, n0), _mirror(iz0 + 1, n0), _mirror(iz0 + 2, n0), _mirror(iz0 + 3, n0))
    v = 0.0
    gx = 0.0
    gy = 0.0
    gz = 0.0
    for a in range(4):
        iz = zs[a]
        for b in range(4):
            iy = ys[b]
            c0 = coeffs[iz, iy, xs[0]]
            c1 = coeffs[iz, iy, xs[1]]
            c2 = coeffs[iz, iy, xs[2]]
            c3 = coeffs[iz, iy, xs[3]]
            row_v = wx[0] * c0 + wx[1] * c1 + wx[2] * c2 + wx[3] * c3
            v += wz[a] * wy[b] * row_v
            if want_gradient:
                row_d = dx[0] * c0 + dx[1] * c1 + dx[2] * c2 + dx[3] * c3
                gx += wz[a] * wy[b] * row_d
                gy += wz[a] * dy[b] * row_v
                gz += dz[a] * wy[b] * row_v
    return v, gx, gy, gz
