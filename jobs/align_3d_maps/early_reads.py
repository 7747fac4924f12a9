"""The two maps of ``align3d align``, read and Fourier-transformed while the numerical stack loads.

A command's process spends its first ~0.4 s (2-core machine) importing scipy, numba and the
compiled kernels, on one core, before it can align anything. Reading the two maps and the
full-size FFTs that the FSC and the search start from need none of that, so a thread does them
meanwhile, on the other core: file reads and FFTs release the GIL. This module imports only
numpy and :mod:`align3d.slots.mrc` (the thread imports scipy.fft), so the thread never waits on the
modules the main thread is importing.

Memory: the thread keeps of the reference what a job keeps (its spectrum and central slices)
and lets the map go before it reads the moving map; then the moving map and, when it lies on
the reference's grid, its spectrum: what the sequential path holds at its peak.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from align3d.jobs.align_3d_maps.slices import Slices, central_slices
from align3d.slots.mrc import MapData, MapHeader, read_map


@dataclass(frozen=True)
class ReferenceRead:
    """What aligning any volume needs of the reference's file: its box ``shape`` ``[z, y, x]``,
    voxel size (Å, ``x, y, z``) and header, its ``rfftn`` and its central slices."""

    shape: tuple[int, int, int]
    voxel_size_A: tuple[float, float, float]
    header: MapHeader
    spectrum: NDArray[np.complex64]
    slices: Slices

    @classmethod
    def of(cls, reference: MapData, workers: int) -> ReferenceRead:
        """The reference's spectrum (FFTs on ``workers`` threads) and slices."""
        import scipy.fft as sfft

        spectrum = sfft.rfftn(reference.data, workers=workers)
        return cls(
            reference.shape,
            reference.voxel_size_A,
            reference.header,
            spectrum,
            central_slices(reference.data),
        )


def on_grid(
    volume: MapData, shape: tuple[int, ...], voxel_size_A: tuple[float, float, float]
) -> bool:
    """Whether ``volume`` lies on the grid of ``shape`` and ``voxel_size_A`` (Å) already: it is
    then compared with the reference as it is, and its spectrum is the search's too."""
    return volume.shape == tuple(shape) and bool(
        np.allclose(volume.voxel_size_A, voxel_size_A, rtol=1e-6)
    )


@dataclass(frozen=True)
class MovingRead:
    """The moving map as read and, when it lies on the reference's grid, its ``rfftn``."""

    map: MapData
    spectrum: NDArray[np.complex64] | None


class EarlyReads:
    """The reference and the moving map read in a thread, from now on. :meth:`reference` and
    :meth:`moving` wait for theirs, and raise its read error (a :class:`align3d.slots.errors.MapReadError`
    naming the file) where reading it in turn would have. Voxel sizes in Å override the
    headers' (``None``: the header's)."""

    def __init__(
        self,
        reference: Path,
        reference_voxel_A: float | None,
        moving: Path,
        moving_voxel_A: float | None,
    ) -> None:
        reference_read: Future[ReferenceRead] = Future()
        moving_read: Future[MovingRead] = Future()
        self._reference: Future[ReferenceRead] | None = reference_read
        self._moving: Future[MovingRead] | None = moving_read
        threading.Thread(
            target=_read,
            args=(
                reference,
                reference_voxel_A,
                moving,
                moving_voxel_A,
                reference_read,
                moving_read,
            ),
            name="early-reads",
            daemon=True,  # an interrupted command does not wait for it
        ).start()

    def reference(self) -> ReferenceRead:
        """The reference (waiting for it), handed over once."""
        future, self._reference = self._reference, None
        if future is None:
            raise ValueError("the reference read early was handed over already")
        return future.result()

    def moving(self) -> MovingRead:
        """The moving map (waiting for it), handed over once: this object keeps no reference to
        it, so that the caller can let its memory go."""
        future, self._moving = self._moving, None
        if future is None:
            raise ValueError("the moving map read early was handed over already")
        return future.result()


def _read(
    reference: Path,
    reference_voxel_A: float | None,
    moving: Path,
    moving_voxel_A: float | None,
    reference_read: Future[ReferenceRead],
    moving_read: Future[MovingRead],
) -> None:
    """The thread's work (it holds only the futures, which the caller drops once handed over)."""
    # one FFT thread: the other core is importing meanwhile
    try:
        ref = ReferenceRead.of(read_map(reference, reference_voxel_A), workers=1)
    except BaseException as exc:  # handed to the main thread, which raises it
        reference_read.set_exception(exc)
        moving_read.set_exception(exc)
        return
    reference_read.set_result(ref)
    shape, voxel = ref.shape, ref.voxel_size_A
    del ref
    try:
        volume = read_map(moving, moving_voxel_A)
        spectrum = None
        if on_grid(volume, shape, voxel):
            import scipy.fft as sfft

            spectrum = sfft.rfftn(volume.data, workers=1)
        moving_read.set_result(MovingRead(volume, spectrum))
    except BaseException as exc:
        moving_read.set_exception(exc)
