"""Helpers to drive RELION 3.1.3 (Debian package ``relion``) as the reference client in tests.

The Debian package installs plain (non-MPI) binaries in ``/usr/bin``: ``relion_project``,
``relion_reconstruct``, ``relion_star_handler``, ... (``*_mpi`` variants exist for some; these
helpers never use them, so no ``mpirun`` and no special environment are needed).

What the binaries were checked to do (RELION 3.1.3):

* ``relion_project --i MAP --ang POSES.star --o ROOT --angpix P`` writes ``ROOT.mrcs`` and
  ``ROOT.star`` (optics + particles blocks, the input columns kept, ``rlnImageName`` rewritten to
  ``n@ROOT.mrcs``; ``ROOT`` as given, so an absolute ``--o`` gives absolute image names). Poses are
  read from ``rlnAngleRot/Tilt/Psi`` and ``rlnOriginXAngst/YAngst`` (Å). Images follow
  :mod:`tests.oracles.projection` exactly for even boxes; for **odd boxes the output sits
  +1 pixel in x and y** from the ``N // 2`` centre.
* ``relion_reconstruct --i PARTICLES.star --o MAP --angpix P [--maxres A]`` reads image names
  relative to its working directory. Its boolean options are presence flags: ``--ctf false``
  *switches CTF correction on* (and, without defocus columns, ruins the map); leave the flag out
  for no CTF. With odd boxes the reconstruction is poor (FSC against the truth goes negative at
  mid frequencies), so use even boxes with it.

Tests call :func:`require_relion` first: it skips with the reason when RELION is absent, and
fails instead when the ``CI`` environment variable is set (CI installs RELION).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
from numpy.typing import ArrayLike, NDArray

INSTALL_HINT = "install it with `apt-get install -y relion` (Debian package relion, 3.1.3)"


class RelionError(RuntimeError):
    """A RELION command failed, timed out or did not write what it should have."""


def relion_binary(name: str) -> Path:
    """Path of a RELION program (e.g. ``relion_project``) on ``PATH``.

    Raises
    ------
    FileNotFoundError
        When it is not installed.
    """
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"RELION program {name!r} not found on PATH; {INSTALL_HINT}")
    return Path(found)


def require_relion(*names: str) -> dict[str, Path]:
    """The named RELION programs (default: ``relion_project`` and ``relion_reconstruct``).

    Skips the calling test, with the reason, when one is missing; fails it instead under CI
    (the ``CI`` environment variable set), so that CI cannot pass by skipping RELION tests.
    """
    found: dict[str, Path] = {}
    for name in names or ("relion_project", "relion_reconstruct"):
        try:
            found[name] = relion_binary(name)
        except FileNotFoundError as exc:
            if os.environ.get("CI"):
                pytest.fail(f"{exc}; CI must run the RELION tests")
            pytest.skip(str(exc))
    return found


def run_relion(
    args: Sequence[str | os.PathLike[str]],
    cwd: str | os.PathLike[str],
    timeout_s: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a RELION command (``args[0]`` a program name) in ``cwd``.

    Output is captured (RELION draws progress bars). ``OMP_NUM_THREADS`` defaults to 1.

    Raises
    ------
    RelionError
        On a non-zero exit or a timeout, with the command line and the end of its output.
    """
    cmd = [str(relion_binary(str(args[0]))), *(str(a) for a in args[1:])]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    line = " ".join(cmd)
    try:
        done = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        tail = ((exc.stdout or "") + (exc.stderr or ""))[-2000:]
        raise RelionError(f"timed out after {timeout_s} s: {line}\n{tail}") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise RelionError(f"exit status {done.returncode}: {line} (in {cwd})\n{tail}")
    return done


def write_pose_star(
    path: str | os.PathLike[str],
    image_names: Sequence[str],
    angles: ArrayLike,
    origins_A: ArrayLike | None,
    voxel_size_A: float,
    box: int,
    extra_columns: dict[str, ArrayLike] | None = None,
) -> Path:
    """Write a RELION 3.1 particle STAR file (``optics`` and ``particles`` blocks).

    Parameters
    ----------
    path : output file
    image_names : ``rlnImageName`` per particle, e.g. ``"000001@stack.mrcs"``
        (``relion_project`` rewrites them; they need not exist for it)
    angles : (n, 3) ``(rot, tilt, psi)`` in degrees
    origins_A : (n, 2) ``(rlnOriginXAngst, rlnOriginYAngst)`` in Å, or None for zeros
    voxel_size_A : ``rlnImagePixelSize`` of the single optics group
    box : ``rlnImageSize``
    extra_columns : more particle columns, e.g. ``{"rlnClassNumber": classes}``
    """
    ang = np.asarray(angles, dtype=np.float64).reshape(-1, 3)
    n = ang.shape[0]
    ori = np.zeros((n, 2)) if origins_A is None else np.asarray(origins_A, float).reshape(n, 2)
    if len(image_names) != n:
        raise ValueError(f"{n} poses but {len(image_names)} image names")
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnVoltage": [300.0],
            "rlnSphericalAberration": [2.7],
            "rlnAmplitudeContrast": [0.1],
            "rlnImagePixelSize": [float(voxel_size_A)],
            "rlnImageSize": [int(box)],
            "rlnImageDimensionality": [2],
        }
    )
    columns: dict[str, object] = {
        "rlnImageName": list(image_names),
        "rlnAngleRot": ang[:, 0],
        "rlnAngleTilt": ang[:, 1],
        "rlnAnglePsi": ang[:, 2],
        "rlnOriginXAngst": ori[:, 0],
        "rlnOriginYAngst": ori[:, 1],
        "rlnOpticsGroup": np.ones(n, dtype=int),
    }
    for key, values in (extra_columns or {}).items():
        columns[key] = np.asarray(values)
    out = Path(path)
    starfile.write({"optics": optics, "particles": pd.DataFrame(columns)}, out, overwrite=True)
    return out


