"""The committed fixtures are what the project's own generator makes, and they align."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.jobs.align_3d_maps.demo import CLASS2_TRUTH, FIXTURE_TRUTH, write_fixtures
from align3d.jobs.align_3d_maps.volume import align_files
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import read_map
from align3d.slots.particles import ANGLES, read_particles
from align3d.slots.pose_formats import relion_matrices
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


MAPS = (
    "small_reference.mrc",
    "small_moving.mrc",
    "small_moving_half1.mrc",
    "small_moving_half2.mrc",
    "small_mask.mrc",
    "small_class2.mrc",
)


def test_committed_fixtures_are_reproducible(tmp_path: Path) -> None:
    write_fixtures(tmp_path)
    assert (FIXTURES / "small_particles.star").read_text() == (
        tmp_path / "small_particles.star"
    ).read_text()
    for name in MAPS:
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


def _truths() -> dict[str, RigidTransform]:
    return {"small_moving.mrc": FIXTURE_TRUTH, "small_class2.mrc": CLASS2_TRUTH}


@pytest.mark.parametrize("spec", ["group_spec.json", "individual_spec.json"])
def test_the_readme_example_specs_run_and_find_their_truths(tmp_path: Path, spec: str) -> None:
    """The group-mode and individual-mode examples of the README (fixtures/), run as a user
    runs them: each volume finds its truth, its maps and mask move, and the particles follow
    their volume (group mode: each its class's)."""
    done = cli("run", str(FIXTURES / spec), "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    manifest = ResultManifest.model_validate_json((tmp_path / "out" / "result.json").read_text())
    volumes = json.loads((FIXTURES / spec).read_text())["inputs"]
    listed = volumes.get("maps_to_align") or volumes["maps_to_align_group"]["volumes"]
    truths = [_truths()[v["map"]] for v in listed]
    assert [r.index for r in manifest.details_as(AlignmentDetails).alignments] == [1, 2]
    for record, truth in zip(manifest.details_as(AlignmentDetails).alignments, truths, strict=True):
        found = RigidTransform.from_matrix(record.matrix)
        assert found.flip == truth.flip
        assert found.rotation_error_deg(truth) <= 1.0 and found.shift_error_A(truth) <= 1.0
        assert record.warnings == []
    folder = tmp_path / "out" / "volume_001"
    assert (folder / "mask.mrc").is_file()
    assert (folder / "map_half_A.mrc").is_file() == (spec == "individual_spec.json")
    source = read_particles(FIXTURES / "small_particles.star")
    moved_file = "all_particles.star" if spec == "group_spec.json" else "particles_for_map_1.star"
    moved = read_particles(tmp_path / "out" / moved_file)
    classes = source.table["rlnClassNumber"].to_numpy()
    before = relion_matrices(*(source.table[c].to_numpy(float) for c in ANGLES))
    after = relion_matrices(*(moved.table[c].to_numpy(float) for c in ANGLES))
    for k, truth in enumerate(truths, start=1):
        rows = classes == k if spec == "group_spec.json" else np.ones(len(classes), bool)
        # DESIGN.md: A' = (F A F) R^T, F = diag(1, 1, -1) when the hand is flipped
        f = np.diag([1.0, 1.0, -1.0]) if truth.flip else np.eye(3)
        expected = f @ before[rows] @ f @ truth.rotation.T
        if spec == "individual_spec.json" and k == 2:
            continue  # volume 2 has no particles
        assert np.abs(after[rows] - expected).max() < 0.02
