"""Bring a map to a working grid: mask, Fourier-crop, low-pass, standardise.

Working grids are coarser than the input (the alignment runs at the low-pass resolution, not at
the data's Nyquist), so each map is first masked at full size, then Fourier-cropped (an ideal
anti-aliasing filter) with the low-pass applied in the same pass. A map already coarser than the
working voxel is only low-passed. Voxel sizes are in Å, ``(x, y, z)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from align3d.engine.alignment.fourier import centred_spectrum, resize_spectrum
from align3d.engine.alignment.geometry import RigidTransform, box_centre, voxel_size_xyz
from align3d.engine.alignment.resample import GridMove, Owned, resample_map


def soft_sphere(
    shape: tuple[int, int, int], *, voxel_A: ArrayLike, radius_A: float, edge_A: float
) -> NDArray[np.float32]:
    """A sphere about the centre of a ``shape`` box of ``voxel_A`` Å voxels: 1 inside
    ``radius_A``, a raised-cosine edge ``edge_A`` wide outside it, 0 beyond (all Å)."""
    p = voxel_size_xyz(voxel_A)
    c = box_centre(shape)
    z = (np.arange(shape[0]) - c[2]) * p[2]
    y = (np.arange(shape[1]) - c[1]) * p[1]
    x = (np.arange(shape[2]) - c[0]) * p[0]
    r = np.sqrt(z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2)
    width = max(edge_A, 1e-6)
    out = (r <= radius_A).astype(np.float32)  # 1 inside, 0 beyond the edge: exact
    edge = (r > radius_A) & (r < radius_A + width)  # the cosine only where it is needed
    t = (r[edge] - radius_A) / width
    out[edge] = (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)
    return out


def default_mask(
    shape: tuple[int, int, int], *, voxel_A: ArrayLike, edge_A: float
) -> NDArray[np.float32]:
    """The mask used when none is given: the sphere inscribed in the box (``voxel_A`` Å
    voxels), with a soft edge ``edge_A`` Å wide inside it, which keeps the box corners (empty
    or noisy) out of the score."""
    p = voxel_size_xyz(voxel_A)
    half_extent = 0.5 * float(np.min(np.array(shape[::-1]) * p))
    edge = min(edge_A, 0.25 * half_extent)
    return soft_sphere(
        shape, voxel_A=p, radius_A=half_extent - edge - float(np.max(p)), edge_A=edge
    )


SOURCE_BOX = 100
"""A map's search input is kept at most this many voxels across (see SourceMap.from_map)."""


