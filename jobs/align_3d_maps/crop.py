"""Where the figures' slices have something to show: each central plane cropped to the
density of the maps in it, with a margin, so that a small molecule in a large box fills its
panel instead of a speck in an empty square.

The support of a plane is its density above both :data:`.grids.CONTENT_FRACTION` of its
maximum and the solvent's noise (median + 4 robust deviations of the plane, averaged over 3 x 3
voxels);
the window holds the middle 99% of that density's mass along each axis (a stray noise voxel
does not stretch it), of every map given (the reference and the aligned map: disagreement
where only one has density stays in view), plus a margin of 10% of the plane's side (at least
:data:`MARGIN_MIN` voxels). A plane without support is shown whole. Voxels throughout; numpy
only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from align3d.jobs.align_3d_maps.grids import CONTENT_FRACTION
from align3d.jobs.align_3d_maps.slices import Slices

MARGIN = 0.10
"""Margin around the content, as a share of the plane's side."""
MARGIN_MIN = 4
"""The smallest margin, voxels."""
MASS_KEPT = 0.99
"""Share of the support's mass the window holds along each axis."""
NOISE_DEVIATIONS = 4.0
"""Density this many robust deviations above the plane's median stands out of the noise."""


@dataclass(frozen=True)
class Window:
    """A crop of a plane: rows ``row_start:row_stop`` and columns ``col_start:col_stop``
    (voxels, numpy's ``[row, column]`` order as the plane is plotted)."""

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int

    def of(self, plane: NDArray) -> NDArray:
        """The part of ``plane`` inside the window (a view)."""
        return plane[self.row_start : self.row_stop, self.col_start : self.col_stop]


Windows = dict[str, Window]
"""A window per plane name (``xy``, ``xz``, ``yz``), as in :data:`.slices.Slices`."""


def _smoothed(plane: NDArray) -> NDArray[np.float64]:
    """The plane averaged over 3 x 3 voxels inside it (the outermost ring of voxels, which has
    no full neighbourhood, is dropped): single noisy voxels fade."""
    values = np.asarray(plane, dtype=np.float64)
    rows, cols = values.shape[0] - 2, values.shape[1] - 2
    return sum(values[i : i + rows, j : j + cols] for i in range(3) for j in range(3)) / 9.0


def support_weights(plane: NDArray) -> NDArray[np.float64]:
    """The plane's density above its content threshold (0 elsewhere, and on the plane's
    outermost ring): above ``CONTENT_FRACTION`` of the smoothed plane's maximum and above its
    noise."""
    weights = np.zeros(plane.shape, dtype=np.float64)
    if min(plane.shape) < 3:
        return weights
    smooth = _smoothed(plane)
    median = float(np.median(smooth))
    deviation = 1.4826 * float(np.median(np.abs(smooth - median)))
    threshold = max(CONTENT_FRACTION * float(smooth.max()), median + NOISE_DEVIATIONS * deviation)
    weights[1:-1, 1:-1] = np.where(smooth > threshold, smooth - threshold, 0.0)
    return weights


def _span(mass: NDArray[np.float64], size: int) -> tuple[int, int]:
    """The start and stop (voxels) that hold the middle ``MASS_KEPT`` of ``mass`` (a profile
    along one axis of ``size`` voxels), widened by the margin and kept inside the plane."""
    cumulative = np.cumsum(mass) / mass.sum()
    tail = (1.0 - MASS_KEPT) / 2.0
    first = int(np.searchsorted(cumulative, tail))
    last = int(np.searchsorted(cumulative, 1.0 - tail))
    margin = max(MARGIN_MIN, round(MARGIN * size))
    return max(0, first - margin), min(size, last + 1 + margin)


def content_windows(*maps: Slices) -> Windows:
    """One window per plane that holds the content of that plane in every one of ``maps`` (the
    same planes of maps on one grid); the whole plane where none has any."""
    windows: Windows = {}
    for name, first in maps[0].items():
        weights = sum(support_weights(slices[name]) for slices in maps)
        rows, cols = first.shape
        if not np.any(weights > 0):
            windows[name] = Window(0, rows, 0, cols)
            continue
        row_start, row_stop = _span(weights.sum(axis=1), rows)
        col_start, col_stop = _span(weights.sum(axis=0), cols)
        windows[name] = Window(row_start, row_stop, col_start, col_stop)
    return windows


def cropped(slices: Slices, windows: Windows | None) -> Slices:
    """Each plane of ``slices`` inside its window (all of it without ``windows``)."""
    if windows is None:
        return slices
    return {name: windows[name].of(plane) for name, plane in slices.items()}
