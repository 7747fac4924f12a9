"""Pipeline integration: JSON document -> run -> result.json, through the real command line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.exit_codes import Exit
from align3d.engine.jobdef import discover_jobs
from align3d.engine.json_schema import NAMES, schema
from align3d.jobs.align_3d_maps.demo import FIXTURE_TRUTH
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import read_map, write_map
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def sha(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """Reference, two moving volumes (the fixture, and a half-map-carrying copy) and a mask."""
    folder = tmp_path / "in"
    ref = read_map(FIXTURES / "small_reference.mrc")
    mov = read_map(FIXTURES / "small_moving.mrc")
    write_map(folder / "ref.mrc", ref.data, ref.voxel_size_A)
    write_map(folder / "mov.mrc", mov.data, mov.voxel_size_A)
    rng = np.random.default_rng(0)
    for half in ("A", "B"):
        noisy = mov.data + 0.02 * rng.standard_normal(mov.data.shape).astype(np.float32)
        write_map(folder / f"mov_half_{half}.mrc", noisy, mov.voxel_size_A)
    write_map(folder / "mov_mask.mrc", (mov.data > 0.05).astype(np.float32), mov.voxel_size_A)
    return folder


def test_single_job_spec_runs_and_reports(tmp_path: Path, inputs: Path) -> None:
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 15, "create_mask_inputs": True},
        "inputs": {
            "reference_map": {"map": "in/ref.mrc"},
            "maps_to_align": [
                {
                    "map": "in/mov.mrc",
                    "map_half_A": "in/mov_half_A.mrc",
                    "map_half_B": "in/mov_half_B.mrc",
                },
            ],
            "mask_1": {"path": "in/mov_mask.mrc"},
        },
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    before = sha(inputs)
    out = tmp_path / "job"
    proc = cli("run", str(spec_path), "--out", str(out), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    manifest = ResultManifest.model_validate_json((out / "result.json").read_text())
    assert set(manifest.outputs) == {
        "reference_volume",
        "aligned_volumes",
        "aligned_volume_1",
        "mask_aligned_1",
    }
    volume = manifest.outputs["aligned_volume_1"]
    assert set(volume) >= {"map", "map_half_A", "map_half_B", "mask"}
    ref = read_map(inputs / "ref.mrc")
    for key in ("map", "map_half_A", "map_half_B", "mask"):
        moved = read_map(out / volume[key])
        assert moved.data.shape == ref.data.shape and moved.voxel_size_A == ref.voxel_size_A
    mask = read_map(out / volume["mask"]).data
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    (record,) = manifest.details_as(AlignmentDetails).alignments
    found = RigidTransform.from_matrix(record.matrix)
    assert record.index == 1 and record.hand_flipped == FIXTURE_TRUTH.flip
    assert found.rotation_error_deg(FIXTURE_TRUTH) <= 0.25
    assert record.fsc_0143_A is not None and record.score > 0.99
    assert sha(inputs) == before  # inputs untouched
    assert not list(tmp_path.glob(".job.tmp-*"))


def test_workflow_imports_aligns_and_chains_a_second_alignment(
    tmp_path: Path, inputs: Path
) -> None:
    workflow = {
        "jobs": {
            "ref": {"job": "import_volume", "params": {"map": "in/ref.mrc"}},
            "mov": {"job": "import_volume", "params": {"map": "in/mov.mrc"}},
            "first": {
                "job": "align_3d_maps",
                "params": {"max_shift_A": 15},
                "inputs": {
                    "reference_map": {"from": "ref.volume"},
                    "maps_to_align": [{"from": "mov.volume"}, {"map": "in/mov.mrc", "index": 2}],
                },
            },
            "second": {
                "job": "align_3d_maps",
                "params": {"max_shift_A": 15},
                "inputs": {
                    "reference_map": {"from": "ref.volume"},
                    "maps_to_align": [{"from": "first.aligned_volume_2"}],
                },
            },
        }
    }
    spec_path = tmp_path / "workflow.json"
    spec_path.write_text(json.dumps(workflow))
    assert cli("validate", str(spec_path)).returncode == Exit.OK
    out = tmp_path / "run"
    proc = cli("run", str(spec_path), "--out", str(out), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    first = ResultManifest.model_validate_json((out / "first" / "result.json").read_text())
    second = ResultManifest.model_validate_json((out / "second" / "result.json").read_text())
    assert [r.index for r in first.details_as(AlignmentDetails).alignments] == [1, 2]
    # the second job gets a map already in register: it finds (almost) the identity
    (again,) = second.details_as(AlignmentDetails).alignments
    redo = RigidTransform.from_matrix(again.matrix)
    assert redo.angle_deg < 0.25 and np.linalg.norm(redo.shift_A) < 0.5 and not redo.flip
    # the same workflow again reuses the completed job folders, untouched
    stamp = (out / "second" / "result.json").stat().st_mtime_ns
    proc = cli("run", str(spec_path), "--out", str(out))
    assert proc.returncode == Exit.OK and "reused" in proc.stdout
    assert (out / "second" / "result.json").stat().st_mtime_ns == stamp
    # a changed job does not replace a completed folder without --force
    workflow["jobs"]["second"]["params"]["max_shift_A"] = 10
    spec_path.write_text(json.dumps(workflow))
    proc = cli("run", str(spec_path), "--out", str(out), "--quiet")
    assert proc.returncode == Exit.INVALID_INPUT and "--force" in proc.stderr
    assert (out / "second" / "result.json").stat().st_mtime_ns == stamp
    proc = cli("run", str(spec_path), "--out", str(out), "--quiet", "--force")
    assert proc.returncode == Exit.OK
    assert json.loads((out / "second" / "result.json").read_text())["params"]["max_shift_A"] == 10


def test_validate_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": -3, "lowpas": 5},
        "inputs": {"maps_to_align": [{"map": "x.mrc"}]},
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    proc = cli("validate", str(path), "--json")
    assert proc.returncode == Exit.INVALID_INPUT
    issues = json.loads(proc.stdout)
    assert {(i["code"], i["path"]) for i in issues} == {
        ("param_out_of_range", "$.params.max_shift_A"),
        ("unknown_param", "$.params.lowpas"),
        ("missing_required_input", "$.inputs.reference_map"),
    }
    out = tmp_path / "never"
    assert cli("run", str(path), "--out", str(out)).returncode == Exit.INVALID_INPUT
    assert not out.exists()  # nothing is written for an invalid job


def test_bad_json_is_reported_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"job": "align_3d_maps",\n "params": {,}}')
    proc = cli("validate", str(path))
    assert proc.returncode == Exit.INVALID_INPUT
    assert "line 2" in proc.stderr and "Traceback" not in proc.stderr


def test_committed_json_schemas_are_current() -> None:
    for name in NAMES:
        path = FIXTURES.parent / "schemas" / f"{name}.schema.json"
        assert path.exists(), f"{path} missing: run `align3d schema --out schemas`"
        committed = json.loads(path.read_text())
        assert committed == json.loads(json.dumps(schema(name, discover_jobs()))), (
            f"{path} is stale: run `align3d schema --out schemas`"
        )


@pytest.mark.parametrize("name", ["align_spec.json", "workflow.json"])
def test_readme_examples_run_as_written(tmp_path: Path, name: str) -> None:
    readme = (FIXTURES.parent / "README.md").read_text()
    text = (FIXTURES / name).read_text().strip()
    assert text in readme, f"README no longer shows fixtures/{name} as it is"
    assert cli("validate", str(FIXTURES / name)).returncode == Exit.OK
    proc = cli("run", str(FIXTURES / name), "--out", str(tmp_path / "out"), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    if name == "workflow.json":
        check = ResultManifest.model_validate_json(
            (tmp_path / "out" / "check" / "result.json").read_text()
        )
        residual = RigidTransform.from_matrix(
            check.details_as(AlignmentDetails).alignments[0].matrix
        )
        assert residual.angle_deg < 0.25 and np.linalg.norm(residual.shift_A) < 0.5


def test_particles_follow_their_volume_in_both_modes(
    tmp_path: Path, inputs: Path, shared_data: Path
) -> None:
    from align3d.slots.particles import read_particles

    star = shared_data / "particles" / "relion31.star"
    cs = shared_data / "particles" / "cryosparc_P12_J24_001_particles.cs"
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 15, "update_particle_alignments": True},
        "inputs": {
            "reference_map": {"map": "in/ref.mrc"},
            "maps_to_align": [{"map": "in/mov.mrc"}],
            "particles_1": {"path": str(star)},
        },
    }
    (tmp_path / "ind.json").write_text(json.dumps(spec))
    proc = cli("run", str(tmp_path / "ind.json"), "--out", str(tmp_path / "ind"), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    manifest = ResultManifest.model_validate_json((tmp_path / "ind" / "result.json").read_text())
    out = read_particles(tmp_path / "ind" / manifest.outputs["particles_for_map_1"]["path"])
    assert len(out) == len(read_particles(star))
    group = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 15, "update_particle_alignments": True},
        "inputs": {
            "reference_map": {"map": "in/ref.mrc"},
            "maps_to_align_group": {"volumes": [{"map": "in/mov.mrc"}]},
            "particles_all": {"path": str(cs)},
        },
    }
    (tmp_path / "grp.json").write_text(json.dumps(group))
    proc = cli("run", str(tmp_path / "grp.json"), "--out", str(tmp_path / "grp"), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    manifest = ResultManifest.model_validate_json((tmp_path / "grp" / "result.json").read_text())
    assert manifest.outputs["all_particles"]["path"] == "all_particles.cs"


def test_a_class_without_a_volume_is_an_error(
    tmp_path: Path, inputs: Path, shared_data: Path
) -> None:
    import starfile

    blocks = starfile.read(shared_data / "particles" / "relion31.star", always_dict=True)
    blocks["particles"]["rlnClassNumber"] = [1, 3, 1, 3, 1][: len(blocks["particles"])]
    star = tmp_path / "two_classes.star"
    starfile.write(blocks, star)
    before = star.read_bytes()
    group = {
        "job": "align_3d_maps",
        "params": {"update_particle_alignments": True},
        "inputs": {
            "reference_map": {"map": "in/ref.mrc"},
            "maps_to_align_group": {"volumes": [{"map": "in/mov.mrc"}]},
            "particles_all": {"path": str(star)},
        },
    }
    (tmp_path / "grp.json").write_text(json.dumps(group))
    out = tmp_path / "grp"
    proc = cli("run", str(tmp_path / "grp.json"), "--out", str(out), "--quiet")
    assert proc.returncode == Exit.INVALID_INPUT
    assert "particles_all" in proc.stderr and "[3]" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    assert star.read_bytes() == before
