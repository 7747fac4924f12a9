"""Known-answer inputs for the host tests: a reference and volumes moved by known transforms,
each with half maps, a sharpened map, a mask and particles, laid out in the folders a host's
jobs would leave them in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from align3d.engine.alignment.geometry import RigidTransform
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.slots.particles import ANGLES, read_particles
from align3d.slots.pose_formats import relion_matrices
from tests.helpers import move_with_scipy
from tests.relion_tools import write_pose_star

VOXEL_A = 2.0
BOX = 48
PARTICLES = 12

TRUTHS = (
    RigidTransform.from_matrix(
        [[0.0, -1.0, 0.0, 4.0], [1.0, 0.0, 0.0, -2.0], [0.0, 0.0, 1.0, 3.0], [0, 0, 0, 1]]
    ),
    RigidTransform(
        np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
        np.array([-3.0, 2.0, 1.0]),
        False,
    ),
)


def write_mrc(path: Path, volume: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(volume, dtype=np.float32))
        mrc.voxel_size = VOXEL_A
    return path


def read_mrc(path: Path) -> np.ndarray:
    with mrcfile.open(path, permissive=True) as mrc:
        return np.asarray(mrc.data, dtype=np.float64)


def reference_map() -> np.ndarray:
    return protein_like_map((BOX, BOX, BOX), VOXEL_A, seed=3)


def moved(reference: np.ndarray, truth: RigidTransform) -> np.ndarray:
    """The map that ``truth`` puts onto ``reference``: ``M(x) = ref(T x)``."""
    return move_with_scipy(reference, VOXEL_A, truth.inverse(), reference.shape, VOXEL_A)


def soft_sphere(radius_px: float = 20.0) -> np.ndarray:
    z, y, x = np.indices((BOX, BOX, BOX)) - BOX // 2
    r = np.sqrt(x * x + y * y + z * z)
    return np.clip(radius_px + 3 - r, 0, 3) / 3


@dataclass(frozen=True)
class VolumeFiles:
    """The files of one volume to align (absolute paths)."""

    map: Path
    half1: Path
    half2: Path
    sharpened: Path
    mask: Path
    particles: Path


def write_particles(path: Path, seed: int, classes: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(seed)
    angles = np.column_stack(
        [
            rng.uniform(-180, 180, PARTICLES),
            rng.uniform(0, 180, PARTICLES),
            rng.uniform(-180, 180, PARTICLES),
        ]
    )
    origins = rng.uniform(-3, 3, (PARTICLES, 2))
    names = [f"{i + 1:06d}@stack.mrcs" for i in range(PARTICLES)]
    extra = None if classes is None else {"rlnClassNumber": classes}
    return write_pose_star(path, names, angles, origins, VOXEL_A, BOX, extra)


def write_volume(
    folder: Path, truth: RigidTransform, seed: int, names: dict[str, str]
) -> VolumeFiles:
    """A volume moved by ``truth`` (noisy halves, a sharpened map, a mask) and its particles,
    under the file names a job would give them (``names``: map, half1, half2, sharpened,
    mask, particles)."""
    rng = np.random.default_rng(seed)
    volume = moved(reference_map(), truth)
    noise = 0.05 * float(volume.std())
    return VolumeFiles(
        map=write_mrc(folder / names["map"], volume),
        half1=write_mrc(folder / names["half1"], volume + rng.normal(0, noise, volume.shape)),
        half2=write_mrc(folder / names["half2"], volume + rng.normal(0, noise, volume.shape)),
        sharpened=write_mrc(folder / names["sharpened"], 1.5 * volume),
        mask=write_mrc(folder / names["mask"], np.clip(moved(soft_sphere(), truth), 0, 1)),
        particles=write_particles(folder / names["particles"], seed),
    )


PLAIN_NAMES = {
    "map": "map.mrc",
    "half1": "half1_unfil.mrc",
    "half2": "half2_unfil.mrc",
    "sharpened": "sharpened.mrc",
    "mask": "mask.mrc",
    "particles": "particles.star",
}


def check_aligned(path: Path, tolerance: float = 0.97) -> float:
    """The correlation of an aligned map with the reference (asserted above ``tolerance``)."""
    found = read_mrc(path)
    reference = reference_map()
    inside = soft_sphere(18) > 0.5
    score = float(np.corrcoef(found[inside], reference[inside])[0, 1])
    assert score > tolerance, f"{path}: correlation {score:.3f} with the reference"
    return score


def check_poses(
    before: Path,
    after: Path,
    truth: RigidTransform,
    rows: np.ndarray | None = None,
    tolerance_deg: float = 2.0,
) -> None:
    """Each updated pose is the pose formula's for the true transform: a particle seen at
    ``A`` in the moving map is seen at ``A R^T`` (RELION's A maps the map into the image
    frame, docs/conventions.md#relion), within ``tolerance_deg``, and its origin moves by
    ``(A' t)_xy``; ``rows``: only these particles (those of one class)."""
    old_table, new_table = read_particles(before).table, read_particles(after).table
    assert list(new_table["rlnImageName"]) == list(old_table["rlnImageName"])
    if rows is not None:
        old_table, new_table = old_table[rows], new_table[rows]
    a_old = relion_matrices(*(old_table[c].to_numpy(float) for c in ANGLES))
    a_new = relion_matrices(*(new_table[c].to_numpy(float) for c in ANGLES))
    expected = a_old @ truth.rotation.T
    cos = (np.einsum("nij,nij->n", a_new, expected) - 1) / 2
    errors = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert errors.max() < tolerance_deg, errors
    origins = ["rlnOriginXAngst", "rlnOriginYAngst"]
    expected_origins = old_table[origins].to_numpy(float) + (a_new @ truth.shift_A)[:, :2]
    assert np.allclose(new_table[origins].to_numpy(float), expected_origins, atol=0.5)
