"""Translation search by FFT cross-correlation, without wrap-around, within a maximum shift.

For two maps ``a`` (reference) and ``b`` on the same cubic grid of voxel size ``p``, the
cross-correlation ``CC(t) = Σ_y a(y) b(y - t)`` is computed for every shift at once. Both maps
are zero-padded to at least ``N + s`` voxels (``s`` the maximum shift in voxels) so that the
shifts of interest never alias with others. The peak is searched inside the ball
``|t| <= max_shift_A`` and refined to sub-voxel precision by a parabola on each axis.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray


def padded_size(box: int, max_shift_vox: float) -> int:
    """FFT length that keeps shifts up to ``max_shift_vox`` free of wrap-around."""
    return sfft.next_fast_len(box + int(np.ceil(min(max_shift_vox, box))) + 1, real=True)


def reference_spectrum(reference: NDArray[np.floating], size: int) -> NDArray[np.complex64]:
    """Spectrum of the zero-padded reference (computed once, reused for every candidate)."""
    return sfft.rfftn(reference, s=(size,) * 3)


def best_shift(
    ref_spectrum: NDArray[np.complexfloating],
    moving: NDArray[np.floating],
    voxel_size_A: float,
    max_shift_A: float,
) -> tuple[NDArray[np.float64], float]:
    """Shift ``t`` (Å, ``x, y, z``) maximising ``Σ_y a(y) b(y - t)`` with ``|t| <= max_shift_A``.

    ``ref_spectrum`` comes from :func:`reference_spectrum` on a grid of the same box and voxel
    size as ``moving``. Returns the shift and the correlation value at the peak.
    """
    size = ref_spectrum.shape[0]
    cc = sfft.irfftn(ref_spectrum * sfft.rfftn(moving, s=(size,) * 3).conj(), s=(size,) * 3)
    lag = sfft.fftfreq(size, d=1.0 / size)  # signed lag in voxels for each index
    r2 = lag[:, None, None] ** 2 + lag[None, :, None] ** 2 + lag[None, None, :] ** 2
    limit = max_shift_A / voxel_size_A
    cc_in = np.where(r2 <= limit**2 + 1e-9, cc, -np.inf)
    peak = np.unravel_index(int(np.argmax(cc_in)), cc.shape)
    offsets = []
    for axis in range(3):
        i = peak[axis]
        lo = cc[tuple(np.where(np.arange(3) == axis, (i - 1) % size, peak))]
        hi = cc[tuple(np.where(np.arange(3) == axis, (i + 1) % size, peak))]
        mid = cc[peak]
        denom = lo - 2 * mid + hi
        offsets.append(0.5 * (lo - hi) / denom if denom < 0 else 0.0)
    shift_zyx = np.array([lag[peak[a]] + np.clip(offsets[a], -0.5, 0.5) for a in range(3)])
    shift = shift_zyx[::-1] * voxel_size_A
    norm = float(np.linalg.norm(shift))
    if norm > max_shift_A:
        shift *= max_shift_A / norm
    return shift, float(cc[peak])
