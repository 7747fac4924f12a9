"""The committed fixtures are what the project's own generator makes, and they align."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.jobs.align_3d_maps.align_pair import align_files
from align3d.jobs.align_3d_maps.chimerax import centre_A, grid_record
from align3d.jobs.align_3d_maps.demo import (
    CLASS2_TRUTH,
    FIXTURE_TRUTH,
    fixture_model_atoms,
    write_fixtures,
)
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import read_map
from align3d.slots.particles import ANGLES, read_particles
from align3d.slots.pose_formats import relion_matrices
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MODEL = "small_moving_model.cif"


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
    # the model's coordinates, to their last written digit (float64 sums may differ in their
    # last bits between machines)
    assert np.allclose(_positions(FIXTURES / MODEL), _positions(tmp_path / MODEL), atol=1.5e-3)


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
        # docs/conventions.md#following-a-moved-volume: A' = (F A F) R^T, F = diag(1, 1, -1)
        # when the hand is flipped
        f = np.diag([1.0, 1.0, -1.0]) if truth.flip else np.eye(3)
        expected = f @ before[rows] @ f @ truth.rotation.T
        if spec == "individual_spec.json" and k == 2:
            continue  # volume 2 has no particles
        assert np.abs(after[rows] - expected).max() < 0.02


def _positions(path: Path) -> np.ndarray:
    """Atom positions of a model file (Å, x y z, model coordinates), read with gemmi."""
    gemmi = pytest.importorskip("gemmi")
    structure = gemmi.read_structure(str(path))
    return np.array([a.pos.tolist() for m in structure for c in m for r in c for a in r])


def _density(map_path: Path, positions: np.ndarray) -> np.ndarray:
    """A map's density at model positions (Å), placed as ChimeraX places the map."""
    grid = grid_record(map_path)
    voxels = (positions - np.asarray(grid.origin_A)) / np.asarray(grid.voxel_size_A)
    return ndi.map_coordinates(
        read_map(map_path).data.astype(np.float64), voxels[:, ::-1].T, order=1
    )


def test_the_fixture_model_moves_onto_the_aligned_map(tmp_path: Path) -> None:
    """The README's apply --model example: the model fitted into small_moving.mrc, moved by the
    job's transform, lands where the truth puts it (the reference's own atoms) and on the
    aligned map's density."""
    source = _positions(FIXTURES / MODEL)
    assert 200 <= len(source) <= 500
    assert np.median(_density(FIXTURES / "small_moving.mrc", source)) > 0.3  # fitted: on density
    done = cli("run", str(FIXTURES / "align_spec.json"), "--out", str(tmp_path / "job"), "--quiet")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "moved.cif"
    result = str(tmp_path / "job" / "result.json")
    done = cli(
        "apply", result, "--volume", "1", "--model", str(FIXTURES / MODEL), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "mirrored" in done.stderr  # the fixture's hand is flipped, and apply says so
    moved = _positions(out)
    truth = fixture_model_atoms() + centre_A(grid_record(FIXTURES / "small_reference.mrc"))
    assert np.abs(moved - truth).max() < 0.05  # Å: the atoms the reference was drawn from
    aligned = _density(tmp_path / "job" / "volume_001" / "map.mrc", moved)
    expected = _density(FIXTURES / "small_reference.mrc", truth)
    assert np.median(aligned) > 0.3 and np.abs(aligned - expected).max() < 0.02
    # the check can fail: the model as it was, unmoved, is off the aligned map's density
    unmoved = _density(tmp_path / "job" / "volume_001" / "map.mrc", source)
    assert np.median(np.abs(unmoved - expected)) > 0.1
