"""``align3d align``: defaults in --help from the parameter declaration, the moving map's mask
(``--mask``, applied to the search and moved with the map) and the reference's (``--ref-mask``),
and the same record and warnings as the job (issue 16)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.cli import main
from align3d.engine.exit_codes import Exit
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import read_map, write_map
from tests.helpers import cli, move_with_scipy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TRUTH = json.loads((FIXTURES / "small_truth.json").read_text())


def soft_sphere(n: int, radius: float, centre: tuple[int, int, int] | None = None) -> np.ndarray:
    """A mask on an ``n^3`` grid: 1 inside ``radius`` voxels of ``centre``, a 4-voxel edge."""
    c = np.array(centre if centre is not None else (n // 2,) * 3)
    z, y, x = np.indices((n, n, n))
    d = np.sqrt((x - c[2]) ** 2 + (y - c[1]) ** 2 + (z - c[0]) ** 2)
    return np.clip((radius + 2 - d) / 4, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small reference (40^3, 3 Å) and moving map (44^3, 2.8 Å), masks on the molecule and
    masks in a corner (off it)."""
    folder = tmp_path_factory.mktemp("align")
    shutil.copy(FIXTURES / "small_reference.mrc", folder / "ref.mrc")
    shutil.copy(FIXTURES / "small_moving.mrc", folder / "mov.mrc")
    write_map(folder / "ref_mask.mrc", soft_sphere(40, 14), 3.0)
    write_map(folder / "mov_mask.mrc", soft_sphere(44, 15), 2.8)
    write_map(folder / "ref_corner.mrc", soft_sphere(40, 5, (6, 6, 6)), 3.0)
    write_map(folder / "mov_corner.mrc", soft_sphere(44, 5, (6, 6, 6)), 2.8)
    return folder


