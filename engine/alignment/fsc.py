"""Fourier shell correlation between two maps on the same grid.

FSC(k) = Re Σ F1 F2* / sqrt(Σ |F1|² Σ |F2|²) over the shell of radius k (van Heel & Schatz,
J. Struct. Biol. 151, 2005). Shells are one Fourier voxel wide; shell ``i`` holds frequencies
``i / (N p)`` (Å⁻¹) for a cubic box of ``N`` voxels of size ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from align3d.engine.alignment.shells import shell_sums


@dataclass(frozen=True)
class FSCCurve:
    """An FSC curve. ``frequency`` in Å⁻¹ (shell centres), ``fsc`` dimensionless, ``count`` the
    number of Fourier voxels per shell (full sphere)."""

    frequency: NDArray[np.float64]
    fsc: NDArray[np.float64]
    count: NDArray[np.int64]

    @property
    def nyquist_A(self) -> float:
        """The resolution of the last shell (Å): the Nyquist of the shortest axis."""
        return float(1.0 / self.frequency[-1])

    def holds_to_nyquist(self, threshold: float = 0.143) -> bool:
        """Whether the curve never falls below ``threshold`` (after the origin): its
        :meth:`resolution_at` is then the Nyquist, a bound set by the grid (the true
        resolution is that or better)."""
        return not bool(np.any(self.fsc[1:] < threshold))

    def resolution_at(self, threshold: float = 0.143) -> float:
        """Resolution in Å where the curve first falls below ``threshold``, linearly interpolated
        between shells. Returns the Nyquist resolution when the curve never falls below it, and
        ``inf`` when it is below at the first shell after the origin."""
        if self.holds_to_nyquist(threshold):
            return self.nyquist_A
        below = np.nonzero(self.fsc[1:] < threshold)[0]
        i = int(below[0]) + 1
        if i == 1 and self.fsc[0] < threshold:
            return float("inf")
        f0, f1 = self.frequency[i - 1], self.frequency[i]
        c0, c1 = self.fsc[i - 1], self.fsc[i]
        f = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0) if c0 != c1 else f1
        return float(1.0 / f)


def last_shell_A(shape: tuple[int, ...], voxel_size: float) -> float:
    """The resolution (Å) of the last shell of an FSC of maps of ``shape`` (voxels) and
    ``voxel_size`` (Å): the Nyquist of the shortest axis (:attr:`FSCCurve.nyquist_A` of their
    curve; 2 voxels for an even axis, a little more for an odd one).

    >>> last_shell_A((64, 64, 64), 2.0), round(last_shell_A((65, 70, 80), 2.0), 4)
    (4.0, 4.0625)
    """
    box = min(shape)
    return float(box * voxel_size / (box // 2))


def fsc(map1: NDArray[np.floating], map2: NDArray[np.floating], *, voxel_A: float) -> FSCCurve:
    """FSC of two maps on the same grid, up to the Nyquist frequency of the shortest axis.

    Parameters
    ----------
    map1, map2 : arrays of the same ``[z, y, x]`` shape
    voxel_A : voxel size in Å (by keyword)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(16, 16, 16))
    >>> bool(np.allclose(fsc(a, a, voxel_A=1.0).fsc, 1.0))
    True
    """
    a = np.asarray(map1, dtype=np.float32)
    b = np.asarray(map2, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"FSC needs maps on the same grid, got shapes {a.shape} and {b.shape}")
    return fsc_of_spectra(sfft.rfftn(a), sfft.rfftn(b), shape=a.shape, voxel_A=voxel_A)


def fsc_of_spectra(
    fa: NDArray[np.complexfloating],
    fb: NDArray[np.complexfloating],
    *,
    shape: tuple[int, ...],
    voxel_A: float,
) -> FSCCurve:
    """:func:`fsc` from the ``rfftn`` spectra of two maps of ``shape`` (voxels ``[z, y, x]``) and
    ``voxel_A`` Å (so that a map compared with several others is transformed once)."""
    if fa.shape != fb.shape:
        raise ValueError(f"FSC needs spectra of one grid, got {fa.shape} and {fb.shape}")
    cross, pa, pb, count, step = shell_sums(fa, fb, shape, voxel_A)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(pa * pb > 0, cross / np.sqrt(pa * pb), 0.0)
    return FSCCurve(np.arange(len(cross)) * step, curve, count.astype(np.int64))
