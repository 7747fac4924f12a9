"""Difference maps: what two aligned maps disagree on, in shape rather than greyscale.

``aligned - reference`` (same grid) after each is low-passed and standardised over the box (zero
mean, unit standard deviation). Done from the maps' ``rfftn`` half-spectra, which the job has
already made for the FSC: each low-passed map's mean and spread come from its spectrum
(Parseval), and one inverse transform of the scaled difference gives the map. Compiled passes
over the half-spectrum keep memory to the spectra themselves.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from engine.alignment.fourier import rfft_weights
from engine.alignment.spectra import response


@numba.njit(cache=True, parallel=True, nogil=True)
def _lowpassed_power(f, kz, ky, kx2, weights, lo, hi):  # type: ignore[no-untyped-def]
    nz, ny, nx = f.shape
    partial = np.zeros(nz)
    for iz in numba.prange(nz):
        acc = 0.0
        for iy in range(ny):
            kzy = kz[iz] * kz[iz] + ky[iy] * ky[iy]
            for ix in range(nx):
                g = response(np.sqrt(kzy + kx2[ix]), lo, hi)
                v = f[iz, iy, ix]
                acc += weights[ix] * g * g * (v.real * v.real + v.imag * v.imag)
        partial[iz] = acc
    return partial.sum()


@numba.njit(cache=True, parallel=True, nogil=True)
def _scaled_difference(out, fa, fb, sa, sb, kz, ky, kx2, lo, hi):  # type: ignore[no-untyped-def]
    nz, ny, nx = fa.shape
    for iz in numba.prange(nz):
        for iy in range(ny):
            kzy = kz[iz] * kz[iz] + ky[iy] * ky[iy]
            for ix in range(nx):
                g = response(np.sqrt(kzy + kx2[ix]), lo, hi)
                out[iz, iy, ix] = g * (fb[iz, iy, ix] * sb - fa[iz, iy, ix] * sa)
    out[0, 0, 0] = 0.0


def difference_from_spectra(
    reference_spectrum: NDArray[np.complexfloating],
    aligned_spectrum: NDArray[np.complexfloating],
    shape: tuple[int, int, int],
    voxel_size_A: float,
    lowpass_A: float,
    overwrite: bool = False,
) -> NDArray[np.float32]:
    """The difference map of two maps of ``shape`` from their ``rfftn`` spectra.
    ``overwrite``: the aligned spectrum may hold the result (no full-size copy)."""
    voxels = float(np.prod(shape))
    kz = sfft.fftfreq(shape[0], d=voxel_size_A)
    ky = sfft.fftfreq(shape[1], d=voxel_size_A)
    kx = sfft.rfftfreq(shape[2], d=voxel_size_A)
    lo, hi = 0.9 / lowpass_A, 1.1 / lowpass_A
    weights = rfft_weights(shape[2])
    scales = []
    for spectrum in (reference_spectrum, aligned_spectrum):
        power = _lowpassed_power(spectrum, kz, ky, kx * kx, weights, lo, hi)
        mean = float(spectrum[0, 0, 0].real) / voxels
        std = np.sqrt(max(power / voxels**2 - mean**2, 0.0))
        scales.append(1.0 / std if std > 0 else 1.0)
    out = aligned_spectrum if overwrite else np.empty_like(aligned_spectrum)
    _scaled_difference(
        out, reference_spectrum, aligned_spectrum, scales[0], scales[1], kz, ky, kx * kx, lo, hi
    )
    return sfft.irfftn(out, s=shape).astype(np.float32)


def difference_map(
    reference: NDArray, aligned: NDArray, voxel_size_A: float, lowpass_A: float
) -> NDArray[np.float32]:
    """The difference map of two maps on the same grid (see the module docstring)."""
    spectra = [sfft.rfftn(np.asarray(v, dtype=np.float32)) for v in (reference, aligned)]
    return difference_from_spectra(spectra[0], spectra[1], reference.shape, voxel_size_A, lowpass_A)
