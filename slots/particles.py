"""Particle files: RELION STAR (3.0, 3.1, 4, 5) and CryoSPARC ``.cs``, read and rewritten with
new poses, keeping everything else.

A :class:`ParticleFile` exposes poses in one convention (RELION's: Euler angles in degrees,
origins in Å) and writes a new file that differs from the input only in the pose columns:
every other column, block, optics group, row order and image name is kept. Inputs are never
modified; outputs are written to a temporary file and renamed into place.

* RELION 3.1+: ``rlnAngleRot/Tilt/Psi``, ``rlnOriginX/YAngst`` (Å), optics in ``data_optics``.
  Priors (``rlnAngle*Prior``, ``rlnOriginX/YPriorAngst``) are updated with the poses.
* RELION 3.0 (no optics block): ``rlnOriginX/Y`` in pixels of ``rlnDetectorPixelSize`` (µm)
  x 10^4 / ``rlnMagnification``; updated in pixels, or refused when the pixel size is missing.
* CryoSPARC: ``alignments3D/pose`` (rotation vector of ``A^T``, radians) and
  ``alignments3D/shift`` (pixels of ``alignments3D/psize_A``, the sign of RELION's origin).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import starfile
from numpy.typing import NDArray

from align3d.slots.atomic import atomic_write
from align3d.slots.errors import ParticleFileError
from align3d.slots.pose_formats import (
    cryosparc_matrices,
    cryosparc_rotvecs,
    relion_angles,
    relion_matrices,
)

ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
ANGLE_PRIORS = ("rlnAngleRotPrior", "rlnAngleTiltPrior", "rlnAnglePsiPrior")
ORIGINS_A = ("rlnOriginXAngst", "rlnOriginYAngst")
ORIGIN_PRIORS_A = ("rlnOriginXPriorAngst", "rlnOriginYPriorAngst")
ORIGINS_PX = ("rlnOriginX", "rlnOriginY")
ORIGIN_PRIORS_PX = ("rlnOriginXPrior", "rlnOriginYPrior")

Mover = Callable[
    [NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]],
    tuple[NDArray[np.float64], NDArray[np.float64]],
]
"""``(A, origins_A, rows) -> (A', origins_A')``: new poses for the given rows."""


@dataclass
class StarParticles:
    """A RELION STAR particle file: all its blocks, and which one holds the particles."""

    path: Path
    blocks: dict[str, pd.DataFrame]
    key: str
    pixel_size_A: NDArray[np.float64] | None  # per particle, for pixel origins (RELION 3.0)

    @property
    def table(self) -> pd.DataFrame:
        return self.blocks[self.key]

    def __len__(self) -> int:
        return len(self.table)

    def classes(self) -> NDArray[np.int64] | None:
        """1-based class numbers (``rlnClassNumber``), or None."""
        if "rlnClassNumber" not in self.table:
            return None
        return self.table["rlnClassNumber"].to_numpy(dtype=np.int64)

    def _origins(self, names: tuple[str, str], px: tuple[str, str]) -> NDArray[np.float64] | None:
        t = self.table
        if all(n in t for n in names):
            return t[list(names)].to_numpy(dtype=np.float64)
        if all(n in t for n in px) and self.pixel_size_A is not None:
            return t[list(px)].to_numpy(dtype=np.float64) * self.pixel_size_A[:, None]
        return None

    def updated(self, mover: Mover) -> StarParticles:
        """A copy whose poses (and priors) follow ``mover``; nothing else changes."""
        t = self.table.copy()
        rows = np.arange(len(t))
        a = relion_matrices(*(t[c].to_numpy(dtype=np.float64) for c in ANGLES))
        origins = self._origins(ORIGINS_A, ORIGINS_PX)
        new_a, new_o = mover(a, np.zeros((len(t), 2)) if origins is None else origins, rows)
        t[list(ANGLES)] = relion_angles(new_a)
        if origins is not None:
            self._write_origins(t, new_o, ORIGINS_A, ORIGINS_PX)
        present = [c in t for c in ANGLE_PRIORS]
        if any(present):
            prior = [
                t[p] if ok else t[c] for p, c, ok in zip(ANGLE_PRIORS, ANGLES, present, strict=True)
            ]
            pa = relion_matrices(*(p.to_numpy(dtype=np.float64) for p in prior))
            prior_o = self._origins(ORIGIN_PRIORS_A, ORIGIN_PRIORS_PX)
            new_pa, new_po = mover(pa, np.zeros((len(t), 2)) if prior_o is None else prior_o, rows)
            angles = relion_angles(new_pa)
            for k, (name, ok) in enumerate(zip(ANGLE_PRIORS, present, strict=True)):
                if ok:
                    t[name] = angles[:, k]
            if prior_o is not None:
                self._write_origins(t, new_po, ORIGIN_PRIORS_A, ORIGIN_PRIORS_PX)
        blocks = dict(self.blocks)
        blocks[self.key] = t
        return StarParticles(self.path, blocks, self.key, self.pixel_size_A)

    def _write_origins(
        self, t: pd.DataFrame, values: NDArray, names: tuple[str, str], px: tuple[str, str]
    ) -> None:
        if all(n in t for n in names):
            t[list(names)] = values
        else:
            assert self.pixel_size_A is not None
            t[list(px)] = values / self.pixel_size_A[:, None]

    def write(self, path: Path) -> Path:
        blocks = self.blocks
        if list(blocks) == [""]:  # RELION 3.0: one unnamed block
            blocks = {"images" if self.key == "" else self.key: blocks[""]}
        return atomic_write(
            path, lambda tmp: starfile.write(blocks, tmp, overwrite=True, float_format=_float)
        )


def _float(value: float) -> str:
    """12 significant digits, always with a decimal point: every number read from a RELION file
    is written back as the same number of the same type (300.000000 stays a float, not 300)."""
    text = f"{value:.12g}"
    return text if any(ch in text for ch in ".eEn") else text + ".0"


def read_star(path: Path) -> StarParticles:
    """Read a RELION particle STAR file (3.0, 3.1, 4, 5), checking the pose columns."""
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on garbage
        raise ParticleFileError(f"{path}: not a readable STAR file ({exc})") from exc
    frames = {k: v for k, v in blocks.items() if isinstance(v, pd.DataFrame)}
    key = (
        "particles"
        if "particles" in frames
        else next((k for k, v in frames.items() if all(c in v for c in ANGLES)), None)
    )
    if key is None:
        raise ParticleFileError(
            f"{path}: not a RELION particle STAR file with poses: no table with pose columns "
            f"{', '.join(ANGLES)} (only refined particles can follow an aligned volume)"
        )
    table = frames[key]
    missing = [c for c in ANGLES if c not in table]
    if missing:
        raise ParticleFileError(
            f"{path}: block data_{key} lacks the pose columns {', '.join(missing)} "
            "(only refined particles can follow an aligned volume)"
        )
    pixel: NDArray[np.float64] | None = None
    has_angst = all(c in table for c in ORIGINS_A)
    has_px = any(c in table for c in ORIGINS_PX)
    if "optics" in frames and has_px and not has_angst:
        raise ParticleFileError(
            f"{path}: RELION 3.1+ file (it has data_optics) with pixel origins rlnOriginX/Y, "
            "which RELION 3.1+ ignores; give origins in Å as rlnOriginXAngst/rlnOriginYAngst"
        )
    if "optics" not in frames and has_px:
        if "rlnDetectorPixelSize" in table and "rlnMagnification" in table:
            pixel = (
                table["rlnDetectorPixelSize"].to_numpy(dtype=np.float64)
                * 1e4
                / table["rlnMagnification"].to_numpy(dtype=np.float64)
            )
        else:
            raise ParticleFileError(
                f"{path}: RELION 3.0 file with pixel origins but no rlnDetectorPixelSize and "
                "rlnMagnification to give the pixel size; convert it to RELION 3.1 format "
                "first (relion_convert_star --i IN.star --o OUT.star)"
            )
    return StarParticles(Path(path), dict(blocks), key, pixel)


@dataclass
class CsParticles:
    """A CryoSPARC particle dataset (``.cs``: a numpy structured array)."""

    path: Path
    data: np.ndarray

    def __len__(self) -> int:
        return len(self.data)

    def classes(self) -> NDArray[np.int64] | None:
        """1-based volume numbers from ``alignments3D/class`` (which is 0-based), or None."""
        if "alignments3D/class" not in self.data.dtype.names:
            return None
        return self.data["alignments3D/class"].astype(np.int64) + 1

    def updated(self, mover: Mover) -> CsParticles:
        d = self.data.copy()
        psize = d["alignments3D/psize_A"].astype(np.float64)
        a = cryosparc_matrices(d["alignments3D/pose"])
        origins = d["alignments3D/shift"].astype(np.float64) * psize[:, None]
        new_a, new_o = mover(a, origins, np.arange(len(d)))
        pose_dtype = d.dtype["alignments3D/pose"].base
        shift_dtype = d.dtype["alignments3D/shift"].base
        d["alignments3D/pose"] = cryosparc_rotvecs(new_a).astype(pose_dtype)
        d["alignments3D/shift"] = (new_o / psize[:, None]).astype(shift_dtype)
        return CsParticles(self.path, d)

    def write(self, path: Path) -> Path:
        def save(tmp: Path) -> None:
            with tmp.open("wb") as fh:
                np.save(fh, self.data, allow_pickle=False)

        return atomic_write(path, save)


CS_FIELDS = ("alignments3D/pose", "alignments3D/shift", "alignments3D/psize_A")


def read_cs(path: Path) -> CsParticles:
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ParticleFileError(f"{path}: not a readable CryoSPARC .cs file ({exc})") from exc
    names = data.dtype.names or ()
    missing = [f for f in CS_FIELDS if f not in names]
    if missing:
        raise ParticleFileError(
            f"{path}: no {', '.join(missing)} field(s); only particles with 3D alignments "
            "(from a refinement) can follow an aligned volume"
        )
    return CsParticles(Path(path), data)


ParticleFile = StarParticles | CsParticles


def read_particles(path: str | os.PathLike) -> ParticleFile:
    """Read a ``.star`` or ``.cs`` particle file.

    A job checks its particle files before any work and uses them after the alignment: the
    parsed file is kept (per process, the last few, keyed by the file's path, size, mtime and
    ctime) so that it is read once. Parsed files are never modified (updates make copies)."""
    p = Path(path)
    if not p.is_file():
        raise ParticleFileError(f"{p}: file not found")
    if p.suffix.lower() not in (".star", ".cs"):
        raise ParticleFileError(f"{p}: particles must be a RELION .star or a CryoSPARC .cs file")
    stat = p.stat()
    return _parsed(str(p.absolute()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@lru_cache(maxsize=4)
def _parsed(path: str, size: int, mtime_ns: int, ctime_ns: int) -> ParticleFile:
    p = Path(path)
    return read_star(p) if p.suffix.lower() == ".star" else read_cs(p)