@dataclass(frozen=True)
class SourceMap:
    """A map ready to be brought to any working grid: the spectrum of the masked map (computed
    once, cropped for each grid), its shape and voxel size, and its mask; ``mask`` is ``None``
    when the default sphere applies, which is then built on each small grid instead."""

    spectrum: NDArray[np.complexfloating]
    shape: tuple[int, int, int]
    voxel_size_A: NDArray[np.float64]
    mask: NDArray[np.float32] | None

    @classmethod
    def from_map(
        cls,
        volume: NDArray[np.floating],
        voxel_size_A: ArrayLike,
        mask: NDArray | None,
        consume_mask: bool = False,
        spectrum: Owned | None = None,
    ) -> SourceMap:
        """The map (times its mask) ready for the working grids. A map larger than
        :data:`SOURCE_BOX` voxels across is Fourier-cropped to it at once: no working grid is
        finer (the finest, the refinement's, has at most REFINE_BOX_MAX voxels across the larger
        map), and memory then holds a small spectrum instead of a full-size one.
        ``consume_mask``: the mask's memory may hold the masked map (one full-size array less).
        ``spectrum``: the map's :func:`centred_spectrum`, handed over, where the caller has it
        already (a map without a mask only)."""
        if spectrum is not None and mask is not None:
            raise ValueError("a precomputed spectrum is of the map without its mask")
        given = None if spectrum is None else spectrum.take()
        del spectrum
        vol = np.asarray(volume, dtype=np.float32)
        if given is not None and given.shape != (*vol.shape[:-1], vol.shape[-1] // 2 + 1):
            raise ValueError(
                f"a precomputed spectrum of shape {given.shape} is not that of a {vol.shape} map"
            )
        p = voxel_size_xyz(voxel_size_A)
        large = max(vol.shape) > SOURCE_BOX
        shape: tuple[int, int, int] = vol.shape  # type: ignore[assignment]
        small_p = p
        if large:
            extent = np.array(vol.shape[::-1]) * p  # x, y, z
            target = float(extent.max()) / SOURCE_BOX
            shape = tuple(int(n) for n in np.minimum(vol.shape, np.ceil(extent / target)[::-1]))  # type: ignore[assignment]
            small_p = p * np.array(vol.shape[::-1]) / np.array(shape[::-1])
        kept_mask = mask
        if mask is not None and large:
            kept_mask = resample_map(
                mask,
                GridMove(
                    transform=RigidTransform(), in_voxel_A=p, out_shape=shape, out_voxel_A=small_p
                ),
                kind="mask",
            )
        if mask is None:
            masked = vol
        elif large and consume_mask and mask.dtype == np.float32 and mask.flags.writeable:
            masked = np.multiply(mask, vol, out=mask)
        else:
            masked = vol * mask
        spectrum = centred_spectrum(masked) if given is None else given
        del masked, given
        if not large:
            return cls(spectrum, vol.shape, p, kept_mask)
        small, small_p = resize_spectrum(
            spectrum, shape=vol.shape, voxel_A=p, new_shape=shape, overwrite=True
        )
        del spectrum
        return cls(centred_spectrum(small), shape, small_p, kept_mask)


@dataclass(frozen=True)
class WorkingMap:
    """A map on its working grid. ``values`` are masked, low-passed and standardised;
    ``weights`` is the mask on the same grid (values in [0, 1])."""

    values: NDArray[np.float32]
    weights: NDArray[np.float32]
    voxel_size_A: NDArray[np.float64]


def working_map(
    source: SourceMap, *, lowpass_A: float, voxel_A: float, edge_A: float, taper: bool = True
) -> WorkingMap:
    """Fourier-crop a map to a voxel of about ``voxel_A`` (never finer than the input)
    and low-pass it at ``lowpass_A``. ``weights`` is the map's own mask moved to that grid, or
    the inscribed sphere with an ``edge_A`` soft edge. With ``taper`` the values are multiplied
    by the weights (for searches, which need the box edges quiet); without it they are left
    whole, so that a moving map is not cut by a sphere that does not move with it."""
    shape = np.array(source.shape)
    extent_zyx = shape * source.voxel_size_A[::-1]
    new_shape = tuple(int(n) for n in np.minimum(shape, np.ceil(extent_zyx / voxel_A)))
    values, new_p = resize_spectrum(
        source.spectrum,
        shape=source.shape,
        voxel_A=source.voxel_size_A,
        new_shape=new_shape,
        lowpass_A=lowpass_A,
    )
    if source.mask is None:
        weights = default_mask(new_shape, voxel_A=new_p, edge_A=edge_A)
    else:
        identity = RigidTransform()
        weights = resample_map(
            source.mask,
            GridMove(
                transform=identity,
                in_voxel_A=source.voxel_size_A,
                out_shape=new_shape,
                out_voxel_A=new_p,
            ),
            kind="mask",
        )
    values = _standardise(values * weights if taper else values, weights, zero_outside=taper)
    return WorkingMap(values, weights, new_p)


def on_cube(
    work: WorkingMap, box: int, voxel_A: float
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Resample a working map and its weights onto a cube of ``box`` voxels of ``voxel_A`` Å
    (same centre), for searches that need both maps on one grid."""
    shape = (box, box, box)
    move = GridMove(
        transform=RigidTransform(),
        in_voxel_A=work.voxel_size_A,
        out_shape=shape,
        out_voxel_A=voxel_A,
    )
    values = resample_map(work.values, move)
    weights = resample_map(work.weights, move, kind="mask")
    return _standardise(values * weights, weights), weights


def _standardise(
    values: NDArray[np.floating], weights: NDArray[np.floating], zero_outside: bool = True
) -> NDArray[np.float32]:
    """Zero weighted mean and unit weighted variance inside the mask (and, with
    ``zero_outside``, multiplied by the mask again so that the outside is 0)."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        return np.zeros_like(values, dtype=np.float32)
    mean = float(np.sum(w * values) / total)
    centred = (values - mean) * w if zero_outside else values - mean
    std = float(np.sqrt(np.sum(w * centred**2) / total))
    return (centred / std if std > 0 else centred).astype(np.float32)
