"""Compiled passes over ``rfftn`` half-spectra: the low-pass response applied in place, slab by
slab, with no full-size frequency grid (a 600^3 map's grid in float64 alone is 870 MB)."""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike, NDArray

from align3d.engine.alignment.geometry import voxel_size_xyz
from align3d.engine.alignment.jit import inline, kernel, parallel


@inline
def response(k: float, lo: float, hi: float) -> float:
    """:func:`align3d.engine.alignment.fourier.lowpass_response` at one frequency (1 below ``lo``, a
    raised cosine to 0 at ``hi``)."""
    if k <= lo:
        return 1.0
    if k >= hi:
        return 0.0
    return 0.5 * (1.0 + np.cos(np.pi * (k - lo) / (hi - lo)))


@kernel(
    "void(complex64[:, :, ::1], float64[::1], float64[::1], float64[::1], float64, float64,"
    " int64, int64)"
)
def _lowpass_in_place(spec, kz, ky, kx2, lo, hi, first, last):  # type: ignore[no-untyped-def]
    ny, nx = spec.shape[1], spec.shape[2]
    for iz in range(first, last):
        for iy in range(ny):
            kzy = kz[iz] * kz[iz] + ky[iy] * ky[iy]
            for ix in range(nx):
                spec[iz, iy, ix] *= response(np.sqrt(kzy + kx2[ix]), lo, hi)


def frequencies(
    shape: tuple[int, int, int], voxel_size: float | ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The ``rfftn`` layout's frequencies along z, y and x (Å⁻¹) of a ``[z, y, x]`` box."""
    px, py, pz = voxel_size_xyz(voxel_size)
    return (
        sfft.fftfreq(shape[0], d=pz),
        sfft.fftfreq(shape[1], d=py),
        sfft.rfftfreq(shape[2], d=px),
    )


def lowpass_in_place(
    spectrum: NDArray[np.complexfloating],
    *,
    shape: tuple[int, int, int],
    voxel_A: float | ArrayLike,
    resolution_A: float,
) -> None:
    """Multiply the half-spectrum of a ``shape`` map of ``voxel_A`` Å voxels by the low-pass
    response at ``resolution_A`` Å (:func:`align3d.engine.alignment.fourier.lowpass_response`),
    in place."""
    kz, ky, kx = frequencies(shape, voxel_A)
    if spectrum.dtype != np.complex64 or not spectrum.flags.c_contiguous:
        raise ValueError("lowpass_in_place needs a C-contiguous complex64 spectrum")
    lo, hi = 0.9 / resolution_A, 1.1 / resolution_A
    parallel(_lowpass_in_place, spectrum.shape[0], spectrum, kz, ky, kx * kx, lo, hi)
