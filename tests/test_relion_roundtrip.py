"""The proof that particles stay in register: RELION itself reconstructs the aligned map.

1. Particles are projected from map B with ``relion_project`` at random poses and origins (Å).
2. B is a known rigid transform (maybe mirrored) of reference A; align3d aligns B onto A with
   particle update on.
3. ``relion_reconstruct`` on the updated STAR file must give the aligned B (FSC >= 0.9 to 0.6 of
   Nyquist for noise-free particles); the old poses must not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.alignment.fsc import fsc
from align3d.engine.alignment.geometry import RigidTransform
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.slots.mrc import read_map, write_map
from tests.helpers import cli, move_with_scipy
from tests.oracles.transforms import random_transform
from tests.relion_tools import (
    relion_project,
    relion_reconstruct,
    require_relion,
    stack_names,
    write_pose_star,
)

BOX, VOXEL = 48, 3.0


def _random_poses(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial.transform import Rotation

    angles = Rotation.random(n, random_state=rng).as_euler("ZYZ", degrees=True)
    origins = rng.uniform(-4.0, 4.0, size=(n, 2))
    return angles, origins


def _fsc_band(a: np.ndarray, b: np.ndarray, fraction: float) -> np.ndarray:
    curve = fsc(a, b, voxel_A=VOXEL)
    band = (curve.frequency > 0) & (curve.frequency <= fraction / (2 * VOXEL))
    return curve.fsc[band]


@dataclass(frozen=True)
class RoundTrip:
    truth: RigidTransform
    moving: np.ndarray  # map B, on the reference grid
    particles: Path  # relion_project output from B, poses as projected
    found: RigidTransform
    aligned: np.ndarray  # align3d's aligned B
    updated: Path  # align3d's particles_for_map_1


def _round_trip(tmp_path: Path, seed: int, flip: bool, n: int, noise: bool) -> RoundTrip:
    """Make A and B = A moved by a known transform, project B with relion_project, align B onto
    A with particle update on (through the command line, as a pipeline would)."""
    require_relion("relion_project", "relion_reconstruct")
    rng = np.random.default_rng(seed)
    reference = protein_like_map((BOX, BOX, BOX), VOXEL, radius_fraction=0.33, seed=20 + seed)
    truth = random_transform(rng, 8.0, flip=flip)
    moving = move_with_scipy(reference, VOXEL, truth.inverse(), reference.shape, VOXEL)
    write_map(tmp_path / "A.mrc", reference, VOXEL)
    write_map(tmp_path / "B.mrc", moving, VOXEL)
    angles, origins = _random_poses(rng, n)
    poses = write_pose_star(
        tmp_path / "poses.star", stack_names("none.mrcs", n), angles, origins, VOXEL, BOX
    )
    # projections sum ~BOX voxels along each ray: this noise gives a per-pixel SNR well below 1
    extra = ["--add_noise", "--white_noise", repr(float(np.std(moving)) * BOX * 0.5)]
    particles = relion_project(
        tmp_path / "B.mrc", poses, tmp_path / "particles", VOXEL, extra_args=extra if noise else ()
    )
    spec = {
        "job": "align_3d_maps",
        "params": {"update_particle_alignments": True, "max_shift_A": 15},
        "inputs": {
            "reference_map": {"map": "A.mrc"},
            "maps_to_align": [{"map": "B.mrc"}],
            "particles_1": {"path": str(particles)},
        },
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = cli("run", str(tmp_path / "spec.json"), "--out", str(tmp_path / "job"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    job = tmp_path / "job"
    manifest = json.loads((job / "result.json").read_text())
    return RoundTrip(
        truth,
        moving,
        particles,
        RigidTransform.from_matrix(manifest["details"]["alignments"][0]["matrix"]),
        read_map(job / manifest["outputs"]["aligned_volume_1"]["map"]).data,
        job / manifest["outputs"]["particles_for_map_1"]["path"],
    )


@pytest.mark.parametrize("flip", [False, True], ids=["same-hand", "mirrored"])
def test_relion_reconstructs_the_aligned_map_from_updated_particles(
    tmp_path: Path, flip: bool
) -> None:
    run = _round_trip(tmp_path, seed=11 + flip, flip=flip, n=600, noise=False)
    assert run.found.flip == flip and run.found.rotation_error_deg(run.truth) < 0.5
    rebuilt = relion_reconstruct(run.updated, tmp_path / "rebuilt.mrc", VOXEL)
    assert _fsc_band(rebuilt, run.aligned, 0.6).min() >= 0.9
    # control: the old poses rebuild B where it was, which does not match the aligned map
    control = relion_reconstruct(run.particles, tmp_path / "control.mrc", VOXEL)
    assert _fsc_band(control, run.moving, 0.6).min() >= 0.9  # RELION itself is consistent
    assert _fsc_band(control, run.aligned, 0.6).mean() < 0.5


def test_noisy_particles_follow_too(tmp_path: Path) -> None:
    run = _round_trip(tmp_path, seed=5, flip=True, n=1500, noise=True)
    rebuilt = relion_reconstruct(run.updated, tmp_path / "rebuilt.mrc", VOXEL)
    control = relion_reconstruct(run.particles, tmp_path / "control.mrc", VOXEL)
    good = _fsc_band(rebuilt, run.aligned, 0.4)
    bad = _fsc_band(control, run.aligned, 0.4)
    assert good.mean() > 0.8
    assert good.mean() > bad.mean() + 0.3
