"""Particle files keep everything but their poses; poses follow the volume (no RELION needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.poses import move_poses
from align3d.slots.errors import ParticleFileError
from align3d.slots.particles import ANGLES, CsParticles, StarParticles, read_particles
from align3d.slots.pose_formats import cryosparc_matrices, relion_angles, relion_matrices
from tests.oracles.transforms import random_transform

pytestmark = pytest.mark.realdata

STARS = [
    "relion31.star",
    "relion31.6opticsgroups.star",
    "relion5.star",
    "sample_particles_relion31.star",
]


def mover(t: RigidTransform) -> Callable:
    return lambda a, o, rows: move_poses(a, o, transform=t)


def pose_matrices(p: StarParticles) -> np.ndarray:
    return relion_matrices(*(p.table[c].to_numpy(float) for c in ANGLES))


@pytest.fixture
def particles_dir(shared_data: Path) -> Path:
    return shared_data / "particles"


@pytest.mark.parametrize("name", STARS)
def test_star_round_trip_keeps_every_value(particles_dir: Path, tmp_path: Path, name: str) -> None:
    src = read_particles(particles_dir / name)
    assert isinstance(src, StarParticles)
    out = read_particles(src.write(tmp_path / name))
    assert list(out.blocks) == list(src.blocks)
    for key, block in src.blocks.items():
        pd.testing.assert_frame_equal(out.blocks[key], block, check_exact=True)


@pytest.mark.parametrize("name", STARS)
def test_identity_update_changes_no_pose(particles_dir: Path, tmp_path: Path, name: str) -> None:
    src = read_particles(particles_dir / name)
    out = read_particles(src.updated(mover(RigidTransform())).write(tmp_path / name))
    assert np.allclose(pose_matrices(out), pose_matrices(src), atol=1e-9)
    untouched = [c for c in src.table.columns if not c.startswith(("rlnAngle", "rlnOrigin"))]
    pd.testing.assert_frame_equal(out.table[untouched], src.table[untouched], check_exact=True)
    for key in src.blocks:
        if key != src.key:
            pd.testing.assert_frame_equal(out.blocks[key], src.blocks[key], check_exact=True)


@pytest.mark.parametrize("flip", [False, True])
def test_update_then_inverse_gives_the_original_poses(
    particles_dir: Path, tmp_path: Path, flip: bool
) -> None:
    src = read_particles(particles_dir / "relion31.6opticsgroups.star")
    t = random_transform(np.random.default_rng(4), 20.0, flip=flip)
    there = read_particles(src.updated(mover(t)).write(tmp_path / "there.star"))
    back = read_particles(there.updated(mover(t.inverse())).write(tmp_path / "back.star"))
    assert not np.allclose(pose_matrices(there), pose_matrices(src), atol=1e-3)
    assert np.allclose(pose_matrices(back), pose_matrices(src), atol=1e-8)
    origins = ["rlnOriginXAngst", "rlnOriginYAngst"]
    assert np.allclose(back.table[origins], src.table[origins], atol=1e-6)


def test_cryosparc_update_equals_the_relion_update(particles_dir: Path, tmp_path: Path) -> None:
    src = read_particles(particles_dir / "cryosparc_P12_J24_001_particles.cs")
    assert isinstance(src, CsParticles)
    t = random_transform(np.random.default_rng(8), 15.0, flip=True)
    updated = src.updated(mover(t))
    # the same particles in RELION's convention, updated with RELION's formulas
    psize = src.data["alignments3D/psize_A"].astype(float)[:, None]
    angles = relion_angles(cryosparc_matrices(src.data["alignments3D/pose"]))
    a = relion_matrices(*angles.T)
    origins = src.data["alignments3D/shift"].astype(float) * psize
    expected_a, expected_o = move_poses(a, origins, transform=t)
    got_a = cryosparc_matrices(updated.data["alignments3D/pose"])
    assert np.allclose(got_a, expected_a, atol=1e-5)  # float32 storage
    assert np.allclose(updated.data["alignments3D/shift"] * psize, expected_o, atol=1e-3)

    from cryosparc.dataset import Dataset

    path = updated.write(tmp_path / "updated.cs")
    ds = Dataset.load(str(path))
    original = Dataset.load(str(particles_dir / "cryosparc_P12_J24_001_particles.cs"))
    assert ds.fields() == original.fields() and len(ds) == len(original)
    for field in original.fields():
        if field not in ("alignments3D/pose", "alignments3D/shift"):
            assert np.array_equal(ds[field], original[field]), field
    assert ds["alignments3D/pose"].dtype == original["alignments3D/pose"].dtype


def test_relion30_pixel_origins_are_updated_in_pixels(particles_dir: Path, tmp_path: Path) -> None:
    src = read_particles(particles_dir / "FinalRefinement-OriginalParticles-PfCRT.star")
    t = RigidTransform(np.eye(3), np.array([3.0, -2.0, 1.0]))
    out = read_particles(src.updated(mover(t)).write(tmp_path / "out.star"))
    pixel = (
        src.table["rlnDetectorPixelSize"].to_numpy(float)
        * 1e4
        / src.table["rlnMagnification"].to_numpy(float)
    )
    a = pose_matrices(src)
    shift_px = (a @ t.shift_A)[:, :2] / pixel[:, None]
    moved = out.table[["rlnOriginX", "rlnOriginY"]].to_numpy(float)
    assert np.allclose(
        moved, src.table[["rlnOriginX", "rlnOriginY"]].to_numpy(float) + shift_px, atol=1e-6
    )
    assert "rlnOriginXAngst" not in out.table


def test_priors_follow_the_poses(particles_dir: Path, tmp_path: Path) -> None:
    src = read_particles(particles_dir / "relion31.star")
    table = src.table.copy()
    table["rlnAngleRotPrior"] = table["rlnAngleRot"]
    table["rlnAngleTiltPrior"] = table["rlnAngleTilt"]
    table["rlnAnglePsiPrior"] = table["rlnAnglePsi"]
    table["rlnOriginXPriorAngst"] = table["rlnOriginXAngst"]
    table["rlnOriginYPriorAngst"] = table["rlnOriginYAngst"]
    blocks = dict(src.blocks)
    blocks[src.key] = table
    with_priors = StarParticles(src.path, blocks, src.key, None)
    t = random_transform(np.random.default_rng(2), 10.0, flip=True)
    out = with_priors.updated(mover(t)).table
    for pose, prior in zip(
        ANGLES, ("rlnAngleRotPrior", "rlnAngleTiltPrior", "rlnAnglePsiPrior"), strict=True
    ):
        assert np.allclose(out[pose], out[prior])
    assert np.allclose(out["rlnOriginXAngst"], out["rlnOriginXPriorAngst"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("noposes.star", "data_particles\n\nloop_\n_rlnImageName #1\n1@a.mrcs\n", "pose columns"),
        ("garbage.star", "\x00\x01 not a star file", "STAR"),
        ("garbage.cs", "not numpy", ".cs"),
        ("plain.txt", "x", ".star or a CryoSPARC .cs"),
    ],
)
def test_bad_particle_files_are_refused_clearly(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ParticleFileError, match=message) as info:
        read_particles(path)
    assert str(path) in str(info.value)


def test_pixel_origins_in_a_relion31_file_are_refused(particles_dir: Path) -> None:
    with pytest.raises(ParticleFileError, match="rlnOriginXAngst"):
        read_particles(particles_dir / "rln_proj_65_shifted.star")


def test_cs_without_alignments_is_refused(tmp_path: Path) -> None:
    data = np.zeros(3, dtype=[("uid", "<u8"), ("blob/idx", "<u4")])
    path = tmp_path / "nopose.cs"
    with path.open("wb") as fh:
        np.save(fh, data)
    with pytest.raises(ParticleFileError, match="alignments3D/pose"):
        read_particles(path)
