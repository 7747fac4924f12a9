"""No stale result, no silent problem found late, no traceback for a user's mistake (issue 11).

Each test here failed before its fix: reuse keyed on input paths, validate that did not look at
files, a mask of the wrong voxel size found mid-run, temporary folders that SIGKILL left
behind, an IndexError for too many group masks, an unreachable scheduler as an internal error,
a full disk as a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.exit_codes import Exit
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import read_map, write_map
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def case(tmp_path: Path) -> Path:
    """The fixture pair and its job spec in a folder of their own."""
    for name in ("small_reference.mrc", "small_moving.mrc", "align_spec.json"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def _manifest(folder: Path) -> ResultManifest:
    return ResultManifest.model_validate_json((folder / "result.json").read_text())


def _shift_in_place(path: Path, voxels: int, keep_mtime: bool) -> None:
    """Rewrite a map's data in the same file (same inode), rolled along x."""
    data = read_map(path).data
    before = path.stat()
    offset = path.stat().st_size - data.nbytes
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(np.roll(data, voxels, axis=2).astype("<f4").tobytes())
    if keep_mtime:  # the edit hides its mtime; ctime still tells
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["mtime", "mtime-restored"])
def test_an_input_overwritten_in_place_is_recomputed(case: Path, keep_mtime: bool) -> None:
    out = case / "out"
    spec = str(case / "align_spec.json")
    assert cli("run", spec, "--out", str(out), "--quiet").returncode == Exit.OK
    first = _manifest(out)
    assert first.align3d_version and first.command[-3:] == ["--out", str(out), "--quiet"]
    recorded = {Path(f.path).name: f for f in first.inputs}
    assert set(recorded) == {"small_reference.mrc", "small_moving.mrc"}
    assert all(len(f.sha256) == 64 and f.size > 0 for f in recorded.values())

    _shift_in_place(case / "small_moving.mrc", 3, keep_mtime)  # 3 voxels of 2.8 Å
    proc = cli("run", spec, "--out", str(out))
    assert proc.returncode == Exit.OK, proc.stderr
    assert "reused" not in proc.stdout
    assert "small_moving.mrc changed" in proc.stdout and "recomputing" in proc.stdout
    second = _manifest(out)
    moved = RigidTransform.from_matrix(second.details_as(AlignmentDetails).alignments[0].matrix)
    old = RigidTransform.from_matrix(first.details_as(AlignmentDetails).alignments[0].matrix)
    assert moved.shift_error_A(old) > 5.0  # the new answer, not the stale one
    assert {Path(f.path).name: f.sha256 for f in second.inputs}["small_moving.mrc"] != (
        recorded["small_moving.mrc"].sha256
    )


def test_touch_alone_reuses_and_nothing_is_read_when_unchanged(case: Path) -> None:
    out = case / "out"
    spec = str(case / "align_spec.json")
    assert cli("run", spec, "--out", str(out), "--quiet").returncode == Exit.OK
    stamp = (out / "result.json").stat().st_mtime_ns
    os.utime(case / "small_moving.mrc")  # new mtime, same bytes: the content hash decides
    proc = cli("run", spec, "--out", str(out))
    assert proc.returncode == Exit.OK and "reused" in proc.stdout
    assert (out / "result.json").stat().st_mtime_ns == stamp


def test_a_changed_import_recomputes_every_job_downstream(case: Path) -> None:
    workflow: dict[str, Any] = json.loads((FIXTURES / "workflow.json").read_text())
    (case / "workflow.json").write_text(json.dumps(workflow))
    out = case / "run"
    spec = str(case / "workflow.json")
    assert cli("run", spec, "--out", str(out), "--quiet").returncode == Exit.OK
    _shift_in_place(case / "small_moving.mrc", -2, keep_mtime=False)
    proc = cli("run", spec, "--out", str(out))
    assert proc.returncode == Exit.OK, proc.stderr
    assert "[reference] complete already" in proc.stdout  # untouched input: reused
    assert "[moving]" in proc.stdout and "small_moving.mrc changed" in proc.stdout
    for job in ("align", "check"):
        assert f"[{job}] upstream job" in proc.stdout, proc.stdout