def stack_names(stack: str, count: int) -> list[str]:
    """``["000001@stack", "000002@stack", ...]``: RELION image names of a stack."""
    return [f"{i + 1:06d}@{stack}" for i in range(count)]


def write_stack(path: str | os.PathLike[str], images: ArrayLike, voxel_size_A: float) -> Path:
    """Write an ``(n, N, N)`` image stack as float32 MRC (``.mrcs``)."""
    out = Path(path)
    with mrcfile.new(out, overwrite=True) as mrc:
        mrc.set_data(np.asarray(images, dtype=np.float32))
        mrc.voxel_size = voxel_size_A
    return out


def write_map(path: str | os.PathLike[str], volume: ArrayLike, voxel_size_A: float) -> Path:
    """Write a ``[z, y, x]`` volume as float32 MRC."""
    out = Path(path)
    with mrcfile.new(out, overwrite=True) as mrc:
        mrc.set_data(np.asarray(volume, dtype=np.float32))
        mrc.voxel_size = voxel_size_A
    return out


def read_particles(star_path: str | os.PathLike[str]) -> tuple[pd.DataFrame, NDArray[np.float32]]:
    """The particles block of a RELION 3.1 STAR file and its images, in file order.

    Relative stack names are resolved against the STAR file's folder.
    """
    star = Path(star_path)
    blocks = starfile.read(star, always_dict=True)
    particles = blocks["particles"]
    stacks: dict[Path, NDArray[np.float32]] = {}
    images = []
    for name in particles["rlnImageName"]:
        index, stack = str(name).split("@", 1)
        stack_path = Path(stack) if Path(stack).is_absolute() else star.parent / stack
        if stack_path not in stacks:
            data = mrcfile.read(stack_path)
            stacks[stack_path] = data if data.ndim == 3 else data[None]
        images.append(stacks[stack_path][int(index) - 1])
    return particles, np.asarray(images, dtype=np.float32)


def relion_project(
    map_path: str | os.PathLike[str],
    star_in: str | os.PathLike[str],
    out_root: str | os.PathLike[str],
    voxel_size_A: float,
    *,
    extra_args: Sequence[str] = (),
    timeout_s: float = 120.0,
) -> Path:
    """Project a map at the poses of a particle STAR file with ``relion_project``.

    Runs ``relion_project --i MAP --ang STAR --o ROOT --angpix P`` in ``ROOT``'s folder and
    returns ``ROOT.star`` (its images in ``ROOT.mrcs``).
    """
    root = Path(out_root).resolve()
    args = [
        "relion_project",
        "--i",
        Path(map_path).resolve(),
        "--ang",
        Path(star_in).resolve(),
        "--o",
        root,
        "--angpix",
        repr(float(voxel_size_A)),
        *extra_args,
    ]
    run_relion(args, cwd=root.parent, timeout_s=timeout_s)
    star = root.with_name(root.name + ".star")
    if not star.is_file() or not root.with_name(root.name + ".mrcs").is_file():
        raise RelionError(f"relion_project wrote no {star} / .mrcs")
    return star


def relion_reconstruct(
    star_path: str | os.PathLike[str],
    out_map: str | os.PathLike[str],
    voxel_size_A: float,
    *,
    maxres_A: float | None = None,
    ctf: bool = False,
    extra_args: Sequence[str] = (),
    timeout_s: float = 120.0,
) -> NDArray[np.float32]:
    """Reconstruct a map from particles with ``relion_reconstruct``; returns the map.

    Runs ``relion_reconstruct --i STAR --o MAP --angpix P [--maxres A] [--ctf]`` in the STAR
    file's folder (relative image names resolve there). ``ctf=False`` leaves the ``--ctf`` flag
    out: RELION treats ``--ctf false`` as *on*. Use even boxes (odd boxes reconstruct poorly in
    RELION 3.1).
    """
    star = Path(star_path).resolve()
    out = Path(out_map).resolve()
    args: list[str | os.PathLike[str]] = [
        "relion_reconstruct",
        "--i",
        star,
        "--o",
        out,
        "--angpix",
        repr(float(voxel_size_A)),
    ]
    if maxres_A is not None:
        args += ["--maxres", repr(float(maxres_A))]
    if ctf:
        args.append("--ctf")
    args += list(extra_args)
    run_relion(args, cwd=star.parent, timeout_s=timeout_s)
    if not out.is_file():
        raise RelionError(f"relion_reconstruct wrote no {out}")
    return mrcfile.read(out).astype(np.float32)


def normalised_correlation(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson correlation of two arrays (scale and offset invariant)."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x = x - x.mean()
    y = y - y.mean()
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))
