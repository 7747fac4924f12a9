"""The runtime/job contract: a job that is not align3d's, installed through the ``align3d.jobs``
entry point of a throwaway distribution, is described, given a schema, validated and run by the
``align3d`` command like align3d's own jobs, and its ``result.json`` carries its own details.
And the ``result.json`` of the earlier layout (version 2, written by align3d before ``details``)
is still read by ``align3d apply`` and the hosts' output lists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from align3d.engine.exit_codes import Exit
from align3d.engine.jobdef import DeclaredJob, discover_jobs
from align3d.engine.store import old_job_of, parse_manifest, read_manifest
from align3d.jobs.align_3d_maps.hosts.outputs import output_files, read_result
from align3d.schemas.documents import SCHEMA_VERSION, AlignmentDetails
from align3d.slots.mrc import read_map, write_map
from tests.helpers import cli
from tests.test_host_pipeliner import require_pipeliner

PLUGIN = Path(__file__).parent / "plugin" / "threshold_mask.py"
GOLDEN_V2 = Path(__file__).parent / "golden" / "result_v2"
ALIGN3D = Path(sys.executable).with_name("align3d")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the job's module and a distribution that declares it as an
    ``align3d.jobs`` entry point (what ``pip install`` of a job package would leave)."""
    site = tmp_path_factory.mktemp("site")
    shutil.copy(PLUGIN, site / PLUGIN.name)
    dist = site / "align3d_threshold_mask-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: align3d-threshold-mask\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text("[align3d.jobs]\nthreshold_mask = threshold_mask:JOB\n")
    return site


