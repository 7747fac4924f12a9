"""Compiled interpolation kernels: cubic B-splines for maps, trilinear for masks.

All kernels work in *index space*: a point is given as fractional voxel indices ``(ix, iy, iz)``
of an array indexed ``[z, y, x]``. Points outside the box ``[0, N - 1]`` on any axis give 0 (and a
zero gradient); taps that fall outside the box near the border use mirrored coefficients.

The cubic B-spline is interpolating once its coefficients are computed with
:func:`spline_coefficients` (Unser, Aldroubi & Eden, "B-spline signal processing", IEEE TSP 1993).
Trilinear interpolation is a convex combination of neighbours, so it keeps mask values in [0, 1].

numba is used because these loops dominate the job: ``scipy.ndimage.affine_transform`` (cubic)
takes ~9 s for one 256^3 map on 2 cores, these kernels well under a second.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

_POLE = np.sqrt(3.0) - 2.0  # pole of the cubic B-spline prefilter


@numba.njit(cache=True, inline="always")
def _mirror(i: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * n - 2
    i = abs(i) % period
    return period - i if i >= n else i


@numba.njit(cache=True, nogil=True)
def _prefilter_columns(c: NDArray[np.floating], lo: int, hi: int) -> None:
    """In-place cubic B-spline prefilter along axis 0 of the 2-D array ``c``, for its columns
    ``lo:hi``, mirror boundary, gain 6 included. The recursion runs down axis 0 and is vectorised
    over the contiguous axis 1, which keeps memory access sequential."""
    n = c.shape[0]
    z = _POLE
    for k in range(n):
        for j in range(lo, hi):
            c[k, j] *= 6.0
    if n < 2:
        return
    # causal initialisation, exact for the mirrored (period 2n - 2) signal; terms below
    # |z|^k < 1e-17 are dropped
    period = 2 * n - 2
    terms = min(period, 32)
    norm = 1.0 / (1.0 - z**period) if terms == period else 1.0
    for j in range(lo, hi):
        acc = 0.0
        zk = 1.0
        for k in range(terms):
            acc += zk * c[k if k < n else period - k, j]
            zk *= z
        c[0, j] = acc * norm
    for k in range(1, n):
        for j in range(lo, hi):
            c[k, j] += z * c[k - 1, j]
    for j in range(lo, hi):
        c[n - 1, j] = (z / (z * z - 1.0)) * (c[n - 1, j] + z * c[n - 2, j])
    for k in range(n - 2, -1, -1):
        for j in range(lo, hi):
            c[k, j] = z * (c[k + 1, j] - c[k, j])


@numba.njit(cache=True, parallel=True, nogil=True)
def _prefilter_axis0(c: NDArray[np.floating]) -> None:
    """Prefilter along axis 0 of a 2-D array, in parallel over chunks of columns."""
    m = c.shape[1]
    chunk = 512
    for block in numba.prange((m + chunk - 1) // chunk):
        _prefilter_columns(c, block * chunk, min(block * chunk + chunk, m))


@numba.njit(cache=True, parallel=True, nogil=True)
def _prefilter_axis1(c: NDArray[np.floating]) -> None:
    """Prefilter along axis 1 of a 3-D array, in parallel over planes of axis 0."""
    for i in numba.prange(c.shape[0]):
        _prefilter_columns(c[i], 0, c.shape[2])


@numba.njit(cache=True, parallel=True, nogil=True)
def _prefilter_axis2(c: NDArray[np.floating]) -> None:
    """Prefilter along axis 2 of a 3-D array, in parallel over planes: each plane is transposed
    into a small buffer so that the recursion is vectorised over rows (a recursion along one
    contiguous row is a serial chain of dependent operations, several times slower)."""
    n0, n1 = c.shape[0], c.shape[1]
    for i in numba.prange(n0):
        buf = np.ascontiguousarray(c[i].T)
        _prefilter_columns(buf, 0, n1)
        c[i] = buf.T


def spline_coefficients(
    volume: NDArray[np.floating], dtype: type = np.float64
) -> NDArray[np.floating]:
    """Cubic B-spline coefficients of a 3-D array (mirror boundary).

    Evaluating the spline with these coefficients at integer positions returns ``volume``.
    ``float32`` halves memory and speeds up resampling of full-size maps (error ~1e-6 relative).
    """
    c = np.array(volume, dtype=dtype, order="C", copy=True)
    if c.ndim != 3:
        raise ValueError(f"expected a 3-D array, got shape {c.shape}")
    n0, n1, n2 = c.shape
    _prefilter_axis0(c.reshape(n0, n1 * n2))  # along z
    _prefilter_axis1(c)  # along y
    _prefilter_axis2(c)  # along x
    return c


@numba.njit(cache=True, inline="always")
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


@numba.njit(cache=True, inline="always")
def _bspline_derivative_weights(t: float) -> tuple[float, float, float, float]:
    u = 1.0 - t
    return (-0.5 * u * u, 1.5 * t * t - 2.0 * t, -1.5 * t * t + t + 0.5, 0.5 * t * t)


@numba.njit(cache=True, inline="always")
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


@numba.njit(cache=True, parallel=True, nogil=True)
def _affine_cubic(coeffs: NDArray, lin: NDArray, off: NDArray, out: NDArray, tile: int) -> None:
    """Output in cubic tiles, in parallel: the source voxels a tile reads stay in cache."""
    n0, n1, n2 = coeffs.shape
    o0, o1, o2 = out.shape
    t0 = (o0 + tile - 1) // tile
    t1 = (o1 + tile - 1) // tile
    t2 = (o2 + tile - 1) // tile
    for t in numba.prange(t0 * t1 * t2):
        bz = (t // (t1 * t2)) * tile
        by = ((t // t2) % t1) * tile
        bx = (t % t2) * tile
        for oz in range(bz, min(bz + tile, o0)):
            for oy in range(by, min(by + tile, o1)):
                rx = lin[0, 1] * oy + lin[0, 2] * oz + off[0]
                ry = lin[1, 1] * oy + lin[1, 2] * oz + off[1]
                rz = lin[2, 1] * oy + lin[2, 2] * oz + off[2]
                for ox in range(bx, min(bx + tile, o2)):
                    sx = rx + lin[0, 0] * ox
                    sy = ry + lin[1, 0] * ox
                    sz = rz + lin[2, 0] * ox
                    if not (0.0 <= sx <= n2 - 1 and 0.0 <= sy <= n1 - 1 and 0.0 <= sz <= n0 - 1):
                        out[oz, oy, ox] = 0.0
                        continue
                    fx = np.floor(sx)
                    fy = np.floor(sy)
                    fz = np.floor(sz)
                    wx = _bspline_weights(sx - fx)
                    wy = _bspline_weights(sy - fy)
                    wz = _bspline_weights(sz - fz)
                    ix0 = int(fx) - 1
                    iy0 = int(fy) - 1
                    iz0 = int(fz) - 1
                    interior = ix0 >= 0 and iy0 >= 0 and iz0 >= 0
                    if interior and ix0 + 3 < n2 and iy0 + 3 < n1 and iz0 + 3 < n0:
                        v = 0.0
                        for a in range(4):
                            acc = 0.0
                            for b in range(4):
                                row = coeffs[iz0 + a, iy0 + b]
                                acc += wy[b] * (
                                    wx[0] * row[ix0]
                                    + wx[1] * row[ix0 + 1]
                                    + wx[2] * row[ix0 + 2]
                                    + wx[3] * row[ix0 + 3]
                                )
                            v += wz[a] * acc
                        out[oz, oy, ox] = v
                    else:
                        v, _, _, _ = _spline_at(coeffs, sx, sy, sz, False)
                        out[oz, oy, ox] = v


@numba.njit(cache=True, parallel=True, nogil=True)
def _affine_linear(volume: NDArray, lin: NDArray, off: NDArray, out: NDArray) -> None:
    n0, n1, n2 = volume.shape
    o0, o1, o2 = out.shape
    for oz in numba.prange(o0):
        for oy in range(o1):
            bx = lin[0, 1] * oy + lin[0, 2] * oz + off[0]
            by = lin[1, 1] * oy + lin[1, 2] * oz + off[1]
            bz = lin[2, 1] * oy + lin[2, 2] * oz + off[2]
            for ox in range(o2):
                sx = bx + lin[0, 0] * ox
                sy = by + lin[1, 0] * ox
                sz = bz + lin[2, 0] * ox
                if not (0.0 <= sx <= n2 - 1 and 0.0 <= sy <= n1 - 1 and 0.0 <= sz <= n0 - 1):
                    out[oz, oy, ox] = 0.0
                    continue
                ix = min(int(sx), max(n2 - 2, 0))
                iy = min(int(sy), max(n1 - 2, 0))
                iz = min(int(sz), max(n0 - 2, 0))
                tx = sx - ix
                ty = sy - iy
                tz = sz - iz
                jx = min(ix + 1, n2 - 1)
                jy = min(iy + 1, n1 - 1)
                jz = min(iz + 1, n0 - 1)
                c00 = volume[iz, iy, ix] * (1 - tx) + volume[iz, iy, jx] * tx
                c01 = volume[iz, jy, ix] * (1 - tx) + volume[iz, jy, jx] * tx
                c10 = volume[jz, iy, ix] * (1 - tx) + volume[jz, iy, jx] * tx
                c11 = volume[jz, jy, ix] * (1 - tx) + volume[jz, jy, jx] * tx
                c0 = c00 * (1 - ty) + c01 * ty
                c1 = c10 * (1 - ty) + c11 * ty
                out[oz, oy, ox] = c0 * (1 - tz) + c1 * tz


def affine_cubic(
    coeffs: NDArray[np.float64],
    index_matrix: NDArray[np.float64],
    index_offset: NDArray[np.float64],
    out_shape: tuple[int, int, int],
    dtype: type = np.float32,
) -> NDArray[np.floating]:
    """Resample a cubic B-spline onto a new grid.

    Output voxel with indices ``o = (ox, oy, oz)`` takes the spline value at source indices
    ``index_matrix @ o + index_offset`` (both in ``x, y, z`` order).
    """
    out = np.empty(out_shape, dtype=dtype)
    matrix = np.asarray(index_matrix, float)
    _affine_cubic(coeffs, matrix, np.asarray(index_offset, float), out, 16)
    return out


def affine_linear(
    volume: NDArray[np.floating],
    index_matrix: NDArray[np.float64],
    index_offset: NDArray[np.float64],
    out_shape: tuple[int, int, int],
    dtype: type = np.float32,
) -> NDArray[np.floating]:
    """Trilinear resampling onto a new grid (same index mapping as :func:`affine_cubic`)."""
    out = np.empty(out_shape, dtype=dtype)
    vol = np.ascontiguousarray(volume, dtype=np.float32)
    _affine_linear(vol, np.asarray(index_matrix, float), np.asarray(index_offset, float), out)
    return out
