"""Write a map slab by slab, while the next slab is computed; ask for input files ahead.

A moved map need not exist whole in memory before it is written: :func:`write_map_slabs` takes
its ``z`` slabs as they are computed and writes each one from a background thread, so the
bytes go out while the kernels work on the next slab, and the process holds a few slabs instead
of a full-size output. The header is mrcfile's (mode 2, float32), with the statistics gathered
on the way and written last; the file appears atomically (:mod:`align3d.slots.atomic`), complete or
not at all.

:func:`read_ahead` asks the kernel to read files into the page cache in the background
(``posix_fadvise WILLNEED``): the next map's bytes arrive while this one is computed, at no
cost in the process's own memory.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
from numpy.typing import NDArray

from align3d.slots.atomic import atomic_write


@dataclass
class RunningStatistics:
    """Minimum, maximum, mean and standard deviation (MRC ``dmin, dmax, dmean, rms``) of a map
    given in pieces; the same numbers as for the whole array at once."""

    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float = np.inf
    high: float = -np.inf

    def add(self, values: NDArray[np.float32]) -> None:
        flat = values.reshape(-1)
        if flat.size == 0:
            return
        self.count += flat.size
        self.total += float(np.add.reduce(flat, dtype=np.float64))
        self.squares += float(np.dot(flat, flat))
        self.low = min(self.low, float(flat.min()))
        self.high = max(self.high, float(flat.max()))

    def set_header(self, header: np.recarray) -> None:
        if self.count == 0:
            return
        mean = self.total / self.count
        header.dmin = np.float32(self.low)
        header.dmax = np.float32(self.high)
        header.dmean = np.float32(mean)
        header.rms = np.float32(np.sqrt(max(self.squares / self.count - mean * mean, 0.0)))


def read_ahead(paths: Sequence[Path]) -> None:
    """Ask the kernel to start reading these files into the page cache (best effort: nothing
    happens where ``posix_fadvise`` is missing or a file cannot be opened)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


_DONE = None


def write_map_slabs(
    path: str | os.PathLike,
    shape: tuple[int, int, int],
    voxel_size_A: tuple[float, float, float],
    slabs: Iterable[NDArray[np.float32]],
    origin_A: tuple[float, float, float] | None = None,
    nstart: tuple[int, int, int] | None = None,
    labels: list[str] | None = None,
) -> Path:
    """Write a float32 MRC map of ``shape`` (``z, y, x``) from its ``z`` slabs, in order.

    Each slab is written by a background thread while the next is computed (at most one slab
    waits). A slab count that does not fill ``shape`` exactly is an error, and so is any error
    while computing a slab: then no file is left behind."""
    nz, ny, nx = shape

    def write(tmp: Path) -> None:
        with mrcfile.new_mmap(tmp, shape, mrc_mode=2, overwrite=True) as mrc:
            mrc.voxel_size = voxel_size_A
            if origin_A is not None:
                mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = origin_A
            if nstart is not None:
                mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = nstart
            if labels is not None:
                mrc.header.label[:] = b""
                mrc.header.nlabl = 0
                for label in labels:
                    mrc.add_label(label)
            header_dtype = mrc.header.dtype
            offset = mrc.header.nbytes + mrc.extended_header.nbytes
        stats = RunningStatistics()
        planes = _write_planes(tmp, offset, ny, nx, slabs, stats)
        if planes != nz:
            raise ValueError(f"{path}: {planes} planes were computed for a map of {nz}")
        with tmp.open("r+b") as fh:
            header = np.frombuffer(bytearray(fh.read(header_dtype.itemsize)), header_dtype)
            stats.set_header(header.view(np.recarray)[0])
            fh.seek(0)
            fh.write(header.tobytes())

    return atomic_write(Path(path), write)


def _write_planes(
    tmp: Path,
    offset: int,
    ny: int,
    nx: int,
    slabs: Iterable[NDArray[np.float32]],
    stats: RunningStatistics,
) -> int:
    """Write the slabs from ``offset`` on, from a writer thread; returns the planes written."""
    pending: queue.Queue[NDArray[np.float32] | None] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def writer() -> None:
        with tmp.open("r+b") as fh:
            fh.seek(offset)
            while (slab := pending.get()) is not _DONE:
                if failure:
                    continue  # keep taking slabs so that the producer never blocks
                try:
                    fh.write(memoryview(slab).cast("B"))
                    stats.add(slab)
                except BaseException as exc:  # reported to the caller below
                    failure.append(exc)

    thread = threading.Thread(target=writer, name="map-writer", daemon=True)
    thread.start()
    planes = 0
    try:
        for slab in slabs:
            values = np.ascontiguousarray(slab, dtype=np.float32)
            if values.ndim != 3 or values.shape[1:] != (ny, nx):
                raise ValueError(f"a slab of shape {values.shape} for planes of {ny} x {nx}")
            planes += values.shape[0]
            pending.put(values)
            if failure:
                break
    finally:
        pending.put(_DONE)
        thread.join()
    if failure:
        raise failure[0]
    return planes
