"""Difference maps: what two aligned maps disagree on, in shape rather than greyscale.

``aligned - reference`` (same grid) after each is low-passed and standardised over the box (zero
mean, unit standard deviation). Done from the maps' ``rfftn`` half-spectra, which the job has
already made for the FSC: each low-passed map's mean and spread come from its spectrum
(Parseval), and one inverse transform of the scaled difference gives the map. Compiled passes
over the half-spectrum keep memory to the spectra themselves.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from align3d.engine.alignment.fourier import rfft_weights
from align3d.engine.alignment.fsc import FSCCurve
from align3d.engine.alignment.jit import BLOCKS, as_kernel_array, kernel, parallel, sum_blocks
from align3d.engine.alignment.spectra import response


@kernel(
    "void(complex64[:, :, ::1], float64[::1], float64[::1], float64[::1], float64[::1], float64,"
    " float64, float64[::1], int64, int64)"
)
def _lowpassed_power(f, kz, ky, kx2, weights, lo, hi, acc, first, last):  # type: ignore[no-untyped-def]
    ny, nx = f.shape[1], f.shape[2]
    total = 0.0
    for iz in range(first, last):
        for iy in range(ny):
            kzy = kz[iz] * kz[iz] + ky[iy] * ky[iy]
            for ix in range(nx):
                g = response(np.sqrt(kzy + kx2[ix]), lo, hi)
                v = f[iz, iy, ix]
                total += weights[ix] * g * g * (v.real * v.real + v.imag * v.imag)
    acc[0] += total


@kernel(
    "void(complex64[:, :, ::1], complex64[:, :, ::1], complex64[:, :, ::1], float64, float64,"
    " float64[::1], float64[::1], float64[::1], float64, float64, int64, int64)"
)
def _scaled_difference(out, fa, fb, sa, sb, kz, ky, kx2, lo, hi, first, last):  # type: ignore[no-untyped-def]
    ny, nx = fa.shape[1], fa.shape[2]
    for iz in range(first, last):
        for iy in range(ny):
            kzy = kz[iz] * kz[iz] + ky[iy] * ky[iy]
            for ix in range(nx):
                g = response(np.sqrt(kzy + kx2[ix]), lo, hi)
                out[iz, iy, ix] = g * (fb[iz, iy, ix] * sb - fa[iz, iy, ix] * sa)


AGREEMENT_FSC = 0.5
"""The FSC of the aligned map with the reference above which their difference is shown: at
lower FSC, noise (or unrelated detail) would outweigh what the maps share and hide the parts
where they differ."""
COARSEST_ELEMENTS = 8.0
"""The difference map keeps at least this many resolution elements across the box."""


def difference_lowpass_A(lowpass_A: float, after: FSCCurve, box_extent_A: float) -> float:
    """The low-pass (Å) of a difference map: ``lowpass_A`` (the alignment's), or coarser where
    the aligned map agrees with the reference only at coarser detail (its FSC with the
    reference falls below :data:`AGREEMENT_FSC` there), so that noisy maps (an unfiltered map,
    a half map) give a difference of shapes rather than of noise; never coarser than
    :data:`COARSEST_ELEMENTS` resolution elements across the box (``box_extent_A``, Å)."""
    coarsest = max(lowpass_A, box_extent_A / COARSEST_ELEMENTS)
    agreement = after.resolution_at(AGREEMENT_FSC)
    if not np.isfinite(agreement):
        return coarsest
    return float(min(max(lowpass_A, agreement), coarsest))


def difference_from_spectra(
    reference_spectrum: NDArray[np.complexfloating],
    aligned_spectrum: NDArray[np.complexfloating],
    *,
    shape: tuple[int, int, int],
    voxel_A: float,
    lowpass_A: float,
    overwrite: bool = False,
) -> NDArray[np.float32]:
    """The difference map of two maps of ``shape`` (voxels ``[z, y, x]``) and ``voxel_A`` Å
    from their ``rfftn`` spectra, low-passed at ``lowpass_A`` Å.
    ``overwrite``: the aligned spectrum may hold the result (no full-size copy)."""
    voxels = float(np.prod(shape))
    kz = sfft.fftfreq(shape[0], d=voxel_A)
    ky = sfft.fftfreq(shape[1], d=voxel_A)
    kx = sfft.rfftfreq(shape[2], d=voxel_A)
    lo, hi = 0.9 / lowpass_A, 1.1 / lowpass_A
    weights = rfft_weights(shape[2])
    scales = []
    spectra = [as_kernel_array(f, np.complex64) for f in (reference_spectrum, aligned_spectrum)]
    for spectrum in spectra:
        power = float(
            sum_blocks(
                _lowpassed_power,
                shape[0],
                np.zeros((BLOCKS, 1)),
                spectrum,
                kz,
                ky,
                kx * kx,
                weights,
                lo,
                hi,
            )[0]
        )
        mean = float(spectrum[0, 0, 0].real) / voxels
        std = np.sqrt(max(power / voxels**2 - mean**2, 0.0))
        scales.append(1.0 / std if std > 0 else 1.0)
    out = spectra[1] if overwrite and spectra[1] is aligned_spectrum else np.empty_like(spectra[1])
    parallel(
        _scaled_difference,
        shape[0],
        out,
        spectra[0],
        spectra[1],
        scales[0],
        scales[1],
        kz,
        ky,
        kx * kx,
        lo,
        hi,
    )
    out[0, 0, 0] = 0.0
    return sfft.irfftn(out, s=shape).astype(np.float32)


def difference_map(
    reference: NDArray, aligned: NDArray, *, voxel_A: float, lowpass_A: float
) -> NDArray[np.float32]:
    """The difference map of two maps on the same grid of ``voxel_A`` Å, low-passed at
    ``lowpass_A`` Å (see the module docstring)."""
    spectra = [sfft.rfftn(np.asarray(v, dtype=np.float32)) for v in (reference, aligned)]
    return difference_from_spectra(
        spectra[0], spectra[1], shape=reference.shape, voxel_A=voxel_A, lowpass_A=lowpass_A
    )
