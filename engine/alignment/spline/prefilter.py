"""Cubic B-spline prefilter: coefficients whose spline passes through the samples (mirror
boundary), computed in place along each axis in turn, in parallel."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.jit import inline, kernel, parallel

_POLE = np.sqrt(3.0) - 2.0  # pole of the cubic B-spline prefilter


@inline
def _prefilter_columns(c: NDArray[np.float32], lo: int, hi: int) -> None:
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


@kernel("void(float32[:, ::1], int64, int64)")
def _prefilter_axis0(c: NDArray[np.float32], lo: int, hi: int) -> None:
    """Prefilter along axis 0 of a 2-D array, for its columns ``lo:hi``."""
    _prefilter_columns(c, lo, hi)


@kernel("void(float32[:, :, ::1], int64, int64)")
def _prefilter_axis1(c: NDArray[np.float32], lo: int, hi: int) -> None:
    """Prefilter along axis 1 of a 3-D array, for its planes ``lo:hi`` of axis 0."""
    for i in range(lo, hi):
        _prefilter_columns(c[i], 0, c.shape[2])


@kernel("void(float32[:, :, ::1], int64, int64)")
def _prefilter_axis2(c: NDArray[np.float32], lo: int, hi: int) -> None:
    """Prefilter along axis 2 of a 3-D array, for its planes ``lo:hi``: each plane is transposed
    into a small buffer so that the recursion is vectorised over rows (a recursion along one
    contiguous row is a serial chain of dependent operations, several times slower)."""
    n1, n2 = c.shape[1], c.shape[2]
    buf = np.empty((n2, n1), dtype=np.float32)
    for i in range(lo, hi):
        for y in range(n1):
            for x in range(n2):
                buf[x, y] = c[i, y, x]
        _prefilter_columns(buf, 0, n1)
        for y in range(n1):
            for x in range(n2):
                c[i, y, x] = buf[x, y]


def spline_coefficients(
    volume: NDArray[np.floating], dtype: type = np.float32, in_place: bool = False
) -> NDArray[np.float32]:
    """Cubic B-spline coefficients of a 3-D array (mirror boundary).

    Evaluating the spline with these coefficients at integer positions returns ``volume``.
    Coefficients are float32 (half the memory of float64; error ~1e-6 relative), the one type
    the kernels are compiled for.
    ``in_place``: overwrite ``volume`` itself when it is a writeable C-contiguous array of
    ``dtype`` (no full-size copy; the caller gives the array up).
    """
    if dtype is not np.float32:
        raise ValueError("spline coefficients are float32")
    owned = (
        in_place
        and isinstance(volume, np.ndarray)
        and volume.dtype == np.float32
        and volume.flags.c_contiguous
        and volume.flags.writeable
    )
    c = volume if owned else np.array(volume, dtype=np.float32, order="C", copy=True)
    if c.ndim != 3:
        raise ValueError(f"expected a 3-D array, got shape {c.shape}")
    n0, n1, n2 = c.shape
    flat = c.reshape(n0, n1 * n2)
    parallel(_prefilter_axis0, n1 * n2, flat)  # along z, in blocks of columns
    parallel(_prefilter_axis1, n0, c)  # along y, in blocks of planes
    parallel(_prefilter_axis2, n0, c)  # along x
    return c