def test_validate_reads_the_files_and_no_files_skips_them(case: Path) -> None:
    spec = json.loads((case / "align_spec.json").read_text())
    spec["inputs"]["maps_to_align"][0]["map"] = "missing.mrc"
    (case / "bad.json").write_text(json.dumps(spec))
    proc = cli("validate", str(case / "bad.json"))
    assert proc.returncode == Exit.INVALID_INPUT
    assert "missing.mrc: file not found" in proc.stderr and "unreadable_map" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert cli("validate", str(case / "bad.json"), "--no-files").returncode == Exit.OK
    assert cli("validate", str(case / "align_spec.json")).returncode == Exit.OK


def test_validate_checks_the_files_behind_import_jobs(case: Path) -> None:
    workflow: dict[str, Any] = json.loads((FIXTURES / "workflow.json").read_text())
    workflow["jobs"]["moving"]["params"]["map"] = "nowhere.mrc"
    (case / "wf.json").write_text(json.dumps(workflow))
    proc = cli("validate", str(case / "wf.json"))
    assert proc.returncode == Exit.INVALID_INPUT
    assert "nowhere.mrc: file not found" in proc.stderr and "jobs.moving.params.map" in proc.stderr


def test_a_mask_with_the_right_box_and_the_wrong_voxel_size_is_refused_first(case: Path) -> None:
    mov = read_map(case / "small_moving.mrc")
    write_map(case / "mask.mrc", np.ones_like(mov.data), 3.5)  # box right, voxel 3.5 vs 2.8 Å
    spec = {
        "job": "align_3d_maps",
        "params": {"create_mask_inputs": True, "max_shift_A": 15},
        "inputs": {
            "reference_map": {"map": "small_reference.mrc"},
            "maps_to_align": [{"map": "small_moving.mrc"}, {"map": "small_moving.mrc"}],
            "mask_2": {"path": "mask.mrc"},
        },
    }
    (case / "spec.json").write_text(json.dumps(spec))
    for command in ("validate", "run"):
        extra = ["--out", str(case / "out")] if command == "run" else []
        proc = cli(command, str(case / "spec.json"), *extra)
        assert proc.returncode == Exit.INVALID_INPUT, proc.stderr
        assert "grid_mismatch" in proc.stderr and "mask.mrc" in proc.stderr
        assert "3.5" in proc.stderr and "2.8" in proc.stderr
    assert not (case / "out").exists()  # found before volume 1 was aligned


def test_too_many_group_masks_from_another_job_are_refused(case: Path) -> None:
    workflow = {
        "jobs": {
            "ref": {"job": "import_volume", "params": {"map": "small_reference.mrc"}},
            "group": {
                "job": "import_volumes_group",
                "params": {"volumes": [{"map": "small_moving.mrc"}, {"map": "small_moving.mrc"}]},
            },
            "align": {
                "job": "align_3d_maps",
                "params": {"create_mask_inputs": True},
                "inputs": {
                    "reference_map": {"from": "ref.volume"},
                    "maps_to_align_group": {"from": "group.volumes_group"},
                    "masks_all_classes": [{"path": "m.mrc"}] * 3,
                },
            },
        }
    }
    mov = read_map(case / "small_moving.mrc")
    write_map(case / "m.mrc", np.ones_like(mov.data), mov.voxel_size_A)
    (case / "wf.json").write_text(json.dumps(workflow))
    proc = cli("run", str(case / "wf.json"), "--out", str(case / "out"))
    assert proc.returncode == Exit.INVALID_INPUT, proc.stderr
    assert "wrong_mask_count" in proc.stderr and "got 3" in proc.stderr
    assert "Traceback" not in proc.stderr and not (case / "out").exists()


