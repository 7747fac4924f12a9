"""The projection oracle (docs/conventions.md#following-a-moved-volume): projections of the moved
volume at the updated poses equal projections of the original volume at the original poses, with
and without a hand flip."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.poses import move_poses
from align3d.engine.alignment.resample import GridMove, resample_map
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.slots.pose_formats import (
    cryosparc_matrices,
    cryosparc_rotvecs,
    relion_angles,
    relion_matrices,
)
from tests.oracles.projection import project_many
from tests.oracles.transforms import random_transform
from tests.relion_tools import normalised_correlation

BOX, VOXEL = 48, 2.0


@pytest.mark.parametrize("flip", [False, True], ids=["same-hand", "mirrored"])
@pytest.mark.parametrize("seed", [1, 2])
def test_moved_volume_at_updated_poses_projects_like_the_original(flip: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    volume = protein_like_map((BOX, BOX, BOX), VOXEL, radius_fraction=0.3, seed=seed)
    transform = random_transform(rng, 6.0, flip=flip)
    moved = resample_map(
        volume,
        GridMove(transform=transform, in_voxel_A=VOXEL, out_shape=volume.shape, out_voxel_A=VOXEL),
    )
    poses = Rotation.random(6, random_state=rng).as_matrix().transpose(0, 2, 1)
    origins = rng.uniform(-3.0, 3.0, size=(6, 2))
    new_poses, new_origins = move_poses(poses, origins, transform=transform)
    before = project_many(volume, VOXEL, poses, origins, order=1)
    after = project_many(moved, VOXEL, new_poses, new_origins, order=1)
    for i in range(len(poses)):
        assert normalised_correlation(before[i], after[i]) >= 0.99
    # the old poses do not fit the moved volume (the test can fail)
    stale = project_many(moved, VOXEL, poses, origins, order=1)
    assert np.mean([normalised_correlation(before[i], stale[i]) for i in range(6)]) < 0.95


def test_pose_formats_round_trip_including_gimbal_lock() -> None:
    rng = np.random.default_rng(0)
    angles = np.column_stack(
        [rng.uniform(-180, 180, 50), rng.uniform(0, 180, 50), rng.uniform(-180, 180, 50)]
    )
    angles[:5, 1] = 0.0  # gimbal lock
    angles[5:10, 1] = 180.0
    a = relion_matrices(*angles.T)
    assert np.allclose(relion_matrices(*relion_angles(a).T), a, atol=1e-10)
    assert np.allclose(cryosparc_matrices(cryosparc_rotvecs(a)), a, atol=1e-10)
    # docs/conventions.md#particle-poses: RELION's A is the transpose of the ZYZ matrix,
    # CryoSPARC's pose that of A^T
    ref = Rotation.from_euler("ZYZ", angles[12], degrees=True).as_matrix().T
    assert np.allclose(a[12], ref)
    assert np.allclose(Rotation.from_rotvec(cryosparc_rotvecs(a)[12]).as_matrix(), a[12].T)
