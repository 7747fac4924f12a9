"""Move a map (or mask) onto another grid with a rigid transform.

The aligned map on the output (reference) grid is ``V_out(y) = M(F^flip R^T (y - t))``
(docs/conventions.md#maps). Input and output grids may differ in shape (odd, even, non-cubic)
and voxel size; coordinates are matched in Å about each box's centre voxel ``N // 2``.

Maps use a cubic B-spline with exact interpolation (prefiltered), which keeps FSC against the
original above 0.9 to 0.8 of Nyquist after a move and a move back (see tests). Masks use trilinear
interpolation, a convex combination of neighbours, so they stay in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from align3d.engine.alignment.fourier import centred_spectrum, resize_spectrum
from align3d.engine.alignment.geometry import RigidTransform, box_centre, voxel_size_xyz
from align3d.engine.alignment.spline.affine import affine_cubic, affine_cubic_slabs, affine_linear
from align3d.engine.alignment.spline.prefilter import spline_coefficients


@dataclass(frozen=True, kw_only=True)
class GridMove:
    """A rigid move of a volume onto another grid, every part named (keywords only, so that
    the two voxel sizes cannot be swapped): ``transform`` maps points of the volume into the
    output frame (``y = R F^flip x + t``, Å about box centres); ``in_voxel_A`` is the volume's
    voxel size and ``out_voxel_A`` the output's, in Å (scalar or ``(x, y, z)``); ``out_shape``
    the output's voxels ``[z, y, x]``."""

    transform: RigidTransform
    in_voxel_A: float | ArrayLike
    out_shape: tuple[int, int, int]
    out_voxel_A: float | ArrayLike


def index_mapping(
    move: GridMove, in_shape: tuple[int, ...]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Affine map from output voxel indices to input voxel indices (``x, y, z`` order) of
    ``move`` applied to a volume of ``in_shape``.

    Output index ``o`` sits at ``y = (o - c_out) p_out`` Å, which comes from the input point
    ``x = F^f R^T (y - t)`` at index ``x / p_in + c_in``. Returns ``(matrix, offset)`` with
    ``index_in = matrix @ o + offset``.
    """
    p_in = voxel_size_xyz(move.in_voxel_A)
    p_out = voxel_size_xyz(move.out_voxel_A)
    back = move.transform.linear.T  # (R F^f)^T = F^f R^T
    matrix = (back * p_out[None, :]) / p_in[:, None]
    centre_out_A = box_centre(move.out_shape) * p_out
    offset = box_centre(in_shape) - (back @ (centre_out_A + move.transform.shift_A)) / p_in
    return matrix, offset


def resample_map(
    volume: NDArray[np.floating], move: GridMove, kind: Literal["map", "mask"] = "map"
) -> NDArray[np.float32]:
    """Move ``volume`` (array ``[z, y, x]``) onto another grid as ``move`` says.

    ``kind``: ``"map"`` (cubic B-spline) or ``"mask"`` (trilinear, values stay in [0, 1]).
    Points that come from outside the input box are 0. The input is used as it is: to move a
    map onto a coarser grid without aliasing, use :func:`move_map`.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a 3-D volume, got shape {vol.shape}")
    matrix, offset = index_mapping(move, vol.shape)
    out_shape = tuple(move.out_shape)
    if kind == "mask":
        return affine_linear(vol, matrix, offset, out_shape)
    if kind != "map":
        raise ValueError(f"kind must be 'map' or 'mask', got {kind!r}")
    coeffs = spline_coefficients(vol, dtype=np.float32)
    return affine_cubic(coeffs, matrix, offset, out_shape)


OVERSAMPLING = 1.5
"""A map moved onto a coarser grid is first Fourier-cropped to this much finer than the output
voxel (band-limited at the output's Nyquist), so that the cubic spline interpolates an
oversampled signal: no aliasing, and little interpolation loss up to Nyquist."""


class Owned:
    """An array handed over (a map to :func:`move_map`, a spectrum to the search), which may
    then reuse or free its memory: the caller keeps no other reference to it."""

    def __init__(self, array: NDArray[Any]) -> None:
        self._array: NDArray[Any] | None = array

    def take(self) -> NDArray[Any]:
        array, self._array = self._array, None
        if array is None:
            raise ValueError("this map was handed over already")
        return array


def move_map(volume: NDArray[np.float32] | Owned, move: GridMove) -> NDArray[np.float32]:
    """Move a map onto another grid as ``move`` says (cubic B-spline), without aliasing.

    When the output voxel is coarser than the input's, the input is first Fourier-cropped to a
    voxel :data:`OVERSAMPLING` times finer than the output's (never finer than its own) and
    low-passed to vanish at the output's Nyquist frequency: what the coarser grid cannot carry
    is removed, not folded back. Otherwise the map is interpolated as it is.
    A map given as :class:`Owned` lends its memory: it holds the spline coefficients, and its
    spectrum replaces it on the way (at most two full-size arrays at once, besides the output).
    """
    return affine_cubic(*_spline_and_mapping(volume, move), tuple(move.out_shape))


def move_map_slabs(
    volume: NDArray[np.float32] | Owned, move: GridMove
) -> Iterator[NDArray[np.float32]]:
    """:func:`move_map`, the output in ``z`` slabs as they are computed (to be written as they
    come: the whole output is never in memory)."""
    return affine_cubic_slabs(*_spline_and_mapping(volume, move), tuple(move.out_shape))


def _spline_and_mapping(
    volume: NDArray[np.float32] | Owned, move: GridMove
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.float64]]:
    """The spline coefficients of the map as :func:`move_map` interpolates it (band-limited for
    a coarser output) and the index mapping onto the output grid."""
    owned = isinstance(volume, Owned)
    vol = volume.take() if isinstance(volume, Owned) else np.asarray(volume)
    p_in = voxel_size_xyz(move.in_voxel_A)
    p_out = voxel_size_xyz(move.out_voxel_A)
    if float(np.max(p_out / p_in)) > 1.01:
        target = np.maximum(p_in, p_out / OVERSAMPLING)
        shape = vol.shape
        extent = np.array(shape[::-1]) * p_in  # x, y, z
        crop = tuple(int(n) for n in np.minimum(shape[::-1], np.ceil(extent / target))[::-1])
        nyquist_A = 2.0 * float(np.max(p_out))
        spectrum = centred_spectrum(vol)
        del vol  # freed when owned
        # the low-pass edge ends at the output's Nyquist (lowpass_response: 0 above 1.1 / res)
        vol, p_in = resize_spectrum(
            spectrum,
            shape=shape,
            voxel_A=p_in,
            new_shape=crop,
            lowpass_A=1.1 * nyquist_A,
            overwrite=True,
        )  # type: ignore[arg-type]
        del spectrum
        owned = True
    matrix, offset = index_mapping(replace(move, in_voxel_A=p_in), vol.shape)
    coeffs = spline_coefficients(vol, dtype=np.float32, in_place=owned)
    del vol
    return coeffs, matrix, offset