def test_temporary_folders_of_dead_runs_are_removed_and_said(case: Path) -> None:
    out = case / "out"
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = case / f".out.tmp-{dead}"
    (stale / "volume_001").mkdir(parents=True)
    (stale / "volume_001" / "map.mrc").write_bytes(b"\0" * 1000)
    proc = cli("run", str(case / "align_spec.json"), "--out", str(out), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    assert not stale.exists()
    assert f"removed {stale}" in proc.stderr


def test_an_unreachable_scheduler_fails_clearly_and_soon(case: Path) -> None:
    pytest.importorskip("distributed", reason="the optional dask extra is not installed")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    proc = cli(
        "run",
        str(case / "align_spec.json"),
        "--out",
        str(case / "out"),
        "--scheduler",
        address,
        "--scheduler-timeout",
        "2",
    )
    assert proc.returncode == Exit.SCHEDULER_UNREACHABLE, proc.stderr
    assert address in proc.stderr and "--scheduler-timeout" in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert not (case / "out").exists()


def test_too_little_free_space_is_refused_before_any_work(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from align3d.engine.cli import main

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
    code = main(["run", str(case / "align_spec.json"), "--out", str(case / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == Exit.CANNOT_WRITE
    assert "GB free" in err and "need about" in err and str(case / "out") in err
    assert not (case / "out").exists()


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (errno.ENOSPC, "file system is full"),
        (errno.EDQUOT, "quota is exceeded"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_a_write_that_fails_names_the_folder_and_the_cause(
    case: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    code: int,
    cause: str,
) -> None:
    import mrcfile

    from align3d.engine.cli import main

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code), str(args[0]))

    monkeypatch.setattr(mrcfile, "new", refuse)
    out = case / "out"
    argv = ["run", str(case / "align_spec.json"), "--out", str(out), "--quiet", "--workers", "1"]
    result = main(argv)
    err = capsys.readouterr().err
    assert result == Exit.CANNOT_WRITE, err
    assert cause in err and str(case) in err
    assert "Traceback" not in err and "internal error" not in err
    assert not out.exists() and not list(case.glob(".out.tmp-*"))  # nothing partial kept


def _validator(name: str = "document") -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    proc = cli("schema") if name == "document" else cli("schema", name)
    assert proc.returncode == Exit.OK, proc.stderr
    document = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_schema_is_one_draft_2020_12_schema_of_every_valid_document() -> None:
    validator = _validator()
    for name in ("align_spec.json", "workflow.json", "sixteen_volumes.json"):
        doc = json.loads((FIXTURES / name).read_text())
        assert not list(validator.iter_errors(doc)), name
    good = json.loads((FIXTURES / "align_spec.json").read_text())
    bad_docs = [
        {**good, "params": {"max_shift_A": "ten"}},  # a number, typed per job type
        {**good, "params": {"max_shift_A": 5000}},  # beyond its bound
        {**good, "params": {"update_particle_alignments": "yes"}},  # no stringly booleans
        {**good, "params": {"volume": "a.mrc"}},  # another job's parameter
        {**good, "inputs": {**good["inputs"], "mask_x": {"path": "m.mrc"}}},  # no such slot
        {**good, "inputs": {"reference_map": {"path": "r.mrc"}}},  # a volume is {"map": ...}
        {"job": "no_such_job"},
        {"jobs": {}},
    ]
    for doc in bad_docs:
        assert list(validator.iter_errors(doc)), doc
    per_volume = {**good, "inputs": {**good["inputs"], "particles_1": {"path": "p.star"}}}
    assert not list(validator.iter_errors(per_volume))  # templates are patterns


def test_schema_name_prints_one_document_schema() -> None:
    result = _validator("result_manifest")
    assert "align3d_version" in result.schema["properties"]
    spec = _validator("job_spec")
    assert not list(spec.iter_errors(json.loads((FIXTURES / "align_spec.json").read_text())))
    assert list(spec.iter_errors(json.loads((FIXTURES / "workflow.json").read_text())))
