"""Resampling a whole map onto a new grid under an affine index mapping: cubic B-spline for
maps (in cache-friendly tiles), trilinear for masks (a convex combination, so values stay in
[0, 1])."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.jit import FREE_SUMS, as_kernel_array, inline, kernel, parallel
from align3d.engine.alignment.spline.basis import _bspline_weights_f32, _spline_at, _trilinear

TILE = 16


@inline
def _row_start(lin: NDArray, off: NDArray, oy: int, oz: int) -> tuple[float, float, float]:
    """Source indices ``(x, y, z)`` of output voxel ``(0, oy, oz)``: a row's start, to which
    ``lin[:, 0] * ox`` adds the voxel's place along the row."""
    return (
        lin[0, 1] * oy + lin[0, 2] * oz + off[0],
        lin[1, 1] * oy + lin[1, 2] * oz + off[1],
        lin[2, 1] * oy + lin[2, 2] * oz + off[2],
    )


@inline
def _inside(sx: float, sy: float, sz: float, n0: int, n1: int, n2: int) -> bool:
    """Whether source indices ``(sx, sy, sz)`` fall in a box of ``n0 x n1 x n2`` voxels."""
    return 0.0 <= sx <= n2 - 1 and 0.0 <= sy <= n1 - 1 and 0.0 <= sz <= n0 - 1


@kernel(
    "void(float32[:, :, ::1], float64[:, ::1], float64[::1], float32[:, :, ::1], int64, int64)",
    fastmath=FREE_SUMS,
)
def _affine_cubic(
    coeffs: NDArray, lin: NDArray, off: NDArray, out: NDArray, lo: int, hi: int
) -> None:
    """Output in cubic tiles (the source voxels a tile reads stay in cache), tiles ``lo:hi``.
    Positions in float64; inside the box the 64 taps are weighed and summed in float32 (the
    output's precision: ~1e-7 relative, as the coefficients), which the compiler vectorises
    (:data:`FREE_SUMS`); faster than float64 sums, as ``benchmarks/resampling.py`` measures."""
    tile = TILE
    n0, n1, n2 = coeffs.shape
    o0, o1, o2 = out.shape
    t1 = (o1 + tile - 1) // tile
    t2 = (o2 + tile - 1) // tile
    for t in range(lo, hi):
        bz = (t // (t1 * t2)) * tile
        by = ((t // t2) % t1) * tile
        bx = (t % t2) * tile
        for oz in range(bz, min(bz + tile, o0)):
            for oy in range(by, min(by + tile, o1)):
                rx, ry, rz = _row_start(lin, off, oy, oz)
                for ox in range(bx, min(bx + tile, o2)):
                    sx, sy, sz = rx + lin[0, 0] * ox, ry + lin[1, 0] * ox, rz + lin[2, 0] * ox
                    if not _inside(sx, sy, sz, n0, n1, n2):
                        out[oz, oy, ox] = 0.0
                        continue
                    fx = np.floor(sx)
                    fy = np.floor(sy)
                    fz = np.floor(sz)
                    ix0 = int(fx) - 1
                    iy0 = int(fy) - 1
                    iz0 = int(fz) - 1
                    interior = ix0 >= 0 and iy0 >= 0 and iz0 >= 0
                    if interior and ix0 + 3 < n2 and iy0 + 3 < n1 and iz0 + 3 < n0:
                        wx = _bspline_weights_f32(np.float32(sx - fx))
                        wy = _bspline_weights_f32(np.float32(sy - fy))
                        wz = _bspline_weights_f32(np.float32(sz - fz))
                        v = np.float32(0.0)
                        for a in range(4):
                            acc = np.float32(0.0)
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


@kernel("void(float32[:, :, ::1], float64[:, ::1], float64[::1], float32[:, :, ::1], int64, int64)")
def _affine_linear(
    volume: NDArray, lin: NDArray, off: NDArray, out: NDArray, lo: int, hi: int
) -> None:
    """Output planes ``lo:hi`` by trilinear interpolation."""
    n0, n1, n2 = volume.shape
    _o0, o1, o2 = out.shape
    for oz in range(lo, hi):
        for oy in range(o1):
            bx, by, bz = _row_start(lin, off, oy, oz)
            for ox in range(o2):
                sx, sy, sz = bx + lin[0, 0] * ox, by + lin[1, 0] * ox, bz + lin[2, 0] * ox
                if not _inside(sx, sy, sz, n0, n1, n2):
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
                out[oz, oy, ox] = _trilinear(volume, iz, jz, iy, jy, ix, jx, tz, ty, tx)


def affine_cubic(
    coeffs: NDArray[np.float32],
    index_matrix: NDArray[np.float64],
    index_offset: NDArray[np.float64],
    out_shape: tuple[int, int, int],
) -> NDArray[np.float32]:
    """Resample a cubic B-spline (float32 coefficients) onto a new grid (float32).

    Output voxel with indices ``o = (ox, oy, oz)`` takes the spline value at source indices
    ``index_matrix @ o + index_offset`` (both in ``x, y, z`` order).
    """
    out = np.empty(out_shape, dtype=np.float32)
    matrix = as_kernel_array(index_matrix, np.float64)
    offset = as_kernel_array(index_offset, np.float64)
    tiles = int(np.prod([(n + TILE - 1) // TILE for n in out_shape]))
    parallel(_affine_cubic, tiles, as_kernel_array(coeffs, np.float32), matrix, offset, out)
    return out


SLAB_PLANES = 2 * TILE
"""The output planes of one slab of :func:`affine_cubic_slabs` (whole tiles)."""


def affine_cubic_slabs(
    coeffs: NDArray[np.float32],
    index_matrix: NDArray[np.float64],
    index_offset: NDArray[np.float64],
    out_shape: tuple[int, int, int],
) -> Iterator[NDArray[np.float32]]:
    """:func:`affine_cubic`, one ``z`` slab of :data:`SLAB_PLANES` planes at a time (the
    output of a slab starting at plane ``z0`` is that of the whole grid shifted by ``z0``)."""
    matrix = as_kernel_array(index_matrix, np.float64)
    c = as_kernel_array(coeffs, np.float32)
    nz, ny, nx = out_shape
    for z0 in range(0, nz, SLAB_PLANES):
        planes = min(SLAB_PLANES, nz - z0)
        offset = as_kernel_array(np.asarray(index_offset) + matrix[:, 2] * z0, np.float64)
        out = np.empty((planes, ny, nx), dtype=np.float32)
        tiles = int(np.prod([(n + TILE - 1) // TILE for n in out.shape]))
        parallel(_affine_cubic, tiles, c, matrix, offset, out)
        yield out


def affine_linear(
    volume: NDArray[np.floating],
    index_matrix: NDArray[np.float64],
    index_offset: NDArray[np.float64],
    out_shape: tuple[int, int, int],
) -> NDArray[np.float32]:
    """Trilinear resampling onto a new grid (same index mapping as :func:`affine_cubic`)."""
    out = np.empty(out_shape, dtype=np.float32)
    vol = as_kernel_array(volume, np.float32)
    matrix = as_kernel_array(index_matrix, np.float64)
    offset = as_kernel_array(index_offset, np.float64)
    parallel(_affine_linear, out_shape[0], vol, matrix, offset, out)
    return out
