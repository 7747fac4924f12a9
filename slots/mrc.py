"""Reading and writing MRC maps (thin, typed, on top of mrcfile).

A map is returned as a float32 array indexed ``[z, y, x]`` with its voxel size in Å
``(x, y, z)`` and the header fields that outputs carry over (origin, nstart). Axis order is
normalised: files whose MAPC/MAPR/MAPS are not 1/2/3 are transposed to ``[z, y, x]``.
Writing is atomic (:mod:`align3d.slots.atomic`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np
from numpy.typing import NDArray

from align3d.slots.atomic import atomic_write
from align3d.slots.errors import MapReadError
from align3d.slots.file_kinds import not_a_map
from align3d.slots.mrc_stream import RunningStatistics


@dataclass(frozen=True)
class MapHeader:
    """Header fields kept for outputs: origin in Å ``(x, y, z)`` and ``nstart`` in voxels."""

    origin_A: tuple[float, float, float] = (0.0, 0.0, 0.0)
    nstart: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class MapGrid:
    """What a map's header says, checked: the file, its box ``shape`` ``[z, y, x]`` (axes
    normalised), voxel size in Å ``(x, y, z)``, the header fields outputs carry, and where and
    how its data lie (``offset`` bytes, numpy ``dtype``, file axis order ``axes``)."""

    path: Path
    shape: tuple[int, int, int]
    voxel_size_A: tuple[float, float, float]
    header: MapHeader
    offset: int
    dtype: np.dtype
    axes: tuple[int, int, int]

    @property
    def voxels(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes_float32(self) -> int:
        return 4 * self.voxels


@dataclass(frozen=True)
class MapData:
    """A 3-D map: ``data`` ``[z, y, x]`` float32, ``voxel_size_A`` ``(x, y, z)`` in Å."""

    data: NDArray[np.float32]
    voxel_size_A: tuple[float, float, float]
    header: MapHeader = field(default_factory=MapHeader)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]


SUPPORTED_MODES = {0: "int8", 1: "int16", 2: "float32", 6: "uint16", 12: "float16"}
STACK_DEPTH = 2
"""A file whose header says "images" (space group 0) and that holds more than this many times
as many sections as its widest side is an image stack, not a volume."""


def read_grid(path: str | os.PathLike, voxel_size_A: float | None = None) -> MapGrid:
    """Read and check a map's header only (no data): a file that is missing, not MRC,
    truncated, in an unsupported mode, not 3-D, an image stack, or without a usable voxel size
    raises :class:`MapReadError` naming the file and saying what to do."""
    p = Path(path)
    if not p.is_file():
        raise MapReadError(f"{p}: file not found")
    if p.suffix.lower() == ".mrcs":
        raise MapReadError(
            f"{p}: an image stack (.mrcs) is not a volume; give the map (.mrc) instead"
        )
    unusable = not_a_map(p)
    if unusable is not None:
        raise MapReadError(unusable)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(p, mode="r", permissive=True, header_only=True) as mrc:
                h = mrc.header
                mode = int(h.mode)
                counts = (int(h.nx), int(h.ny), int(h.nz))
                axes = (int(h.mapc), int(h.mapr), int(h.maps))
                size = mrc.voxel_size
                file_voxel = (float(size.x), float(size.y), float(size.z))
                origin = (float(h.origin.x), float(h.origin.y), float(h.origin.z))
                nstart = (int(h.nxstart), int(h.nystart), int(h.nzstart))
                extended = int(h.nsymbt)
                space_group = int(h.ispg)
                dtype = mrcfile.utils.data_dtype_from_header(h) if mode in SUPPORTED_MODES else None
    except (ValueError, OSError, EOFError) as exc:
        raise MapReadError(f"{p}: not a valid MRC map ({exc})") from exc
    if dtype is None:
        raise MapReadError(
            f"{p}: MRC mode {mode} is not a density map mode align3d reads (modes "
            f"{', '.join(f'{m} ({n})' for m, n in SUPPORTED_MODES.items())}); convert it to "
            "float32 mode 2"
        )
    nx, ny, nz = counts
    if space_group == 0 and nz > STACK_DEPTH * max(nx, ny):
        raise MapReadError(
            f"{p}: an image stack ({nz} images of {nx} x {ny} pixels), not a volume: give the "
            "3-D map (.mrc); particle images are read through their STAR file"
        )
    if min(counts) < 4:
        raise MapReadError(
            f"{p}: expected a 3-D volume at least 4 voxels on each side, got {nx} x {ny} x {nz} "
            "(a 2-D image or an image stack is not a volume)"
        )
    offset = 1024 + extended
    needed = offset + nx * ny * nz * np.dtype(dtype).itemsize
    have = p.stat().st_size
    if have < needed:
        raise MapReadError(
            f"{p}: the file is truncated ({have} bytes, its header needs {needed}); copy it again"
        )
    if voxel_size_A is not None:
        if not voxel_size_A > 0:
            raise MapReadError(f"{p}: the voxel size override must be positive, got {voxel_size_A}")
        voxel = (float(voxel_size_A),) * 3
    else:
        voxel = file_voxel
        if not all(np.isfinite(v) and v > 0 for v in voxel):
            raise MapReadError(
                f"{p}: the header gives voxel size {voxel} Å; give the real voxel size "
                "(voxel_size_A on the volume, --ref-voxel / --mov-voxel on the command line)"
            )
    file_shape = (nz, ny, nx)
    shape = file_shape
    if sorted(axes) == [1, 2, 3] and axes != (1, 2, 3):
        labels = [axes[2], axes[1], axes[0]]
        perm = [labels.index(3), labels.index(2), labels.index(1)]
        shape = tuple(file_shape[k] for k in perm)  # type: ignore[assignment]
    return MapGrid(p, shape, voxel, MapHeader(origin, nstart), offset, np.dtype(dtype), axes)


def read_map(
    path: str | os.PathLike, voxel_size_A: float | None = None, constant_ok: bool = False
) -> MapData:
    """Read a 3-D MRC map, every byte once (header checks of :func:`read_grid`, then the data
    straight into a writeable float32 array, checked in the same pass for NaN or infinite
    voxels and, unless ``constant_ok`` (a mask may be all ones), for a constant map)."""
    grid = read_grid(path, voxel_size_A)
    p = grid.path
    nz, ny, nx = grid.shape if grid.axes == (1, 2, 3) else _file_shape(grid)
    try:
        with p.open("rb") as fh:
            fh.seek(grid.offset)
            raw = np.fromfile(fh, dtype=grid.dtype, count=nz * ny * nx)
    except OSError as exc:
        raise MapReadError(f"{p}: cannot read the data ({exc})") from exc
    data = raw.reshape(nz, ny, nx)
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    elif not data.dtype.isnative:
        data = data.byteswap().view(data.dtype.newbyteorder())
    if grid.axes != (1, 2, 3) and sorted(grid.axes) == [1, 2, 3]:
        # array axes 0, 1, 2 are sections, rows, columns: they hold the map axes MAPS, MAPR,
        # MAPC (1 = x, 2 = y, 3 = z); bring z, y, x to the front in that order
        labels = [grid.axes[2], grid.axes[1], grid.axes[0]]
        perm = [labels.index(3), labels.index(2), labels.index(1)]
        data = np.ascontiguousarray(np.transpose(data, perm))
    low, high = float(data.min()), float(data.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise MapReadError(
            f"{p}: {bad} voxel(s) are NaN or infinite; fix or replace the map "
            "(e.g. relion_image_handler --replace_nan 0)"
        )
    if not constant_ok and low == high:
        raise MapReadError(f"{p}: every voxel has the value {high}: an empty map")
    return MapData(data, grid.voxel_size_A, grid.header)


def _file_shape(grid: MapGrid) -> tuple[int, int, int]:
    """The data's shape as stored (sections, rows, columns)."""
    labels = [grid.axes[2], grid.axes[1], grid.axes[0]]
    perm = [labels.index(3), labels.index(2), labels.index(1)]
    inverse = [perm.index(k) for k in range(3)]
    return tuple(grid.shape[k] for k in inverse)  # type: ignore[return-value]


