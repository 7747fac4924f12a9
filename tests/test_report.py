"""Diagnostics: the log agrees with result.json, figures are written, the report renders in a
real browser (Debian's Chromium, headless), ambiguous alignments are flagged."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine.alignment.geometry import RigidTransform
from engine.alignment.resample import resample_map
from engine.exit_codes import Exit
from jobs.align_3d_maps.demo import protein_like_map
from schemas.documents import ResultManifest
from slots.mrc import write_map
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
    record = manifest.alignments[0]
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


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_report_renders_in_a_real_browser(job: tuple[Path, str], tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing; CI must render the report (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            (job[0] / "report.html").resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
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
    symmetric = base + resample_map(base, 3.0, rz180, base.shape, 3.0)
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
