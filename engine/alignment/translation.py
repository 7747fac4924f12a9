"""Translation search by FFT cross-correlation, without wrap-around, within a maximum shift.

For two maps ``a`` (reference) and ``b`` on the same cubic grid of voxel size ``p``, the
cross-correlation ``CC(t) = Σ_y a(y) b(y - t)`` is computed for every shift at once. Both maps
are zero-padded to at least ``N + s`` voxels (``s`` the maximum shift in voxels) so that the
shifts of interest never alias with others. The peak is searched inside the ball
``|t| <= max_shift_A`` and refined to sub-voxel precision by a parabola on each axis. Only the
lags within the ball (and their neighbours) are transformed back: see
:func:`correlation_near_zero`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.jit import run_ranges
from align3d.engine.alignment.resample import GridMove, index_mapping
from align3d.engine.alignment.spline.affine import affine_linear


def padded_size(box: int, max_shift_vox: float) -> int:
    """FFT length that keeps shifts up to ``max_shift_vox`` free of wrap-around."""
    return sfft.next_fast_len(box + int(np.ceil(min(max_shift_vox, box))) + 1, real=True)


def reference_spectrum(reference: NDArray[np.floating], size: int) -> NDArray[np.complex64]:
    """Spectrum of the zero-padded reference (computed once, reused for every candidate)."""
    return sfft.rfftn(reference, s=(size,) * 3)


def correlation_side(size: int, limit_vox: float) -> int:
    """Side of the block of lags that :func:`best_shift` computes on a ``size^3`` grid for
    shifts up to ``limit_vox`` voxels: lags ``-r..r`` on each axis, ``r`` one more than the
    limit (the peak's neighbours, for its parabola), or the whole grid where that is smaller."""
    reach = int(np.ceil(limit_vox)) + 1
    return min(2 * reach + 1, size)


def correlation_near_zero(
    product: NDArray[np.complexfloating], size: int, side: int
) -> NDArray[np.floating]:
    """``irfftn(product, s=(size,) * 3)`` (a circular correlation) at the lags ``-r..r`` of each
    axis only, ``side = 2 r + 1`` (:func:`correlation_side`), laid out like a ``side^3`` FFT grid
    (lag ``L`` at index ``L mod side``), so that its index order is the full grid's. One axis at
    a time, keeping only those lags before the next: the sums of ``irfftn`` (which takes the
    axes in the same order) at a fraction of the cost: ~0.45x at the search's sizes (a 72^3
    grid, lags -7..7). ``product`` is overwritten."""
    if side >= size:
        return sfft.irfftn(product, s=(size,) * 3, overwrite_x=True)
    reach = (side - 1) // 2
    keep = np.r_[0 : reach + 1, size - reach : size]
    planes = sfft.ifft(product, axis=0, overwrite_x=True)[keep]
    rows = sfft.ifft(planes, axis=1, overwrite_x=True)[:, keep]
    return sfft.irfft(rows, n=size, axis=2, overwrite_x=True)[:, :, keep]


def shift_window(size: int, limit_vox: float) -> NDArray[np.intp]:
    """Flat indices, in increasing order, of the lags of a ``size^3`` correlation grid within
    ``limit_vox`` voxels of zero (the shifts a search may take)."""
    lag = sfft.fftfreq(size, d=1.0 / size)  # signed lag in voxels for each index
    r2 = lag[:, None, None] ** 2 + lag[None, :, None] ** 2 + lag[None, None, :] ** 2
    return np.flatnonzero(r2 <= limit_vox**2 + 1e-9)


def best_shift(
    ref_spectrum: NDArray[np.complexfloating],
    moving: NDArray[np.floating],
    voxel_size_A: float,
    max_shift_A: float,
    window: NDArray[np.intp] | None = None,
) -> tuple[NDArray[np.float64], float]:
    """Shift ``t`` (Å, ``x, y, z``) maximising ``Σ_y a(y) b(y - t)`` with ``|t| <= max_shift_A``.

    ``ref_spectrum`` comes from :func:`reference_spectrum` on a grid of the same box and voxel
    size as ``moving``; ``window`` is :func:`shift_window` of the block of lags computed
    (:func:`correlation_side` of that grid and limit) and the limit: computed here when not given
    (a search of many candidates passes it once). Returns the shift and the correlation value
    at the peak.
    """
    size = ref_spectrum.shape[0]
    limit_vox = max_shift_A / voxel_size_A
    side = correlation_side(size, limit_vox)
    product = ref_spectrum * sfft.rfftn(moving, s=(size,) * 3).conj()
    cc = correlation_near_zero(product, size, side)
    del product
    lag = sfft.fftfreq(side, d=1.0 / side)
    if window is None:
        window = shift_window(side, limit_vox)
    # the first maximum in index order, as argmax over the whole grid masked outside the ball
    peak = np.unravel_index(int(window[np.argmax(cc.ravel()[window])]), cc.shape)
    offsets = []
    for axis in range(3):
        i = peak[axis]
        lo = cc[tuple(np.where(np.arange(3) == axis, (i - 1) % side, peak))]
        hi = cc[tuple(np.where(np.arange(3) == axis, (i + 1) % side, peak))]
        mid = cc[peak]
        denom = lo - 2 * mid + hi
        offsets.append(0.5 * (lo - hi) / denom if denom < 0 else 0.0)
    shift_zyx = np.array([lag[peak[a]] + np.clip(offsets[a], -0.5, 0.5) for a in range(3)])
    shift = shift_zyx[::-1] * voxel_size_A
    norm = float(np.linalg.norm(shift))
    if norm > max_shift_A:
        shift *= max_shift_A / norm
    return shift, float(cc[peak])


@dataclass(frozen=True)
class Candidate:
    """A transform and its score at the stage that produced it."""

    transform: RigidTransform
    score: float


def shift_candidates(
    ref_cube: NDArray,
    mov_cube: NDArray,
    voxel_A: float,
    hypotheses: list[RigidTransform],
    max_shift_A: float,
) -> list[Candidate]:
    """Each hypothesis (rotation and hand) with its best shift within ``max_shift_A`` and the
    normalised correlation there, in the order given. Both maps are cubes of one grid."""
    n = ref_cube.shape[0]
    limit_vox = max_shift_A / voxel_A
    size = padded_size(n, limit_vox)
    spectrum = reference_spectrum(ref_cube, size)
    window = shift_window(correlation_side(size, limit_vox), limit_vox)  # best_shift's lags
    ref_norm = float(np.linalg.norm(ref_cube))
    shape = (n, n, n)
    out: list[Candidate | None] = [None] * len(hypotheses)

    def search(_block: int, lo: int, hi: int) -> None:
        for k in range(lo, hi):
            hyp = hypotheses[k]
            # trilinear is enough to rank candidates (the best are refined with cubic splines)
            matrix, offset = index_mapping(
                GridMove(transform=hyp, in_voxel_A=voxel_A, out_shape=shape, out_voxel_A=voxel_A),
                shape,
            )
            rotated = affine_linear(mov_cube, matrix, offset, shape)
            shift, cc = best_shift(spectrum, rotated, voxel_A, max_shift_A, window)
            norm = ref_norm * float(np.linalg.norm(rotated))
            out[k] = Candidate(
                RigidTransform(hyp.rotation, shift, hyp.flip), cc / norm if norm else 0.0
            )

    # the candidates on the threads side by side (each one's numbers do not depend on it)
    run_ranges(search, len(hypotheses))  # every block runs, or its error is raised here
    return cast(list[Candidate], out)
