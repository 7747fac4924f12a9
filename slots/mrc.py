"""Reading and writing MRC maps (thin, typed, on top of mrcfile).

A map is returned as a float32 array indexed ``[z, y, x]`` with its voxel size in Å
``(x, y, z)`` and the header fields that outputs carry over (origin, nstart). Axis order is
normalised: files whose MAPC/MAPR/MAPS are not 1/2/3 are transposed to ``[z, y, x]``.
Writing is atomic (:mod:`slots.atomic`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np
from numpy.typing import NDArray

from slots.atomic import atomic_write
from slots.errors import MapReadError


@dataclass(frozen=True)
class MapHeader:
    """Header fields kept for outputs: origin in Å ``(x, y, z)`` and ``nstart`` in voxels."""

    origin_A: tuple[float, float, float] = (0.0, 0.0, 0.0)
    nstart: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class MapData:
    """A 3-D map: ``data`` ``[z, y, x]`` float32, ``voxel_size_A`` ``(x, y, z)`` in Å."""

    data: NDArray[np.float32]
    voxel_size_A: tuple[float, float, float]
    header: MapHeader = field(default_factory=MapHeader)


def read_map(
    path: str | os.PathLike, voxel_size_A: float | None = None, constant_ok: bool = False
) -> MapData:
    """Read a 3-D MRC map.

    ``voxel_size_A`` overrides the header (needed when the header says 0, as some tools write).
    ``constant_ok`` accepts a constant map (a mask may be all ones).
    Raises :class:`MapReadError` with the file name and a remedy for files that cannot be used:
    missing, not MRC, not 3-D, NaN or infinite voxels, constant, no usable voxel size.
    """
    p = Path(path)
    if not p.is_file():
        raise MapReadError(f"{p}: file not found")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mrcfile.open(p, mode="r", permissive=True) as mrc:
                if mrc.data is None:
                    why = "; ".join(str(w.message) for w in caught) or "no data block"
                    raise MapReadError(
                        f"{p}: not a readable MRC map ({why}); the file may be truncated (copy "
                        "it again) or in a mode mrcfile cannot read (convert it to float32 mode 2)"
                    )
                data = np.asarray(mrc.data, dtype=np.float32)
                header = mrc.header
                axes = (int(header.mapc), int(header.mapr), int(header.maps))
                size = mrc.voxel_size
                file_voxel = (float(size.x), float(size.y), float(size.z))
                origin = (float(header.origin.x), float(header.origin.y), float(header.origin.z))
                nstart = (int(header.nxstart), int(header.nystart), int(header.nzstart))
    except MapReadError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise MapReadError(f"{p}: not a valid MRC map ({exc})") from exc
    if data.ndim != 3 or min(data.shape) < 4:
        raise MapReadError(
            f"{p}: expected a 3-D volume at least 4 voxels on each side, got an array of shape "
            f"{data.shape} (a 2-D image or an image stack is not a volume)"
        )
    if p.suffix.lower() == ".mrcs":
        raise MapReadError(
            f"{p}: an image stack (.mrcs) is not a volume; give the map (.mrc) instead"
        )
    if sorted(axes) == [1, 2, 3] and axes != (1, 2, 3):
        # array axes 0, 1, 2 are sections, rows, columns: they hold the map axes MAPS, MAPR,
        # MAPC (1 = x, 2 = y, 3 = z); bring z, y, x to the front in that order
        labels = [axes[2], axes[1], axes[0]]
        perm = [labels.index(3), labels.index(2), labels.index(1)]
        data = np.ascontiguousarray(np.transpose(data, perm))
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise MapReadError(
            f"{p}: {bad} voxel(s) are NaN or infinite; fix or replace the map "
            "(e.g. relion_image_handler --replace_nan 0)"
        )
    if not constant_ok and float(data.max()) == float(data.min()):
        raise MapReadError(f"{p}: every voxel has the value {float(data.max())}: an empty map")
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
    return MapData(data, voxel, MapHeader(origin, nstart))


def read_header_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(nz, ny, nx)`` from a map's header, without reading its data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
            h = mrc.header
            return int(h.nz), int(h.ny), int(h.nx)


def grid_problem(
    other: MapData, other_path: Path, main: MapData, main_path: Path, name: str
) -> str | None:
    """Why ``other`` (a half map, sharpened map or mask called ``name``) cannot share the grid
    of its volume's map ``main``: another box or another voxel size; None when it can."""
    same_box = other.data.shape == main.data.shape
    same_voxel = np.allclose(other.voxel_size_A, main.voxel_size_A, rtol=1e-3)
    if same_box and same_voxel:
        return None
    fix = "resample it onto the map's grid" if name == "mask" else "give maps of one grid"
    return (
        f"{other_path}: {name} grid {other.data.shape} at {other.voxel_size_A[0]:.4g} Å does not "
        f"match its map {main_path} ({main.data.shape} at {main.voxel_size_A[0]:.4g} Å); all "
        f"maps and the mask of a volume must share one grid: {fix}"
    )


def write_map(
    path: str | os.PathLike,
    data: NDArray[np.floating],
    voxel_size_A: tuple[float, float, float] | float,
    header: MapHeader | None = None,
) -> Path:
    """Write a float32 MRC map atomically (a temporary file beside it, then renamed)."""

    def write(tmp: Path) -> None:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.asarray(data, dtype=np.float32))
            vs = voxel_size_A if isinstance(voxel_size_A, tuple) else (voxel_size_A,) * 3
            mrc.voxel_size = vs
            if header is not None:
                mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = header.origin_A
                mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = header.nstart

    return atomic_write(Path(path), write)
