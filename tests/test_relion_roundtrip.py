"""The proof that particles stay in register: RELION itself reconstructs the aligned map.

1. Particles are projected from map B with ``relion_project`` at random poses and origins (Å).
2. B is a known rigid transform (maybe mirrored) of reference A; align3d aligns B onto A with
   particle update on.
3. ``relion_reconstruct`` on the updated STAR file must give the aligned B (FSC >= 0.9 to 0.6 of
   Nyquist for noise-free particles); the old poses must not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.alignment import RigidTransform, fsc, random_transform
from engine.synthetic import protein_like_map
from slots.mrc import read_map, write_map
from tests.helpers import move_with_scipy
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
    curve = fsc(a, b, VOXEL)
    band = (curve.frequency > 0) & (curve.frequency <= fraction / (2 * VOXEL))
    return curve.fsc[band]


@pytest.mark.parametrize("flip", [False, True], ids=["same-hand", "mirrored"])
def test_relion_reconstructs_the_aligned_map_from_updated_particles(
    tmp_path: Path, flip: bool
) -> None:
    require_relion("relion_project", "relion_reconstruct")
    rng = np.random.default_rng(11 + flip)
    reference = protein_like_map((BOX, BOX, BOX), VOXEL, radius_fraction=0.33, seed=21)
    truth = random_transform(rng, 8.0, flip=flip)
    moving = move_with_scipy(reference, VOXEL, truth.inverse(), reference.shape, VOXEL)
    write_map(tmp_path / "A.mrc", reference, VOXEL)
    write_map(tmp_path / "B.mrc", moving, VOXEL)

    n = 600
    angles, origins = _random_poses(rng, n)
    poses = write_pose_star(
        tmp_path / "poses.star", stack_names("none.mrcs", n), angles, origins, VOXEL, BOX
    )
    particles = relion_project(tmp_path / "B.mrc", poses, tmp_path / "particles", VOXEL)

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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            str(tmp_path / "spec.json"),
            "--out",
            str(tmp_path / "job"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "job" / "result.json").read_text())
    found = RigidTransform.from_matrix(manifest["alignments"][0]["matrix"])
    assert found.flip == flip and found.rotation_error_deg(truth) < 0.5
    aligned = read_map(tmp_path / "job" / manifest["outputs"]["aligned_volume_1"]["map"]).data
    updated = tmp_path / "job" / manifest["outputs"]["particles_for_map_1"]["path"]

    rebuilt = relion_reconstruct(updated, tmp_path / "rebuilt.mrc", VOXEL)
    assert _fsc_band(rebuilt, aligned, 0.6).min() >= 0.9
    # control: the old poses rebuild B where it was, which does not match the aligned map
    control = relion_reconstruct(particles, tmp_path / "control.mrc", VOXEL)
    assert _fsc_band(control, moving, 0.6).min() >= 0.9  # RELION itself is consistent
    assert _fsc_band(control, aligned, 0.6).mean() < 0.5


def test_noisy_particles_follow_too(tmp_path: Path) -> None:
    require_relion("relion_project", "relion_reconstruct")
    rng = np.random.default_rng(5)
    reference = protein_like_map((BOX, BOX, BOX), VOXEL, radius_fraction=0.33, seed=22)
    truth = random_transform(rng, 6.0, flip=True)
    moving = move_with_scipy(reference, VOXEL, truth.inverse(), reference.shape, VOXEL)
    write_map(tmp_path / "A.mrc", reference, VOXEL)
    write_map(tmp_path / "B.mrc", moving, VOXEL)
    n = 1500
    angles, origins = _random_poses(rng, n)
    poses = write_pose_star(
        tmp_path / "poses.star", stack_names("none.mrcs", n), angles, origins, VOXEL, BOX
    )
    sigma = float(np.std(moving)) * BOX * 0.5  # projections sum ~BOX voxels along each ray
    particles = relion_project(
        tmp_path / "B.mrc",
        poses,
        tmp_path / "particles",
        VOXEL,
        extra_args=["--add_noise", "--white_noise", repr(sigma)],
    )
    spec = {
        "job": "align_3d_maps",
        "params": {"update_particle_alignments": True},
        "inputs": {
            "reference_map": {"map": "A.mrc"},
            "maps_to_align": [{"map": "B.mrc"}],
            "particles_1": {"path": str(particles)},
        },
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            str(tmp_path / "spec.json"),
            "--out",
            str(tmp_path / "job"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "job" / "result.json").read_text())
    aligned = read_map(tmp_path / "job" / manifest["outputs"]["aligned_volume_1"]["map"]).data
    updated = tmp_path / "job" / manifest["outputs"]["particles_for_map_1"]["path"]
    rebuilt = relion_reconstruct(updated, tmp_path / "rebuilt.mrc", VOXEL)
    control = relion_reconstruct(particles, tmp_path / "control.mrc", VOXEL)
    good = _fsc_band(rebuilt, aligned, 0.4)
    bad = _fsc_band(control, aligned, 0.4)
    assert good.mean() > 0.8
    assert good.mean() > bad.mean() + 0.3
