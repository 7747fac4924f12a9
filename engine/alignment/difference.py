"""Difference maps: what two aligned maps disagree on, in shape rather than greyscale."""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from engine.alignment.fourier import frequency_grid, lowpass_response, rfft_weights


def difference_map(
    reference: NDArray, aligned: NDArray, voxel_size_A: float, lowpass_A: float
) -> NDArray[np.float32]:
    """``aligned - reference`` (same grid) after each is low-passed to ``lowpass_A`` Å and
    standardised over the box (zero mean, unit standard deviation).

    Done in Fourier space, one slab of the half-spectrum at a time: one transform of each map,
    each low-passed map's mean and variance from its spectrum (Parseval), and one inverse
    transform of the scaled difference, whose zero-frequency term (the means) is dropped.
    """
    shape = reference.shape
    voxels = float(np.prod(shape))
    kz = sfft.fftfreq(shape[0], d=voxel_size_A)
    plane = frequency_grid((1, shape[1], shape[2]), voxel_size_A)[0] ** 2
    weight = rfft_weights(shape[2])
    total: NDArray[np.complex64] | None = None
    for sign, volume in ((1.0, aligned), (-1.0, reference)):
        spectrum = sfft.rfftn(np.asarray(volume, dtype=np.float32))
        power = 0.0  # sum of |F|^2 over the full spectrum, low-passed
        for iz in range(shape[0]):
            slab = spectrum[iz]
            slab *= lowpass_response(np.sqrt(plane + kz[iz] ** 2), lowpass_A).astype(np.float32)
            power += float(np.sum(weight * (np.abs(slab).astype(np.float64) ** 2)))
        mean = float(spectrum[0, 0, 0].real) / voxels
        std = np.sqrt(max(power / voxels**2 - mean**2, 0.0))
        spectrum *= np.float32(sign / (std if std > 0 else 1.0))
        if total is None:
            total = spectrum
        else:
            total += spectrum
    assert total is not None
    total[0, 0, 0] = 0.0
    return sfft.irfftn(total, s=shape).astype(np.float32)