def align(case: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[dict, str]:
    """Run ``align3d align ref.mrc mov.mrc`` in this process: (summary, stderr)."""
    out = case / "out" / "aligned.mrc"
    code = main(
        ["align", str(case / "ref.mrc"), str(case / "mov.mrc"), "--out", str(out), "--force",
         "--json", "-", *extra]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == Exit.OK, captured.err
    return json.loads(captured.out), captured.err


def errors(summary: dict[str, Any]) -> tuple[float, float]:
    """Rotation (°) and shift (Å) errors of the summary's transform against the known one."""
    truth = RigidTransform(np.array(TRUTH["rotation"]), TRUTH["shift_A"], TRUTH["hand_flipped"])
    found = RigidTransform(
        np.array(summary["rotation"]), summary["shift_A"], summary["hand_flipped"]
    )
    assert found.flip == truth.flip
    return found.rotation_error_deg(truth), found.shift_error_A(truth)


def test_help_shows_every_default_from_the_declaration() -> None:
    proc = cli("align", "--help")
    assert proc.returncode == Exit.OK
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    for name, info in AlignmentParams.model_fields.items():
        if isinstance(info.default, bool):
            expected = f"(default: {'on' if info.default else 'off'})"
        else:
            expected = f"(default: {info.default}"
        assert expected in text, (name, expected)
    assert re.search(
        r"--max-shift MAX_SHIFT_A Largest translation searched.*\(default: 40\.0; ", text
    )
    for flag in ("--mask MASK", "--ref-mask REF_MASK", "--mask-out MASK_OUT", "--report DIR"):
        assert flag in text
    assert "--output-grid {reference,own}" in text and "(default: reference)" in text
    # limits as people read them: an exclusive bound with '>', integer limits as integers
    assert re.search(r"--lowpass LOWPASS_RESOLUTION_A .*\(default: 10\.0; > 0, ≤ 1000\)", text)
    assert "(default: 12; ≥ 1, ≤ 200)" in text
    # the negating flag says what it does, not what the parameter does
    assert (
        "--no-hand-check Keep each map's hand as it is: do not try the mirrored hand" in text
        and "turns check_both_chiralities off" in text
    )


def test_a_mask_is_applied_and_moved_with_the_map(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary, _ = align(
        case,
        capsys,
        "--max-shift", "15",
        "--mask", str(case / "mov_mask.mrc"),
        "--ref-mask", str(case / "ref_mask.mrc"),
    )  # fmt: skip
    rotation_error, shift_error = errors(summary)
    assert rotation_error < 2.0 and shift_error < 1.0
    assert summary["warnings"] == []
    # the moved mask: beside the aligned map by default, on the reference's grid, and where
    # moving the mask by the transform found puts it (an independent quintic resampling)
    assert summary["aligned_mask"] == str(case / "out" / "aligned_mask.mrc")
    moved = read_map(summary["aligned_mask"])
    assert moved.data.shape == (40, 40, 40) and moved.voxel_size_A == pytest.approx((3.0,) * 3)
    assert 0.0 <= float(moved.data.min()) and float(moved.data.max()) <= 1.0 + 1e-6
    t = RigidTransform(np.array(summary["rotation"]), summary["shift_A"], summary["hand_flipped"])
    expected = move_with_scipy(read_map(case / "mov_mask.mrc").data, 2.8, t, (40, 40, 40), 3.0)
    assert np.corrcoef(moved.data.ravel(), expected.ravel())[0, 1] > 0.99
    aligned = read_map(summary["aligned_map"]).data
    assert (aligned * moved.data).sum() > 0.9 * (aligned * (aligned > 0)).sum()  # map inside


def test_the_stage_timings_account_for_the_run(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The summary's stages add up to the total, and moving the aligned map counts as
    ``resample_write`` (it was once counted in ``fsc``, leaving ``resample_write`` 0; its write
    overlaps the FSC)."""
    summary, _ = align(case, capsys, "--max-shift", "15")
    stages = summary["timings_s"]
    assert set(stages) == {"read", "fsc", "align", "resample_write", "total"}
    assert min(stages.values()) > 0.0
    parts = stages["read"] + stages["fsc"] + stages["align"] + stages["resample_write"]
    assert parts == pytest.approx(stages["total"], abs=5e-3)  # each rounded to 1e-4 s


@pytest.mark.parametrize("option", ["--mask", "--ref-mask"])
def test_a_mask_off_the_molecule_leaves_nothing_to_align_on_and_says_so(
    case: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    plain, _ = align(case, capsys, "--max-shift", "15")
    corner = case / ("mov_corner.mrc" if option == "--mask" else "ref_corner.mrc")
    masked, err = align(case, capsys, "--max-shift", "15", option, str(corner))
    assert plain["warnings"] == [] and plain["score"] > 0.9
    assert masked["score"] < 0.5 * plain["score"]  # the search saw only the masked corner
    assert any("not clearly better than chance" in w for w in masked["warnings"])
    assert "align3d: WARNING: the alignment is not clearly better than chance" in err


def test_mask_out_needs_a_mask(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = case / "bad" / "aligned.mrc"
    code = main(
        ["align", str(case / "ref.mrc"), str(case / "mov.mrc"), "--out", str(out),
         "--mask-out", str(case / "m.mrc")]
    )  # fmt: skip
    assert code == Exit.INVALID_INPUT and "--mask-out needs --mask" in capsys.readouterr().err
    assert not out.exists()


def test_a_shift_at_the_search_limit_warns_as_the_job_does(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the true shift is 5.9 Å: with --max-shift 3 the answer sits at the limit
    masks = ["--mask", str(case / "mov_mask.mrc"), "--ref-mask", str(case / "ref_mask.mrc")]
    summary, err = align(case, capsys, "--max-shift", "3", *masks)
    limit = [w for w in summary["warnings"] if "sits at the search limit max_shift_A = 3" in w]
    assert limit and f"align3d: WARNING: {limit[0]}" in err
    assert summary["chance_z"] is not None and summary["symmetry"] == "C1"
    # the job, on the same files with the same parameters, records the same
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 3, "create_mask_inputs": True, "log_diagnostics": False},
        "inputs": {
            "reference_map": {"map": "ref.mrc"},
            "reference_mask": {"path": "ref_mask.mrc"},
            "maps_to_align": [{"map": "mov.mrc"}],
            "mask_1": {"path": "mov_mask.mrc"},
        },
    }
    (case / "spec.json").write_text(json.dumps(spec))
    proc = cli("run", str(case / "spec.json"), "--out", str(case / "job"), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    record = ResultManifest.model_validate_json((case / "job" / "result.json").read_text())
    job = record.details_as(AlignmentDetails).alignments[0]
    assert job.warnings == [f"volume 1: {w}" for w in summary["warnings"]]
    assert np.allclose(job.matrix, summary["matrix"], atol=1e-6)
    assert job.score == pytest.approx(summary["score"], abs=1e-9)
    assert job.chance_z == summary["chance_z"]