def align3d(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``align3d`` command, with the job's distribution on its path."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [str(ALIGN3D), *args], capture_output=True, text=True, check=False, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10^3 map whose values are 0..999 (voxel (x, y, z) holds 100 z + 10 y + x) and specs."""
    folder = tmp_path_factory.mktemp("threshold")
    write_map(folder / "map.mrc", np.arange(1000, dtype=np.float32).reshape(10, 10, 10), 1.5)
    for name, threshold in (("good", 900.0), ("too_high", 5000.0)):
        spec = {
            "job": "threshold_mask",
            "params": {"threshold": threshold},
            "inputs": {"volume": {"map": "map.mrc"}},
        }
        (folder / f"{name}.json").write_text(json.dumps(spec))
    return folder


def test_the_test_job_is_not_installed_here() -> None:
    # the job reaches the runtime only through the subprocesses' entry point
    assert "threshold_mask" not in discover_jobs()


def test_describe_lists_its_parameters_and_slots(site: Path, work: Path) -> None:
    proc = align3d(site, "describe", "threshold_mask", "--json", cwd=work)
    assert proc.returncode == Exit.OK, proc.stderr
    described = json.loads(proc.stdout)
    params = {p["name"]: p for p in described["params"]}
    assert params["threshold"]["required"] and params["threshold"]["type"] == "number"
    assert (params["dilate_voxels"]["minimum"], params["dilate_voxels"]["maximum"]) == (0, 5)
    assert [(s["name"], s["kind"], s["required"]) for s in described["inputs"]] == [
        ("volume", "volume", True)
    ]
    assert [(s["name"], s["kind"]) for s in described["outputs"]] == [("mask", "mask")]


def test_schema_types_its_spec_and_its_details(site: Path, work: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    proc = align3d(site, "schema", "job_spec", cwd=work)
    assert proc.returncode == Exit.OK, proc.stderr
    spec_schema = json.loads(proc.stdout)
    validator = jsonschema.Draft202012Validator(spec_schema)
    assert validator.is_valid(json.loads((work / "good.json").read_text()))
    assert not validator.is_valid(
        {"job": "threshold_mask", "params": {"threshold": 1, "dilate_voxels": 9}}
    )
    proc = align3d(site, "schema", "result_manifest", cwd=work)
    assert proc.returncode == Exit.OK, proc.stderr
    manifest_schema = json.loads(proc.stdout)
    rules = {
        rule["if"]["properties"]["job_type"]["const"]: rule["then"]["properties"]["details"]
        for rule in manifest_schema["allOf"]
    }
    assert rules["threshold_mask"] == {"$ref": "#/$defs/ThresholdDetails"}
    assert rules["align_3d_maps"] == {"$ref": "#/$defs/AlignmentDetails"}
    assert rules["import_volume"] == {"type": "null"}


def test_validate_runs_its_check_of_the_input_file(site: Path, work: Path) -> None:
    proc = align3d(site, "validate", "good.json", cwd=work)
    assert proc.returncode == Exit.OK, proc.stderr
    proc = align3d(site, "validate", "too_high.json", "--json", cwd=work)
    assert proc.returncode == Exit.INVALID_INPUT, proc.stderr
    (issue,) = json.loads(proc.stdout)
    assert issue["code"] == "threshold_outside_map" and issue["param"] == "threshold"
    assert issue["path"].endswith(".params.threshold")
    assert "999" in issue["message"]


def test_run_writes_its_outputs_and_its_own_details(site: Path, work: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    proc = align3d(site, "run", "good.json", "--out", "out", "--quiet", cwd=work)
    assert proc.returncode == Exit.OK, proc.stderr
    result = json.loads((work / "out" / "result.json").read_text())
    assert result["schema_version"] == SCHEMA_VERSION == 3
    assert result["job_type"] == "threshold_mask"
    # values 900..999 are at or above 900: 100 of the 1000 voxels
    assert result["details"] == {
        "voxels_in_mask": 100,
        "fraction_in_mask": 0.1,
        "map_range": [0.0, 999.0],
    }
    assert result["outputs"] == {"mask": {"kind": "mask", "path": "mask.mrc"}}
    mask = read_map(work / "out" / "mask.mrc", constant_ok=True).data
    assert mask.sum() == 100 and mask[9].min() == 1 and mask[:9].max() == 0
    schema = json.loads(align3d(site, "schema", "result_manifest", cwd=work).stdout)
    jsonschema.validate(result, schema)
    wrong = {**result, "details": {"voxels_in_mask": -1}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)


def test_details_that_are_not_the_declared_model_are_refused(tmp_path: Path) -> None:
    from pydantic import BaseModel

    from align3d.engine.executor import run_document
    from align3d.engine.jobdef import JobOutcome

    class NoParams(BaseModel):
        pass

    class Other(BaseModel):
        n: int = 1

    class Declared(BaseModel):
        n: int = 1

    class Wrong(DeclaredJob):
        details_model = Declared

        def run(self, params: Any, inputs: Any, context: Any) -> JobOutcome:
            return JobOutcome({}, details=Other())

    job = Wrong("wrong", "returns details of another model", NoParams, (), ())
    with pytest.raises(RuntimeError, match="declared Declared"):
        run_document({"job": "wrong"}, tmp_path, tmp_path / "out", {"wrong": job}, quiet=True)
    assert not (tmp_path / "out" / "result.json").exists()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's demo, run with today's code; its align job folder."""
    out = tmp_path_factory.mktemp("demo")
    proc = cli("demo", "--out", str(out), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    return out


def _as_version_2(demo: Path, folder: Path) -> Path:
    """A copy of the demo's align job folder whose result.json is the committed version-2
    document (the same demo, run by align3d before ``details``)."""
    shutil.copytree(demo / "run" / "align", folder)
    shutil.copy(GOLDEN_V2 / "align_3d_maps.result.json", folder / "result.json")
    return folder


def test_a_version_2_result_reads_as_version_3(demo: Path) -> None:
    old = json.loads((GOLDEN_V2 / "align_3d_maps.result.json").read_text())
    assert old["schema_version"] == 2 and "details" not in old
    upgraded = parse_manifest((GOLDEN_V2 / "align_3d_maps.result.json").read_bytes())
    details = upgraded.details_as(AlignmentDetails)
    assert [r.model_dump() for r in details.alignments] == old["alignments"]
    assert details.symmetry == old["symmetry"] == "C1"
    assert upgraded.outputs == old["outputs"] and upgraded.fingerprint == old["fingerprint"]
    current = read_result(demo / "run" / "align").details_as(AlignmentDetails)
    (now,), (then,) = current.alignments, details.alignments
    assert np.allclose(now.matrix, then.matrix, atol=1e-9)
    # an import job of version 2 recorded empty alignment fields: it has no details
    imported = parse_manifest((GOLDEN_V2 / "import_volume.result.json").read_bytes())
    assert imported.details is None and imported.job_type == "import_volume"


def test_a_version_2_folder_is_recomputed_not_reused(demo: Path, tmp_path: Path) -> None:
    # the same request as the committed import job's (job name, type and parameters), in a
    # folder holding that job's version-2 result.json: recomputed, in the new layout
    shutil.copytree(demo / "inputs", tmp_path / "inputs")
    workflow = {
        "jobs": {"reference": {"job": "import_volume", "params": {"map": "inputs/reference.mrc"}}}
    }
    (tmp_path / "workflow.json").write_text(json.dumps(workflow))
    folder = tmp_path / "run" / "reference"
    folder.mkdir(parents=True)
    shutil.copy(GOLDEN_V2 / "import_volume.result.json", folder / "result.json")
    assert read_manifest(folder) is not None
    assert read_manifest(folder, earlier_versions=False) is None
    assert old_job_of(folder) == ("reference", "import_volume")
    proc = cli("run", str(tmp_path / "workflow.json"), "--out", str(tmp_path / "run"))
    assert proc.returncode == Exit.OK, proc.stderr
    assert f"{folder} was made by an earlier align3d; recomputing" in proc.stdout
    result = json.loads((folder / "result.json").read_text())
    assert result["schema_version"] == 3 and result["details"] is None
    assert "alignments" not in result


def test_apply_and_the_hosts_read_a_version_2_result(demo: Path, tmp_path: Path) -> None:
    old = _as_version_2(demo, tmp_path / "v2")
    new = demo / "run" / "align"
    assert output_files(read_result(old)) == output_files(read_result(new))
    moving = demo / "inputs" / "moving.mrc"
    moved = {}
    for name, folder in (("v2", old), ("v3", new)):
        out = tmp_path / f"moved_{name}.mrc"
        proc = cli(
            "apply", str(folder / "result.json"), "--volume", "1", "--map", str(moving),
            "--out", str(out),
        )  # fmt: skip
        assert proc.returncode == Exit.OK, proc.stderr
        moved[name] = read_map(out).data
    assert np.allclose(moved["v2"], moved["v3"], atol=1e-5 * float(np.abs(moved["v3"]).max()))


def test_the_pipeliners_results_display_reads_a_version_2_result(
    demo: Path, tmp_path: Path
) -> None:
    require_pipeliner()  # skips outside CI only
    from align3d.jobs.align_3d_maps.hosts.pipeliner_job import Align3DMapsJob
    from align3d.jobs.align_3d_maps.hosts.run_folder import RUN_FOLDER

    _as_version_2(demo, tmp_path / "old" / RUN_FOLDER)
    shutil.copytree(demo / "run" / "align", tmp_path / "new" / RUN_FOLDER)
    shown = {}
    for name in ("old", "new"):
        job = Align3DMapsJob()
        job.output_dir = f"{tmp_path / name}/"
        displays = job.create_results_display()
        shown[name] = [type(d).__name__ for d in displays], displays[0].table_data
    assert shown["old"] == shown["new"]
    assert shown["new"][1][0][:4] == ["1", "106.23", "6.50 -4.00 3.20", "yes"]
