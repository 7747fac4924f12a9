"""The committed fixtures are what the project's own generator makes, and they align."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.alignment.geometry import RigidTransform
from engine.alignment.params import AlignmentParams
from jobs.align_3d_maps.demo import FIXTURE_TRUTH, write_fixtures
from jobs.align_3d_maps.volume import align_files
from slots.mrc import read_map

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_committed_fixtures_are_reproducible(tmp_path: Path) -> None:
    write_fixtures(tmp_path)
    for name in ("small_reference.mrc", "small_moving.mrc"):
        committed = read_map(FIXTURES / name)
        fresh = read_map(tmp_path / name)
        assert committed.voxel_size_A == fresh.voxel_size_A
        assert np.array_equal(committed.data, fresh.data), f"fixtures/{name} is stale"
    assert json.loads((FIXTURES / "small_truth.json").read_text()) == json.loads(
        (tmp_path / "small_truth.json").read_text()
    )


def test_fixture_pair_aligns_to_its_truth(tmp_path: Path) -> None:
    outcome = align_files(
        FIXTURES / "small_reference.mrc",
        FIXTURES / "small_moving.mrc",
        tmp_path / "aligned.mrc",
        AlignmentParams(max_shift_A=15.0),
    )
    found: RigidTransform = outcome.alignment.transform
    assert found.flip == FIXTURE_TRUTH.flip
    assert found.rotation_error_deg(FIXTURE_TRUTH) <= 0.25
    assert found.shift_error_A(FIXTURE_TRUTH) <= 0.25 * 3.0
    assert outcome.fsc_after_0143_A < outcome.fsc_before_0143_A
