"""The command line says what ran and refuses what it must not overwrite (issue 26, items 4
and 8): one overwrite rule for ``align`` and ``run`` (checked before any work), ``version``,
a bare ``align3d``, ``describe``'s limits, and ``align``'s summary in words, ``--json``,
``--output-grid`` and ``--report``."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from align3d.engine.cli import main
from align3d.engine.exit_codes import Exit
from align3d.engine.version import align3d_version
from align3d.slots.mrc import read_grid
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def maps(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("small_reference.mrc", "small_moving.mrc", "align_spec.json"):
        shutil.copy(FIXTURES / name, folder / name)
    return folder


def _align(maps: Path, *extra: str) -> list[str]:
    return ["align", str(maps / "small_reference.mrc"), str(maps / "small_moving.mrc"), *extra]


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    """Run ``argv``: it must exit 2 with ``[output_exists]`` and each of ``expected`` in one
    error line, no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == Exit.INVALID_INPUT, err
    assert "Traceback" not in err
    line = next(x for x in err.splitlines() if "[output_exists]" in x)
    for text in expected:
        assert text in line, line
    return line


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_align_into_an_existing_folder_is_refused_before_any_work(
    maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    line = _refused(
        capsys, _align(maps, "--out", str(folder)), f"--out {folder} is a folder", "give the file"
    )
    assert line.startswith("align3d: error: [output_exists] ")
    assert list(folder.iterdir()) == []  # nothing was written, not even into the folder


def test_align_replaces_an_existing_output_only_with_force(
    maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, summary = tmp_path / "aligned.mrc", tmp_path / "summary.json"
    out.write_bytes(b"an earlier result")
    before = _sha(out)
    _refused(
        capsys,
        _align(maps, "--out", str(out), "--json", str(summary), "--max-shift", "15"),
        f"--out {out} exists",
        "use --force to replace it, or choose another --out",
    )
    assert _sha(out) == before and not summary.exists()  # checked before any work
    # --json is checked by the same rule
    summary.write_text("{}")
    _refused(
        capsys,
        _align(maps, "--out", str(tmp_path / "new.mrc"), "--json", str(summary)),
        f"--json {summary} exists",
    )
    assert not (tmp_path / "new.mrc").exists()
    code = main(
        _align(maps, "--out", str(out), "--json", str(summary), "--max-shift", "15", "--force")
    )
    assert code == Exit.OK, capsys.readouterr().err
    assert read_grid(out).shape == (40, 40, 40)  # the aligned map replaced the old file
    assert json.loads(summary.read_text())["aligned_map"] == str(out)


@pytest.mark.parametrize("which", ["--out", "--json"])
def test_align_never_writes_over_an_input_even_with_force(
    maps: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    moving = maps / "small_moving.mrc"
    before = _sha(moving)
    other = str(maps / ("x.json" if which == "--out" else "x.mrc"))
    argv = _align(maps, which, str(moving), "--out" if which == "--json" else "--json", other)
    _refused(capsys, [*argv, "--force"], f"{which} {moving} is also an input file")
    assert _sha(moving) == before


def test_two_outputs_on_one_path_are_refused(
    maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.mrc"
    _refused(
        capsys,
        _align(maps, "--out", str(out), "--json", str(out)),
        "--out and --json name the same file",
    )


def test_run_into_a_file_or_a_folder_of_other_things_is_refused_even_with_force(
    maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(maps / "align_spec.json")
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    _refused(capsys, ["run", spec, "--out", str(file), "--force"], f"--out {file} is a file")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("mine")
    _refused(
        capsys,
        ["run", spec, "--out", str(folder), "--force"],
        f"{folder} exists, is not empty and holds no align3d job",
        "even with --force",
    )
    assert (folder / "thesis.tex").read_text() == "mine" and file.read_text() == "mine"
    _refused(capsys, ["demo", "--out", str(file), "--quiet"], f"--out {file} is a file")
    assert file.read_text() == "mine"


def test_a_workflow_whose_later_job_folder_is_taken_runs_no_job(
    maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every job folder is checked before the first job runs."""
    workflow = {
        "jobs": {
            "reference": {"job": "import_volume", "params": {"map": "small_reference.mrc"}},
            "moving": {"job": "import_volume", "params": {"map": "small_moving.mrc"}},
            "align": {
                "job": "align_3d_maps",
                "params": {"max_shift_A": 15, "log_diagnostics": False},
                "inputs": {
                    "reference_map": {"from": "reference.volume"},
                    "maps_to_align": [{"from": "moving.volume"}],
                },
            },
        }
    }
    spec = maps / "workflow.json"
    spec.write_text(json.dumps(workflow))
    out = tmp_path / "run"
    (out / "align").mkdir(parents=True)
    (out / "align" / "result.json").write_text("{}")  # another job's folder
    _refused(capsys, ["run", str(spec), "--out", str(out), "--quiet"], str(out / "align"))
    assert sorted(p.name for p in out.iterdir()) == ["align"]  # no import ran


def test_version_and_a_bare_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["version"], ["--version"]):
        assert main(argv) == Exit.OK
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == f"align3d {align3d_version()}"
        assert re.fullmatch(r"Python 3\.\d+\.\d+ \(.+\)", lines[1])
        libraries = dict(line.split(" ", 1) for line in lines[2:])
        assert {"numpy", "scipy", "numba", "mrcfile", "pydantic"} <= set(libraries)
        assert not any(v.startswith("not installed") for k, v in libraries.items() if k == "numpy")
    proc = cli()
    assert proc.returncode == Exit.OK, proc.stderr
    assert proc.stdout.startswith("usage: align3d") and "describe" in proc.stdout


def test_describe_shows_exclusive_and_integer_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "align_3d_maps"]) == Exit.OK
    out = capsys.readouterr().out
    assert "lowpass_resolution_A (number, default 10.0, > 0, ≤ 1000):" in out
    assert "rotation_candidates (integer, default 12, ≥ 1, ≤ 200):" in out
    assert "check_both_chiralities (boolean, default true):" in out
    assert 'output_grid (string, default "reference", reference or own):' in out


def test_align_prints_a_summary_in_words_and_writes_the_report(
    maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, summary, report = tmp_path / "aligned.mrc", tmp_path / "s.json", tmp_path / "report"
    argv = _align(maps, "--out", str(out), "--json", str(summary), "--max-shift", "15")
    code = main([*argv, "--report", str(report), "--output-grid", "own"])
    captured = capsys.readouterr()
    assert code == Exit.OK, captured.err
    doc = json.loads(summary.read_text())
    text = captured.out
    assert not text.lstrip().startswith("{")  # words, not JSON
    assert f"aligned map:   {out}" in text
    assert f"rotation:      {doc['rotation_angle_deg']:.2f}°" in text
    shift = ", ".join(f"{x:.2f}" for x in doc["shift_A"])
    assert f"shift:         ({shift}) Å" in text
    assert "hand:          flipped" in text and doc["hand_flipped"] is True
    assert f"score (NCC):   {doc['score']:.4f}" in text
    assert f"FSC = 0.143:   {doc['fsc_0143_A']:.2f} Å (before: " in text
    assert "warnings:      none" in text and doc["warnings"] == []
    # --output-grid own: the moving map's own voxel size (2.8 Å), not the reference's (3 Å)
    assert read_grid(out).voxel_size_A == pytest.approx((2.8,) * 3, abs=1e-4)
    # --report: the job's page and figures, the page naming both inputs
    page = (report / "report.html").read_text()
    assert doc["report"] == str(report / "report.html")
    assert "small_reference.mrc" in page and "small_moving.mrc" in page
    assert page.count("data:image/png;base64,") == 3
    figures = {p.name for p in (report / "volume_001").iterdir()}
    assert {"fsc.png", "difference_slices.png", "overlay_slices.png"} <= figures
    # the same folder again: the rule holds for --report too
    _refused(
        capsys,
        [*_align(maps, "--out", str(tmp_path / "b.mrc")), "--report", str(report)],
        f"--report {report} holds earlier results",
    )


def test_an_output_inside_the_report_folder_is_refused(
    maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report folder appears whole at the end: a map written inside it would be lost."""
    report = tmp_path / "results"
    _refused(
        capsys,
        [*_align(maps, "--out", str(report / "a.mrc")), "--report", str(report)],
        f"--out {report / 'a.mrc'} lies inside --report {report}",
    )
    assert not report.exists()


def test_json_to_stdout_for_programs(maps: Path, tmp_path: Path) -> None:
    proc = cli(*_align(maps, "--out", str(tmp_path / "a.mrc"), "--json", "-", "--max-shift", "15"))
    assert proc.returncode == Exit.OK, proc.stderr
    assert json.loads(proc.stdout)["hand_flipped"] is True
