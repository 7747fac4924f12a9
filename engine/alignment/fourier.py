"""Fourier-space helpers: spatial frequencies, centred Fourier resizing, low-pass filtering.

Maps follow the box-centre convention (origin at voxel ``N // 2`` per axis). Every function here
keeps that origin fixed: ``ifftshift`` moves voxel ``N // 2`` to index 0 before a transform and
``fftshift`` moves it back, for odd and even boxes alike. Frequencies are in Å⁻¹.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike, NDArray

from engine.alignment.geometry import voxel_size_xyz


def frequency_grid(
    shape: tuple[int, int, int], voxel_size: float | ArrayLike, real: bool = True
) -> NDArray[np.float64]:
    """Spatial frequency magnitude ``|k|`` in Å⁻¹ on the (r)fftn layout of a ``[z, y, x]`` box."""
    px, py, pz = voxel_size_xyz(voxel_size)
    kz = sfft.fftfreq(shape[0], d=pz)[:, None, None]
    ky = sfft.fftfreq(shape[1], d=py)[None, :, None]
    kx = (sfft.rfftfreq if real else sfft.fftfreq)(shape[2], d=px)[None, None, :]
    return np.sqrt(kz**2 + ky**2 + kx**2)


def lowpass_response(frequency: ArrayLike, resolution_A: float) -> NDArray[np.float64]:
    """Low-pass transfer function: 1 below ``0.9 / resolution_A``, a raised-cosine edge, and 0
    above ``1.1 / resolution_A`` (half amplitude at the resolution itself)."""
    k = np.asarray(frequency, dtype=np.float64)
    cut = 1.0 / resolution_A
    lo, hi = 0.9 * cut, 1.1 * cut
    ramp = 0.5 * (1.0 + np.cos(np.pi * np.clip((k - lo) / (hi - lo), 0.0, 1.0)))
    return ramp


def _centred_resize_axis(spec: NDArray[np.complexfloating], axis: int, n: int) -> NDArray:
    """Crop or zero-pad one full (non-rfft) axis of a spectrum to ``n`` frequencies about 0."""
    size = spec.shape[axis]
    if size == n:
        return spec
    shifted = sfft.fftshift(spec, axes=axis)
    out_shape = list(spec.shape)
    out_shape[axis] = n
    out = np.zeros(out_shape, dtype=spec.dtype)
    keep = min(size, n)
    src_start = size // 2 - keep // 2
    dst_start = n // 2 - keep // 2
    src = [slice(None)] * spec.ndim
    dst = [slice(None)] * spec.ndim
    src[axis] = slice(src_start, src_start + keep)
    dst[axis] = slice(dst_start, dst_start + keep)
    out[tuple(dst)] = shifted[tuple(src)]
    return sfft.ifftshift(out, axes=axis)


def centred_spectrum(volume: NDArray[np.floating]) -> NDArray[np.complexfloating]:
    """``rfftn`` of a map whose origin voxel ``N // 2`` is moved to index 0 first."""
    return sfft.rfftn(sfft.ifftshift(np.asarray(volume, dtype=np.float32)))


def resize_spectrum(
    spectrum: NDArray[np.complexfloating],
    shape: tuple[int, int, int],
    voxel_size: float | ArrayLike,
    new_shape: tuple[int, int, int],
    lowpass_A: float | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """The map of :func:`centred_spectrum` (of a ``shape`` box) resampled to ``new_shape`` by
    cropping or zero-padding its spectrum; see :func:`fourier_resize`."""
    p = voxel_size_xyz(voxel_size)
    spec = spectrum
    for axis in (0, 1):
        spec = _centred_resize_axis(spec, axis, new_shape[axis])
    half = new_shape[2] // 2 + 1
    if spec.shape[2] >= half:
        spec = spec[:, :, :half]
    else:
        spec = np.concatenate(
            [spec, np.zeros((*spec.shape[:2], half - spec.shape[2]), spec.dtype)], axis=2
        )
    new_p = p * np.array(shape[::-1]) / np.array(new_shape[::-1])
    if lowpass_A is not None:
        spec = spec * lowpass_response(frequency_grid(new_shape, new_p), lowpass_A)
    out = sfft.irfftn(spec, s=new_shape)
    out *= np.prod(new_shape) / np.prod(shape)
    return sfft.fftshift(out).astype(np.float32), new_p


def fourier_resize(
    volume: NDArray[np.floating],
    voxel_size: float | ArrayLike,
    new_shape: tuple[int, int, int],
    lowpass_A: float | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Resample a map to ``new_shape`` by cropping or zero-padding its centred spectrum.

    The physical extent ``N * p`` is kept per axis, so the new voxel size is ``N p / n`` per axis;
    the origin voxel ``N // 2`` maps to ``n // 2``. Cropping is an ideal anti-aliasing filter;
    ``lowpass_A`` applies :func:`lowpass_response` in the same pass.

    Returns the resampled map (float32) and its voxel size ``(x, y, z)`` in Å.
    """
    vol = np.asarray(volume, dtype=np.float32)
    return resize_spectrum(centred_spectrum(vol), vol.shape, voxel_size, new_shape, lowpass_A)


def lowpass(
    volume: NDArray[np.floating], voxel_size: float | ArrayLike, resolution_A: float
) -> NDArray[np.float32]:
    """Low-pass filter a map at ``resolution_A`` (see :func:`lowpass_response`)."""
    vol = np.asarray(volume, dtype=np.float32)
    spec = sfft.rfftn(vol) * lowpass_response(frequency_grid(vol.shape, voxel_size), resolution_A)
    return sfft.irfftn(spec, s=vol.shape).astype(np.float32)
