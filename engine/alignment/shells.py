"""Sums over Fourier shells of rfftn half-spectra, in one compiled pass (the FSC and the
difference map's statistics).

A half-spectrum column ``kx`` of an ``rfftn`` stands for two voxels of the full spectrum, except
the zero column and the Nyquist column of an even axis (:func:`align3d.engine.alignment.fourier.rfft_weights`).
Shells are one Fourier voxel wide: shell ``i`` holds ``|k|`` within half a step of ``i / (N p)``
(Å⁻¹) for the shortest box edge ``N``. Partial sums are kept per block of z-planes and added in a
fixed order, so the result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from align3d.engine.alignment.fourier import rfft_weights
from align3d.engine.alignment.jit import BLOCKS, as_kernel_array, kernel, sum_blocks


@kernel(
    "void(complex64[:, :, ::1], complex64[:, :, ::1], float64[::1], float64[::1], float64[::1],"
    " float64[::1], float64, int64, float64[:, ::1], int64, int64)"
)
def _shell_sums(fa, fb, kz, ky, kx2, weights, step, nshell, acc, lo, hi):  # type: ignore[no-untyped-def]
    """Add the shell sums of the z-planes ``lo:hi`` into ``acc`` (4 x shells)."""
    ny, nx = fa.shape[1], fa.shape[2]
    for iz in range(lo, hi):
        for iy in range(ny):
            kzy = kz[iz] * kz[iz] + ky[iy] * ky[iy]
            for ix in range(nx):
                shell = int(np.rint(np.sqrt(kzy + kx2[ix]) / step))
                if shell >= nshell:
                    continue
                w = weights[ix]
                a = fa[iz, iy, ix]
                b = fb[iz, iy, ix]
                acc[0, shell] += w * (a.real * b.real + a.imag * b.imag)
                acc[1, shell] += w * (a.real * a.real + a.imag * a.imag)
                acc[2, shell] += w * (b.real * b.real + b.imag * b.imag)
                acc[3, shell] += w


def shell_sums(
    fa: NDArray[np.complexfloating],
    fb: NDArray[np.complexfloating],
    shape: tuple[int, ...],
    voxel_size_A: float,
) -> tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float
]:
    """Per shell: ``Σ Re(a b*)``, ``Σ |a|²``, ``Σ |b|²`` and the voxel count (full spectrum), and
    the shell step (Å⁻¹), for two half-spectra of a map of ``shape``."""
    box = min(shape)
    step = 1.0 / (box * voxel_size_A)
    nshell = box // 2 + 1
    kz = sfft.fftfreq(shape[0], d=voxel_size_A)
    ky = sfft.fftfreq(shape[1], d=voxel_size_A)
    kx = sfft.rfftfreq(shape[2], d=voxel_size_A)
    sums = sum_blocks(
        _shell_sums,
        fa.shape[0],
        np.zeros((BLOCKS, 4, nshell)),
        as_kernel_array(fa, np.complex64),
        as_kernel_array(fb, np.complex64),
        kz,
        ky,
        kx * kx,
        rfft_weights(shape[2]),
        float(step),
        int(nshell),
    )
    return sums[0], sums[1], sums[2], sums[3], step
