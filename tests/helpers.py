"""Test helpers written independently of the code under test (scipy.ndimage, not our kernels),
and the command line run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

from align3d.engine.alignment.geometry import FLIP, RigidTransform


def move_with_scipy(
    volume: np.ndarray,
    voxel_A: float,
    transform: RigidTransform,
    out_shape: tuple[int, int, int],
    out_voxel_A: float,
) -> np.ndarray:
    """``V_out(y) = M(F^flip R^T (y - t))`` by scipy's quintic spline (docs/conventions.md#maps),
    written from the convention itself rather than from align3d.engine.alignment.resample."""
    oz, oy, ox = np.indices(out_shape, dtype=np.float64)
    centre_out = np.array([n // 2 for n in out_shape], dtype=float)  # z, y, x
    y_xyz = (
        np.stack([(ox - centre_out[2]), (oy - centre_out[1]), (oz - centre_out[0])], axis=-1)
        * out_voxel_A
    )
    flip = FLIP if transform.flip else np.eye(3)
    x_xyz = (y_xyz - transform.shift_A) @ (flip @ transform.rotation.T).T
    centre_in = np.array([n // 2 for n in volume.shape], dtype=float)
    coords = [
        x_xyz[..., 2] / voxel_A + centre_in[0],
        x_xyz[..., 1] / voxel_A + centre_in[1],
        x_xyz[..., 0] / voxel_A + centre_in[2],
    ]
    # quintic spline: a different interpolator from the cubic one under test
    return ndi.map_coordinates(volume.astype(np.float64), coords, order=5, mode="constant")


def masked_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of two maps over a mask (a map-against-truth comparison)."""
    w = mask > 0.5
    return float(np.corrcoef(a[w], b[w])[0, 1])


REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``align3d ARGS`` in a fresh interpreter (no numba threads started, as for a user)."""
    return subprocess.run(
        [sys.executable, "-m", "align3d.engine.cli", *args],
        timeout=900,  # a hung command fails its test instead of the whole run
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