def read_header_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(nz, ny, nx)`` of a map (axes normalised), from its header alone."""
    return read_grid(path, 1.0).shape


def grid_problem(
    other: MapData | MapGrid, other_path: Path, main: MapData | MapGrid, main_path: Path, name: str
) -> str | None:
    """Why ``other`` (a half map, sharpened map or mask called ``name``) cannot share the grid
    of its volume's map ``main``: another box or another voxel size; None when it can."""
    same_box = other.shape == main.shape
    same_voxel = np.allclose(other.voxel_size_A, main.voxel_size_A, rtol=1e-3)
    if same_box and same_voxel:
        return None
    fix = "resample it onto the map's grid" if name == "mask" else "give maps of one grid"
    return (
        f"{other_path}: {name} grid {other.shape} at {other.voxel_size_A[0]:.4g} Å does not "
        f"match its map {main_path} ({main.shape} at {main.voxel_size_A[0]:.4g} Å); all "
        f"maps and the mask of a volume must share one grid: {fix}"
    )


def _set_statistics(header: np.recarray, values: NDArray[np.float32]) -> None:
    stats = RunningStatistics()
    stats.add(values)
    stats.set_header(header)


MAX_LABELS = 10
LABEL_BYTES = 80


def has_map_stamp(path: str | os.PathLike) -> bool:
    """Whether the header holds the MRC2000 stamp ``MAP `` at bytes 208-211 (readers such as
    ChimeraX then use the header origin, words 50-52, rather than nstart)."""
    with Path(path).open("rb") as fh:
        fh.seek(208)
        return fh.read(4) == b"MAP "


