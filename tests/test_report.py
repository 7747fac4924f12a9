"""Diagnostics: the log agrees with result.json and gives the volumes in index order, figures
are written, difference slices stay readable for a noisy map, the report renders in a real
browser (Debian's Chromium, headless), ambiguous alignments are flagged. What the report names
(inputs, outputs, particles): test_report_contents.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.resample import GridMove, resample_map
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.schemas.documents import AlignmentDetails, AlignmentRecord, ResultManifest
from align3d.slots.mrc import read_map, write_map
from tests.browser import headless
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_spec(tmp_path: Path, spec: dict, name: str = "job") -> tuple[Path, str]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    proc = cli("run", str(path), "--out", str(tmp_path / name))
    assert proc.returncode == Exit.OK, proc.stderr
    return tmp_path / name, proc.stdout


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("report")
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 15},
        "inputs": {
            "reference_map": {"map": str(FIXTURES / "small_reference.mrc")},
            "maps_to_align": [{"map": str(FIXTURES / "small_moving.mrc")}],
        },
    }
    return run_spec(tmp, spec)


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", line)]


def test_log_numbers_match_result_json(job: tuple[Path, str]) -> None:
    folder, stdout = job
    manifest = ResultManifest.model_validate_json((folder / "result.json").read_text())
    record = manifest.details_as(AlignmentDetails).alignments[0]
    log = (folder / "job.log").read_text().splitlines()
    assert "[J1] volume 1:" in stdout  # the log also goes to stdout
    start = log.index("volume 1:")
    rotation = [_numbers(line) for line in log[start + 1 : start + 4]]
    assert np.allclose(rotation, record.rotation, atol=1e-6)
    shift = _numbers(log[start + 4])
    assert np.allclose(shift, record.shift_A, atol=1e-6)
    assert log[start + 5].strip() == f"hand flipped: {'yes' if record.hand_flipped else 'no'}"
    matrix = [_numbers(line)[-4:] for line in log[start + 6 : start + 10]]
    assert np.allclose(matrix, record.matrix, atol=1e-6)
    scores = _numbers(log[start + 10])
    assert scores[0] == pytest.approx(record.score, abs=1e-6)
    assert scores[1] == pytest.approx(record.alternative_score, abs=1e-6)
    assert not manifest.warnings  # an asymmetric map is not ambiguous


def test_figures_and_difference_map_are_written(job: tuple[Path, str]) -> None:
    folder, _ = job
    volume = folder / "volume_001"
    for name in ("fsc.png", "difference_slices.png", "overlay_slices.png"):
        data = (volume / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    assert (volume / "difference_map.mrc").stat().st_size > 0


def test_report_is_self_contained(job: tuple[Path, str]) -> None:
    html = (job[0] / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", html)
    assert "Alignments" in html and "max_shift_A" in html and "small_moving.mrc" in html


def test_report_renders_in_a_real_browser(job: tuple[Path, str], tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    headless(
        tmp_path / "profile",
        "--hide-scrollbars",
        "--window-size=1200,1600",
        f"--screenshot={shot}",
        (job[0] / "report.html").resolve().as_uri(),
    )
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 1600)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.std() > 0.05  # not a blank page: text, tables and figures drew
    assert (pixels < 0.5).mean() > 0.01  # dark pixels: text and plots


def test_symmetric_map_is_flagged_as_ambiguous(tmp_path: Path) -> None:
    # a C2-symmetric map: every alignment has an equally good mate rotated by 180° about z
    base = protein_like_map((40, 40, 40), 3.0, seed=3)
    rz180 = RigidTransform(np.diag([-1.0, -1.0, 1.0]))
    symmetric = base + resample_map(
        base, GridMove(transform=rz180, in_voxel_A=3.0, out_shape=base.shape, out_voxel_A=3.0)
    )
    write_map(tmp_path / "sym.mrc", symmetric, 3.0)
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 10, "log_diagnostics": False},
        "inputs": {"reference_map": {"map": "sym.mrc"}, "maps_to_align": [{"map": "sym.mrc"}]},
    }
    folder, stdout = run_spec(tmp_path, spec, "sym")
    manifest = ResultManifest.model_validate_json((folder / "result.json").read_text())
    assert any("ambiguous" in w for w in manifest.warnings)
    assert "WARNING" in stdout and "ambiguous" in (folder / "job.log").read_text()
    assert "ambiguous" in (folder / "report.html").read_text()
    assert not (folder / "volume_001" / "fsc.png").exists()  # log_diagnostics off: no figures


def test_difference_slices_of_a_noisy_map_show_the_change_not_the_noise(tmp_path: Path) -> None:
    # a noisy copy of the reference with one domain missing: the difference must show the
    # missing domain (the change), not the noise (readable slices)
    from align3d.engine.alignment.difference import difference_map
    from align3d.engine.alignment.params import AlignmentParams
    from align3d.jobs.align_3d_maps.difference_map import Diagnostics
    from align3d.jobs.align_3d_maps.reference import reference_for
    from align3d.jobs.align_3d_maps.volume import align_volume

    p, box = 2.0, (64, 64, 64)
    reference = protein_like_map(box, p, seed=8)
    z, y, x = np.indices(box) - 32
    blob = np.exp(-((x - 12) ** 2 + y**2 + z**2) / (2 * 4.0**2)).astype(np.float32)
    changed = reference * (1 - blob)
    noisy = changed + np.random.default_rng(2).normal(0, 3 * reference.std(), box)
    write_map(tmp_path / "ref.mrc", reference, p)
    write_map(tmp_path / "noisy.mrc", noisy, p)
    outcome = align_volume(
        reference_for(tmp_path / "ref.mrc", None, None, None),
        {"map": tmp_path / "noisy.mrc"},
        {"map": tmp_path / "out.mrc"},
        AlignmentParams(max_shift_A=5, lowpass_resolution_A=6),
        diagnostics=Diagnostics(tmp_path / "diff.mrc", 6.0),
    )
    lowpass = outcome.difference_lowpass_A
    assert lowpass is not None and lowpass > 6.0  # coarser than the alignment's, for the noise
    truth = -(reference * blob)[32]  # what the difference should show in the central xy plane
    shown = outcome.difference_slices["xy"]
    aligned = read_map(tmp_path / "out.mrc").data
    at_alignment_lowpass = difference_map(reference, aligned, voxel_A=p, lowpass_A=6.0)[32]

    def agreement(plane: np.ndarray) -> float:
        return float(np.corrcoef(plane.ravel(), truth.ravel())[0, 1])

    assert agreement(shown) > 0.5
    assert agreement(shown) > agreement(at_alignment_lowpass) + 0.1
    # the strongest disagreement sits where it does without the noise: the missing domain
    ideal = difference_map(reference, changed, voxel_A=p, lowpass_A=lowpass)[32]
    found = np.unravel_index(np.argmin(shown), shown.shape)
    expected = np.unravel_index(np.argmin(ideal), ideal.shape)
    assert np.hypot(*np.subtract(found, expected)) <= 3


def test_log_gives_each_volume_in_index_order_whatever_order_they_finish() -> None:
    from align3d.jobs.align_3d_maps.log import log_progress, log_volumes

    def record(index: int) -> AlignmentRecord:
        return AlignmentRecord(
            index=index,
            rotation=np.eye(3).tolist(),
            shift_A=[float(index), 0.0, 0.0],
            hand_flipped=False,
            matrix=np.eye(4).tolist(),
            rotation_angle_deg=0.0,
            score=0.9,
            seconds=1.0,
        )

    lines: list[str] = []
    finished = [record(3), record(1), record(2)]
    for done, rec in enumerate(finished, start=1):
        log_progress(lines.append, rec, done, 3)
    log_volumes(lines.append, finished)
    assert [line.split()[1] for line in lines[:3]] == ["3", "1", "2"]  # progress as they finish
    blocks = [line for line in lines if re.fullmatch(r"volume \d+:", line)]
    assert blocks == ["volume 1:", "volume 2:", "volume 3:"]
    shifts = [line for line in lines if "translation t" in line]
    assert [_numbers(line)[0] for line in shifts] == [1.0, 2.0, 3.0]


def test_job_log_keeps_index_order_when_volumes_finish_out_of_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # volumes finish in the order 3, 2, 1: progress lines say so, the accounts stay in order
    import align3d.jobs.align_3d_maps.run as run
    from align3d.engine.executor import run_document
    from align3d.engine.jobdef import discover_jobs

    def reversed_finish(function, tasks, backend, memory, on_result=None):  # type: ignore[no-untyped-def]
        results = [function(task) for task in tasks]
        for i in reversed(range(len(tasks))):
            if on_result is not None:
                on_result(i, results[i])
        return results

    monkeypatch.setattr(run, "run_tasks", reversed_finish)
    moving = str(FIXTURES / "small_moving.mrc")
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 15, "log_diagnostics": False},
        "inputs": {
            "reference_map": {"map": str(FIXTURES / "small_reference.mrc")},
            "maps_to_align": [{"map": moving, "index": n} for n in (1, 2, 3)],
        },
    }
    run_document(spec, tmp_path, tmp_path / "job", discover_jobs(), quiet=True)
    lines = (tmp_path / "job" / "job.log").read_text().splitlines()
    progress = [line.split()[1] for line in lines if re.match(r"volume \d+ aligned \(", line)]
    accounts = [line for line in lines if re.fullmatch(r"volume \d+:", line)]
    assert progress == ["3", "2", "1"]
    assert accounts == ["volume 1:", "volume 2:", "volume 3:"]
    last_progress = max(i for i, line in enumerate(lines) if " aligned (" in line)
    assert last_progress < lines.index("volume 1:")  # the accounts come once all are done
