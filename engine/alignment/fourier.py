"""Fourier-space helpers: spatial frequencies, centred Fourier resizing, low-pass filtering.

Maps follow the box-centre convention (origin at voxel ``N // 2`` per axis). Every function here
keeps that origin fixed: ``ifftshift`` moves voxel ``N // 2`` to index 0 before a transform and
``fftshift`` moves it back, for odd and even boxes alike. Frequencies are in Å⁻¹.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike, NDArray

from align3d.engine.alignment.geometry import voxel_size_xyz
from align3d.engine.alignment.spectra import lowpass_in_place


def frequency_grid(
    shape: tuple[int, int, int], voxel_size: float | ArrayLike, real: bool = True
) -> NDArray[np.float64]:
    """Spatial frequency magnitude ``|k|`` in Å⁻¹ on the (r)fftn layout of a ``[z, y, x]`` box."""
    px, py, pz = voxel_size_xyz(voxel_size)
    kz = sfft.fftfreq(shape[0], d=pz)[:, None, None]
    ky = sfft.fftfreq(shape[1], d=py)[None, :, None]
    kx = (sfft.rfftfreq if real else sfft.fftfreq)(shape[2], d=px)[None, None, :]
    return np.sqrt(kz**2 + ky**2 + kx**2)


def rfft_weights(n_last: int) -> NDArray[np.float64]:
    """How many voxels of the full spectrum each column of an ``rfftn`` half-spectrum stands for,
    along a last axis of ``n_last`` voxels: 2, except 1 for the zero column (and the Nyquist
    column of an even axis). Sums over the full spectrum (Parseval, FSC shells) need them."""
    weight = np.full(n_last // 2 + 1, 2.0)
    weight[0] = 1.0
    if n_last % 2 == 0:
        weight[-1] = 1.0
    return weight


def lowpass_response(frequency: ArrayLike, resolution_A: float) -> NDArray[np.float64]:
    """Low-pass transfer function: 1 below ``0.9 / resolution_A``, a raised-cosine edge, and 0
    above ``1.1 / resolution_A`` (half amplitude at the resolution itself)."""
    k = np.asarray(frequency, dtype=np.float64)
    cut = 1.0 / resolution_A
    lo, hi = 0.9 * cut, 1.1 * cut
    ramp = 0.5 * (1.0 + np.cos(np.pi * np.clip((k - lo) / (hi - lo), 0.0, 1.0)))
    return ramp


def _origin_phase(freqs: NDArray, n: int) -> NDArray[np.complex128]:
    """``exp(2πi f (n // 2) / n)``: moves voxel ``n // 2`` of an ``n`` axis to index 0."""
    return np.exp(2j * np.pi * freqs * (n // 2) / n)


def _along(vector: NDArray, axis: int, ndim: int = 3) -> NDArray:
    shape = [1] * ndim
    shape[axis] = vector.size
    return vector.reshape(shape)


def _gather(spec: NDArray, indices: NDArray[np.intp], axis: int) -> NDArray:
    """``np.take(spec, indices, axis)`` for indices that form a few runs of consecutive values
    (the kept frequencies of a centred crop: two runs), by slicing each run. ``np.take`` first
    copies a non-contiguous ``spec`` (a view of the kept x columns) whole: 2-3x slower for a
    256^3 spectrum cropped to a working grid."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    parts = []
    for run in np.split(indices, breaks):
        where: list[object] = [slice(None)] * spec.ndim
        where[axis] = slice(int(run[0]), int(run[-1]) + 1)
        parts.append(spec[tuple(where)])
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


def _resize_axis(spec: NDArray[np.complexfloating], axis: int, n: int) -> NDArray:
    """Crop or zero-pad one full (non-rfft) axis of a spectrum to ``n`` frequencies about 0,
    moving the origin voxel ``N // 2`` to index 0 on the way (a phase on the kept frequencies,
    cheaper than shifting the whole map).

    Only the kept frequencies are touched. An even axis has a single Nyquist bin standing for
    both +N/2 and -N/2: when padding, it is split between the two new bins; when cropping to an
    even size, the two old bins that fold onto the new Nyquist bin are summed. A real map stays
    real and its origin stays in place.
    """
    size = spec.shape[axis]
    keep = min(size, n)
    freqs = np.arange(-(keep // 2), (keep - 1) // 2 + 1)
    shape = list(spec.shape)
    shape[axis] = n
    out = np.zeros(shape, dtype=spec.dtype)

    def take(f: NDArray) -> NDArray:
        sub = _gather(spec, f % size, axis)
        return sub * _along(_origin_phase(f, size), axis).astype(spec.dtype)

    def index(f: NDArray | int) -> tuple:
        where: list[object] = [slice(None)] * spec.ndim
        where[axis] = np.atleast_1d(f) % n
        return tuple(where)

    out[index(freqs)] = take(freqs)
    nyquist = np.array([size // 2])
    if n > size and size % 2 == 0:  # split the old Nyquist bin into ±size/2
        half = take(-nyquist) / 2
        out[index(-nyquist)] = half
        out[index(nyquist)] = half
    elif n < size and n % 2 == 0:  # fold +n/2 onto the new Nyquist bin
        out[index(-n // 2)] += take(np.array([n // 2]))
    return out


def centred_spectrum(volume: NDArray[np.floating]) -> NDArray[np.complexfloating]:
    """``rfftn`` of a map, as is: its origin is at voxel ``N // 2``, which
    :func:`resize_spectrum` accounts for."""
    return sfft.rfftn(np.asarray(volume, dtype=np.float32))


def resize_spectrum(
    spectrum: NDArray[np.complexfloating],
    *,
    shape: tuple[int, int, int],
    voxel_A: float | ArrayLike,
    new_shape: tuple[int, int, int],
    lowpass_A: float | None = None,
    overwrite: bool = False,
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """The map of :func:`centred_spectrum` (of a ``shape`` box of ``voxel_A`` Å voxels)
    resampled to ``new_shape`` by cropping or zero-padding its spectrum; see
    :func:`fourier_resize`. Everything but the spectrum by keyword. ``overwrite``: the
    spectrum is the caller's to lose (on the same grid, the low-pass is applied to it in place
    instead of to a copy)."""
    p = voxel_size_xyz(voxel_A)
    if tuple(new_shape) == tuple(shape):  # the same grid: only the low-pass
        spec = spectrum if overwrite else spectrum.copy()
        if lowpass_A is not None:
            lowpass_in_place(spec, shape=shape, voxel_A=p, resolution_A=lowpass_A)
        return sfft.irfftn(spec, s=shape).astype(np.float32, copy=False), p
    half = new_shape[2] // 2 + 1
    keep = min(half, spectrum.shape[2])
    # the x columns beyond ``keep`` are dropped whatever happens to z and y: drop them first
    # (a view), so that the z and y passes touch only the columns that stay
    spec = _resize_axis(_resize_axis(spectrum[:, :, :keep], 0, new_shape[0]), 1, new_shape[1])
    spec = spec[:, :, :keep] * _origin_phase(np.arange(keep), shape[2]).astype(spec.dtype)
    if keep < half:
        spec = np.concatenate([spec, np.zeros((*spec.shape[:2], half - keep), spec.dtype)], axis=2)
        if shape[2] % 2 == 0:  # the old Nyquist bin now stands for +N/2 only (with its mirror)
            spec[:, :, shape[2] // 2] *= 0.5
    elif new_shape[2] % 2 == 0 and new_shape[2] < shape[2]:
        # new Nyquist plane: fold in the old -n/2 plane, the Hermitian mirror of the +n/2 one
        plane = spec[:, :, -1]
        mirror = np.conj(
            plane[(-np.arange(plane.shape[0])) % plane.shape[0]][
                :, (-np.arange(plane.shape[1])) % plane.shape[1]
            ]
        )
        spec[:, :, -1] = plane + mirror
    new_p = p * np.array(shape[::-1]) / np.array(new_shape[::-1])
    if lowpass_A is not None:
        lowpass_in_place(spec, shape=new_shape, voxel_A=new_p, resolution_A=lowpass_A)
    out = sfft.irfftn(spec, s=new_shape)
    out *= np.prod(new_shape) / np.prod(shape)
    return sfft.fftshift(out).astype(np.float32), new_p


def fourier_resize(
    volume: NDArray[np.floating],
    *,
    voxel_A: float | ArrayLike,
    new_shape: tuple[int, int, int],
    lowpass_A: float | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Resample a map to ``new_shape`` by cropping or zero-padding its centred spectrum.

    The physical extent ``N * p`` is kept per axis, so the new voxel size is ``N p / n`` per axis;
    the origin voxel ``N // 2`` maps to ``n // 2``. Cropping is an ideal anti-aliasing filter;
    ``lowpass_A`` applies :func:`lowpass_response` in the same pass. ``voxel_A``: the map's
    voxel size in Å; everything but the map by keyword.

    Returns the resampled map (float32) and its voxel size ``(x, y, z)`` in Å.
    """
    vol = np.asarray(volume, dtype=np.float32)
    spectrum = centred_spectrum(vol)
    return resize_spectrum(
        spectrum,
        shape=vol.shape,
        voxel_A=voxel_A,
        new_shape=new_shape,
        lowpass_A=lowpass_A,
        overwrite=True,
    )


def lowpass(
    volume: NDArray[np.floating], *, voxel_A: float | ArrayLike, resolution_A: float
) -> NDArray[np.float32]:
    """Low-pass filter a map of ``voxel_A`` Å voxels at ``resolution_A`` Å (see
    :func:`lowpass_response`)."""
    vol = np.asarray(volume, dtype=np.float32)
    spec = sfft.rfftn(vol) * lowpass_response(frequency_grid(vol.shape, voxel_A), resolution_A)
    return sfft.irfftn(spec, s=vol.shape).astype(np.float32)
