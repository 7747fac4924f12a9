"""The command line: the README's demo, aligning two files, and clear errors for bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from align3d.engine.cli import main
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.demo import DEMO_TRUTH
from align3d.slots.mrc import read_map, write_map
from tests.helpers import cli


def test_demo_recovers_the_known_transform(tmp_path: Path) -> None:
    # run as the README does, in a subprocess: a workflow of two imports and one alignment
    out = tmp_path / "demo"
    proc = cli("demo", "--out", str(out), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["truth"]["hand_right"] is True
    assert summary["truth"]["rotation_error_deg"] <= 0.25
    assert summary["truth"]["shift_error_A"] <= 0.25 * 2.0
    assert np.allclose(
        np.array(summary["alignment"]["matrix"])[:3, :3], DEMO_TRUTH.linear, atol=0.01
    )
    manifest = json.loads((out / "run" / "align" / "result.json").read_text())
    assert manifest["details"]["alignments"][0]["hand_flipped"] is True
    aligned = read_map(summary["aligned_map"])
    reference = read_map(out / "inputs" / "reference.mrc")
    assert aligned.data.shape == reference.data.shape
    assert aligned.voxel_size_A == pytest.approx(reference.voxel_size_A)
    record = summary["alignment"]
    assert record["fsc_0143_A"] < record["fsc_0143_before_A"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_align_two_files_keeps_reference_grid_and_header(tmp_path: Path, capsys) -> None:
    from align3d.jobs.align_3d_maps.demo import demo_maps

    (ref, p_ref), (mov, p_mov) = demo_maps()
    ref_path = tmp_path / "ref.mrc"
    with mrcfile.new(ref_path) as f:
        f.set_data(ref)
        f.voxel_size = p_ref
        f.header.origin.x, f.header.origin.y, f.header.origin.z = (10.0, 20.0, 30.0)
    mov_path = write_map(tmp_path / "mov.mrc", mov, p_mov)
    before = (_sha(ref_path), _sha(mov_path))
    out = tmp_path / "out" / "aligned.mrc"
    code = main(
        [
            "align",
            str(ref_path),
            str(mov_path),
            "--out",
            str(out),
            "--json",
            str(tmp_path / "s.json"),
        ]
    )
    assert code == Exit.OK
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["hand_flipped"] is True
    with mrcfile.open(out) as f:
        assert f.data.shape == ref.shape
        assert float(f.voxel_size.x) == pytest.approx(p_ref)
        assert (float(f.header.origin.x), float(f.header.origin.z)) == (10.0, 30.0)
    assert (_sha(ref_path), _sha(mov_path)) == before  # inputs untouched
    assert not list(out.parent.glob(".*.tmp-*"))  # no temporary file left behind


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "file not found"),
        ("not_mrc", "a text file, not a map"),
        ("zero_voxel", "--ref-voxel"),
        ("image", "not a volume"),
        ("nan", "NaN"),
        ("constant", "empty map"),
        ("bad_param", "--max-angle"),
    ],
)
def test_bad_input_is_reported_clearly(tmp_path: Path, capsys, setup: str, message: str) -> None:
    good = write_map(tmp_path / "good.mrc", np.random.default_rng(0).random((16, 16, 16)), 2.0)
    ref = tmp_path / "ref.mrc"
    extra: list[str] = []
    data = np.random.default_rng(1).random((16, 16, 16)).astype(np.float32)
    if setup == "missing":
        pass
    elif setup == "not_mrc":
        ref.write_text("this is not a map")
    elif setup == "zero_voxel":
        with mrcfile.new(ref) as f:
            f.set_data(data)
    elif setup == "image":
        with mrcfile.new(ref) as f:
            f.set_data(data[0])
            f.voxel_size = 2.0
    elif setup == "nan":
        data[3, 4, 5] = np.nan
        write_map(ref, data, 2.0)  # a bad map, written as it is
    elif setup == "constant":
        write_map(ref, np.ones((16, 16, 16)), 2.0)
    elif setup == "bad_param":
        write_map(ref, data, 2.0)
        extra = ["--max-angle", "270"]
    out = tmp_path / "aligned.mrc"
    code = main(["align", str(ref), str(good), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == Exit.INVALID_INPUT
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()
    if setup != "bad_param":
        assert str(ref) in err


def test_describe_json_documents_every_job_required_parameters_included(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # every installed job, as one JSON list; a required parameter has no default to print
    assert main(["describe", "--json"]) == Exit.OK
    jobs = {job["job"]: job for job in json.loads(capsys.readouterr().out)}
    assert {"align_3d_maps", "import_volume", "import_volumes_group"} <= set(jobs)
    volume = {p["name"]: p for p in jobs["import_volume"]["params"]}
    assert volume["map"]["required"] is True and volume["map"]["default"] is None
    assert volume["map_sharp"]["required"] is False
    shift = {p["name"]: p for p in jobs["align_3d_maps"]["params"]}["max_shift_A"]
    assert shift["required"] is False and shift["default"] > 0
    assert main(["describe", "import_volume"]) == Exit.OK
    assert "map (string, required)" in capsys.readouterr().out