def check_labels(labels: list[str]) -> None:
    """Raise ValueError unless ``labels`` fit an MRC header: at most 10, each at most 80
    printable ASCII characters."""
    if len(labels) > MAX_LABELS:
        raise ValueError(f"an MRC header holds at most {MAX_LABELS} labels, got {len(labels)}")
    for label in labels:
        if len(label) > LABEL_BYTES or not (label.isascii() and label.isprintable()):
            raise ValueError(f"not an MRC label (80 printable ASCII characters): {label!r}")


def read_labels(path: str | os.PathLike) -> list[str]:
    """The text labels of a map's header (trailing blanks removed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
            return [label.rstrip() for label in mrc.get_labels()]


def write_map(
    path: str | os.PathLike,
    data: NDArray[np.floating],
    voxel_size_A: tuple[float, float, float] | float,
    header: MapHeader | None = None,
    labels: list[str] | None = None,
) -> Path:
    """Write a float32 MRC map atomically (a temporary file beside it, then renamed).

    ``labels``: the header's text labels (what made the map; see :func:`check_labels`), in
    place of mrcfile's "Created by mrcfile.py"."""

    values = np.ascontiguousarray(data, dtype=np.float32)
    if labels is not None:
        check_labels(labels)

    def write(tmp: Path) -> None:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            # the header statistics in two cheap passes, not mrcfile's (a full-size float
            # temporary for the standard deviation: ~0.15 s and ~200 MB for a 360^3 map)
            mrc.update_header_stats = lambda: None  # type: ignore[method-assign]
            mrc.set_data(values)
            _set_statistics(mrc.header, values)
            vs = voxel_size_A if isinstance(voxel_size_A, tuple) else (voxel_size_A,) * 3
            mrc.voxel_size = vs
            if header is not None:
                mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = header.origin_A
                mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = header.nstart
            if labels is not None:
                mrc.header.label[:] = b""
                mrc.header.nlabl = 0
                for label in labels:
                    mrc.add_label(label)

    return atomic_write(Path(path), write)
