"""The RELION oracle for particle poses: our projector against RELION 3.1.3 itself.

* Stored ``relion_project`` output (../shared/data/particles) against
  :func:`tests.oracles.projection.project` (no RELION needed).
* The live ``relion_project`` binary on a synthetic and a real map, with origins in Å.
* ``relion_reconstruct`` from RELION's projections and from ours (with origins): both give back
  the map, so images written at our poses mean to RELION what they mean to us.

RELION tests skip with the reason when RELION is absent and fail under CI (``CI`` set).
Documented RELION quirks handled here (not in the projector): for an odd box, ``relion_project``
output sits +1 pixel in x and y from the ``N // 2`` centre; ``relion_reconstruct`` needs even boxes.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.fsc import fsc
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.slots.pose_formats import relion_matrices
from tests.oracles.projection import project, project_many, shift_image
from tests.relion_tools import (
    normalised_correlation,
    read_particles,
    relion_project,
    relion_reconstruct,
    require_relion,
    stack_names,
    write_map,
    write_pose_star,
    write_stack,
)

POSES = np.array(
    [[10.0, 20.0, 30.0], [100.0, 80.0, -40.0], [200.0, 150.0, 60.0], [-75.0, 95.0, 170.0]]
)
ORIGINS_A = np.array([[0.0, 0.0], [3.0, -5.0], [-7.5, 2.25], [4.6, 6.2]])


def _poses_of(particles) -> tuple[np.ndarray, np.ndarray]:
    angles = particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy(float)
    origins = particles[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy(float)
    return angles, origins


def _random_poses(count: int, seed: int, max_origin_A: float) -> tuple[np.ndarray, np.ndarray]:
    # (rot, tilt, psi) of uniform random rotations: A = from_euler('ZYZ', ...).T is uniform too
    angles = Rotation.random(count, random_state=seed).as_euler("ZYZ", degrees=True)
    origins = np.random.default_rng(seed).uniform(-max_origin_A, max_origin_A, (count, 2))
    return angles, origins


def _assert_fsc_high(truth: np.ndarray, rec: np.ndarray, voxel_A: float) -> None:
    """FSC >= 0.9 at every shell up to 0.6 of Nyquist."""
    curve = fsc(truth, rec, voxel_A=voxel_A)
    nyquist = 1.0 / (2.0 * voxel_A)
    shells = curve.frequency <= 0.6 * nyquist
    worst = float(curve.fsc[shells].min())
    assert worst >= 0.9, f"FSC drops to {worst:.3f} below 0.6 Nyquist: {np.round(curve.fsc, 3)}"


def mats(angles: np.ndarray) -> np.ndarray:
    """RELION pose matrices of ``(rot, tilt, psi)`` rows in degrees."""
    return relion_matrices(*np.asarray(angles, dtype=float).reshape(-1, 3).T)


# ----------------------------------------------------------------- the convention, no RELION


def test_point_lands_at_A_r_minus_origin() -> None:
    """A blob at r (Å) appears at (A r)_xy - o (docs/conventions.md#particle-poses), for several
    poses and origins."""
    n, voxel = 32, 2.0
    r = np.array([6.0, -4.0, 3.0])  # Å, xyz
    z, y, x = (np.indices((n, n, n)) - n // 2) * voxel
    vol = np.exp(-((x - r[0]) ** 2 + (y - r[1]) ** 2 + (z - r[2]) ** 2) / (2 * 3.0**2))
    for (rot, tilt, psi), origin in zip(POSES, ORIGINS_A, strict=True):
        img = project(vol, voxel, relion_matrices(rot, tilt, psi)[0], *origin)
        iy, ix = (np.indices((n, n)) - n // 2) * voxel
        centroid = np.array([(img * ix).sum(), (img * iy).sum()]) / img.sum()
        expected = (relion_matrices(rot, tilt, psi)[0] @ r)[:2] - origin
        np.testing.assert_allclose(centroid, expected, atol=0.05)


def test_project_many_matches_project() -> None:
    vol = protein_like_map((24, 24, 24), 2.0, seed=3)
    many = project_many(vol, 2.0, mats(POSES[:2]), ORIGINS_A[:2], order=1)
    for i in range(2):
        one = project(vol, 2.0, relion_matrices(*POSES[i])[0], *ORIGINS_A[i], order=1)
        np.testing.assert_allclose(many[i], one, rtol=1e-10, atol=1e-10)


def test_rejects_non_cubic_volume() -> None:
    with pytest.raises(ValueError, match="cubic"):
        project(np.zeros((8, 8, 10)), 1.0, np.eye(3))


# ------------------------------------------------------- stored relion_project output (real data)


@pytest.mark.realdata
def test_projector_matches_stored_relion_projections_even_box(shared_data: Path) -> None:
    """RELION 3.1.3 projections of the 70S ribosome cropped to 64^3 at 1 Å (the data's README)."""
    vol = mrcfile.read(shared_data / "maps" / "ribosome70S_65px.mrc")[:64, :64, :64]
    particles, images = read_particles(shared_data / "particles" / "relion313_proj_64.star")
    angles, origins = _poses_of(particles)
    ours = project_many(vol, 1.0, mats(angles), origins)
    for i in range(len(images)):
        cc = normalised_correlation(ours[i], images[i])
        assert cc >= 0.99, f"image {i + 1}: CC {cc:.4f}"


@pytest.mark.realdata
def test_projector_matches_stored_relion_projections_odd_box(shared_data: Path) -> None:
    """Odd box (65^3): RELION 3.1 output sits +1 px in x and y from N // 2, a RELION quirk
    (docs/conventions.md#relion); our centred projection moved by (+1, +1) px matches it, and
    does not without."""
    vol = mrcfile.read(shared_data / "maps" / "ribosome70S_65px.mrc")
    particles, images = read_particles(shared_data / "particles" / "rln_proj_65_centered.star")
    angles, origins = _poses_of(particles)
    ours = project_many(vol, 1.0, mats(angles), origins)
    for i in range(len(images)):
        cc = normalised_correlation(shift_image(ours[i], (1.0, 1.0)), images[i])
        assert cc >= 0.99, f"image {i + 1}: CC {cc:.4f} with the +1 px odd-box quirk"
        unshifted = normalised_correlation(ours[i], images[i])
        assert unshifted < 0.95, f"image {i + 1}: the odd-box quirk seems gone (CC {unshifted:.4f})"


# -------------------------------------------------------------------- the live relion_project


def _map_case(name: str, request: pytest.FixtureRequest) -> tuple[np.ndarray, float]:
    if name == "synthetic48":
        return protein_like_map((48, 48, 48), 2.0, seed=1), 2.0
    shared_data = request.getfixturevalue("shared_data")
    return mrcfile.read(shared_data / "maps" / "ribosome70S_65px.mrc")[:64, :64, :64], 1.0


@pytest.mark.parametrize(
    "case", ["synthetic48", pytest.param("ribosome64", marks=pytest.mark.realdata)]
)
def test_relion_project_agrees_with_projector(
    case: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """relion_project at poses with origins in Å (sub-pixel ones too) equals our projection;
    the origin sign and unit matter (a flipped origin does not match)."""
    require_relion("relion_project")
    vol, voxel = _map_case(case, request)
    box = vol.shape[0]
    write_map(tmp_path / "map.mrc", vol, voxel)
    star_in = write_pose_star(
        tmp_path / "poses.star", stack_names("none.mrcs", len(POSES)), POSES, ORIGINS_A, voxel, box
    )
    star_out = relion_project(tmp_path / "map.mrc", star_in, tmp_path / "proj", voxel)
    particles, images = read_particles(star_out)
    angles, origins = _poses_of(particles)
    np.testing.assert_allclose(angles, POSES, atol=1e-4)
    np.testing.assert_allclose(origins, ORIGINS_A, atol=1e-4)
    ours = project_many(vol, voxel, mats(POSES), ORIGINS_A)
    flipped = project_many(vol, voxel, mats(POSES), -ORIGINS_A, order=1)
    for i in range(len(POSES)):
        cc = normalised_correlation(ours[i], images[i])
        assert cc >= 0.99, f"{case} image {i + 1}: CC {cc:.4f}"
        if np.any(ORIGINS_A[i] != 0):
            wrong = normalised_correlation(flipped[i], images[i])
            assert wrong < 0.95, f"{case} image {i + 1}: origin sign not tested (CC {wrong:.4f})"


def test_relion_project_odd_box_quirk(tmp_path: Path) -> None:
    """The live binary shows the documented odd-box quirk: +1 px in x and y."""
    require_relion("relion_project")
    vol, voxel = protein_like_map((47, 47, 47), 2.0, seed=1), 2.0
    write_map(tmp_path / "odd.mrc", vol, voxel)
    star_in = write_pose_star(
        tmp_path / "poses.star", stack_names("none.mrcs", 3), POSES[:3], ORIGINS_A[:3], voxel, 47
    )
    _, images = read_particles(relion_project(tmp_path / "odd.mrc", star_in, tmp_path / "p", voxel))
    ours = project_many(vol, voxel, mats(POSES[:3]), ORIGINS_A[:3], order=1)
    for i in range(3):
        cc = normalised_correlation(shift_image(ours[i], (1.0, 1.0)), images[i])
        assert cc >= 0.99, f"image {i + 1}: CC {cc:.4f} with the +1 px odd-box quirk"


# ---------------------------------------------------------------- relion_reconstruct round trips


def test_relion_reconstruct_from_relion_projections(tmp_path: Path) -> None:
    """relion_project at 500 random poses (origins up to 4 Å), then relion_reconstruct: the map
    comes back (FSC >= 0.9 to 0.6 Nyquist). Checks the helpers drive RELION correctly."""
    require_relion("relion_project", "relion_reconstruct")
    vol, voxel = protein_like_map((48, 48, 48), 2.0, seed=1), 2.0
    angles, origins = _random_poses(500, seed=7, max_origin_A=4.0)
    write_map(tmp_path / "map.mrc", vol, voxel)
    star_in = write_pose_star(
        tmp_path / "poses.star", stack_names("none.mrcs", 500), angles, origins, voxel, 48
    )
    star_out = relion_project(tmp_path / "map.mrc", star_in, tmp_path / "proj", voxel)
    rec = relion_reconstruct(star_out, tmp_path / "rec.mrc", voxel)
    assert rec.shape == vol.shape
    _assert_fsc_high(vol, rec, voxel)


def test_relion_reconstruct_from_our_projections(tmp_path: Path) -> None:
    """Images made by our projector at random poses and origins, written as a RELION 3.1 stack,
    reconstruct to the map in RELION: our poses mean to RELION what they mean to us."""
    require_relion("relion_reconstruct")
    box, voxel, count = 40, 2.5, 400
    vol = protein_like_map((box, box, box), voxel, seed=2)
    angles, origins = _random_poses(count, seed=11, max_origin_A=5.0)
    images = project_many(vol, voxel, mats(angles), origins, order=1)
    write_stack(tmp_path / "ours.mrcs", images, voxel)
    star = write_pose_star(
        tmp_path / "ours.star", stack_names("ours.mrcs", count), angles, origins, voxel, box
    )
    rec = relion_reconstruct(star, tmp_path / "rec.mrc", voxel)
    _assert_fsc_high(vol, rec, voxel)
    # and the origins matter: the same images with the origins dropped do not reconstruct
    bad = write_pose_star(
        tmp_path / "no_origin.star", stack_names("ours.mrcs", count), angles, None, voxel, box
    )
    rec_bad = relion_reconstruct(bad, tmp_path / "rec_bad.mrc", voxel)
    with pytest.raises(AssertionError):
        _assert_fsc_high(vol, rec_bad, voxel)
