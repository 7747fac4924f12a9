"""Known-answer tests on the real maps of ../shared/data/maps (skipped with a reason when the
folder is absent; required under CI).

Asymmetric maps are judged by the transform. Symmetric (D2, D7, C4) and helical maps are judged
by the aligned map against the truth, since any symmetry mate is a right answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from align3d.engine.alignment.align import align_maps
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.preprocess import default_mask
from align3d.jobs.align_3d_maps.demo import add_noise
from align3d.slots.mrc import MapData
from tests.helpers import masked_correlation, move_with_scipy
from tests.oracles.transforms import random_transform

pytestmark = pytest.mark.realdata

ASYMMETRIC = ["ribosome70S_65px.mrc", "synthetic_hand_64px.mrc"]
SYMMETRIC_OR_HELICAL = [
    "betagal_D2_100px.mrc",
    "groel_D7_100px.mrc",
    "emd6824_trpml3_C4_70px.mrc",
    "emd5168_factin_100px.map",
    "emd5170_filament_100px.map",
]


def _case(m: MapData, seed: int, flip: bool | None = None):
    p = float(m.voxel_size_A[0])
    rng = np.random.default_rng(seed)
    max_shift = 0.1 * m.data.shape[0] * p
    truth = random_transform(rng, 0.8 * max_shift, flip=flip)
    moving = move_with_scipy(m.data, p, truth.inverse(), m.data.shape, p).astype(np.float32)
    return p, truth, moving, AlignmentParams(max_shift_A=max_shift)


@pytest.mark.parametrize("name", ASYMMETRIC)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_asymmetric_noise_free(real_map: Callable[[str], MapData], name: str, seed: int) -> None:
    m = real_map(name)
    p, truth, moving, params = _case(m, seed, flip=bool(seed % 2))
    result = align_maps(m.data, moving, reference_voxel_A=p, moving_voxel_A=p, params=params)
    assert result.transform.flip == truth.flip
    assert result.transform.rotation_error_deg(truth) <= 0.25
    assert result.transform.shift_error_A(truth) <= 0.25 * p


@pytest.mark.parametrize("name", SYMMETRIC_OR_HELICAL)
def test_symmetric_maps_judged_by_the_aligned_map(
    real_map: Callable[[str], MapData], name: str
) -> None:
    m = real_map(name)
    p, truth, moving, params = _case(m, seed=4)
    result = align_maps(m.data, moving, reference_voxel_A=p, moving_voxel_A=p, params=params)
    aligned = move_with_scipy(moving, p, result.transform, m.data.shape, p)
    truth_aligned = move_with_scipy(moving, p, truth, m.data.shape, p)
    mask = default_mask(m.data.shape, voxel_A=p, edge_A=4 * p)
    assert masked_correlation(aligned, truth_aligned, mask) >= 0.98
    assert result.transform.flip == truth.flip


@pytest.mark.parametrize("seed", [5, 6, 7, 8])
def test_ribosome_with_noise_in_both_maps(real_map: Callable[[str], MapData], seed: int) -> None:
    # SNR 0.5 over the box after the 10 Å low-pass, independent noise in each map
    m = real_map("ribosome70S_65px.mrc")
    p, truth, moving, params = _case(m, seed)
    res_A = params.lowpass_resolution_A
    noisy_ref = add_noise(m.data, p, 0.5, res_A, seed=seed)
    noisy_mov = add_noise(moving, p, 0.5, res_A, seed=100 + seed)
    result = align_maps(noisy_ref, noisy_mov, reference_voxel_A=p, moving_voxel_A=p, params=params)
    assert result.transform.flip == truth.flip
    assert result.transform.rotation_error_deg(truth) <= 1.0
    assert result.transform.shift_error_A(truth) <= p


def test_maps_of_different_voxel_size_and_box(real_map: Callable[[str], MapData]) -> None:
    # the moving map sampled on another grid: 1.3x coarser voxels, odd non-cubic box
    m = real_map("ribosome70S_65px.mrc")
    p = float(m.voxel_size_A[0])
    truth = random_transform(np.random.default_rng(9), 20.0, flip=True)
    moving = move_with_scipy(m.data, p, truth.inverse(), (51, 49, 53), 1.3 * p)
    result = align_maps(
        m.data,
        moving.astype(np.float32),
        reference_voxel_A=p,
        moving_voxel_A=1.3 * p,
        params=AlignmentParams(),
    )
    assert result.transform.flip
    assert result.transform.rotation_error_deg(truth) <= 0.25
    assert result.transform.shift_error_A(truth) <= 0.25 * p
