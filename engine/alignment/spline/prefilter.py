"""Cubic B-spline prefilter: coefficients whose spline passes through the samples (mirror
boundary), computed in place along each axis in turn, in parallel."""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

_POLE = np.sqrt(3.0) - 2.0  # pole of the cubic B-spline prefilter


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
    volume: NDArray[np.floating], dtype: type = np.float64, in_place: bool = False
) -> NDArray[np.floating]:
    """Cubic B-spline coefficients of a 3-D array (mirror boundary).

    Evaluating the spline with these coefficients at integer positions returns ``volume``.
    ``float32`` halves memory and speeds up resampling of full-size maps (error ~1e-6 relative).
    ``in_place``: overwrite ``volume`` itself when it is a writeable C-contiguous array of
    ``dtype`` (no full-size copy; the caller gives the array up).
    """
    owned = (
        in_place
        and isinstance(volume, np.ndarray)
        and volume.dtype == dtype
        and volume.flags.c_contiguous
        and volume.flags.writeable
    )
    c = volume if owned else np.array(volume, dtype=dtype, order="C", copy=True)
    if c.ndim != 3:
        raise ValueError(f"expected a 3-D array, got shape {c.shape}")
    n0, n1, n2 = c.shape
    _prefilter_axis0(c.reshape(n0, n1 * n2))  # along z
    _prefilter_axis1(c)  # along y
    _prefilter_axis2(c)  # along x
    return c
