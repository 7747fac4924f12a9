"""No silent wrong answer: a solution at a search limit, or not clearly better than chance,
is said so, in result.json, job.log, report.html and the ``align`` summary; a sure answer well
inside its limits is not (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from align3d.engine.alignment.align import align_maps
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import write_map
from tests.helpers import cli, move_with_scipy

P = 2.0
BOX = (64, 64, 64)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return protein_like_map(BOX, P, seed=3)


def _moved(reference: np.ndarray, truth: RigidTransform) -> np.ndarray:
    return move_with_scipy(reference, P, truth.inverse(), BOX, P).astype(np.float32)


def _codes(result: Any) -> set[str]:
    return {c.code for c in result.concerns()}


def test_a_sure_answer_well_inside_its_limits_does_not_warn(reference: np.ndarray) -> None:
    from scipy.spatial.transform import Rotation

    truth = RigidTransform(Rotation.from_rotvec([0.3, -0.8, 0.5]).as_matrix(), [4.0, -3.0, 2.0])
    result = align_maps(
        reference,
        _moved(reference, truth),
        reference_voxel_A=P,
        moving_voxel_A=P,
        params=AlignmentParams(max_shift_A=20),
    )
    assert result.transform.rotation_error_deg(truth) < 0.5
    assert result.concerns() == []
    assert result.chance is not None and result.chance.above_chance()


@pytest.mark.parametrize("true_shift", [11.0, 22.0])
def test_a_shift_beyond_max_shift_is_reported_at_the_limit(
    reference: np.ndarray, true_shift: float
) -> None:
    truth = RigidTransform(np.eye(3), [true_shift, 0.0, 0.0])
    result = align_maps(
        reference,
        _moved(reference, truth),
        reference_voxel_A=P,
        moving_voxel_A=P,
        params=AlignmentParams(max_shift_A=10),
    )
    assert np.linalg.norm(result.transform.shift_A) <= 10.0 + 1e-9
    shift = [c for c in result.concerns() if c.code == "shift_at_limit"]
    assert shift, [c.message for c in result.concerns()]
    assert shift[0].param == "max_shift_A" and "max_shift_A = 20" in shift[0].message


def test_a_rotation_beyond_max_search_angle_is_reported(reference: np.ndarray) -> None:
    from scipy.spatial.transform import Rotation

    truth = RigidTransform(Rotation.from_rotvec([0.0, 0.0, np.radians(70)]).as_matrix(), [0, 0, 0])
    params = AlignmentParams(max_shift_A=10, max_search_angle_deg=20)
    result = align_maps(
        reference, _moved(reference, truth), reference_voxel_A=P, moving_voxel_A=P, params=params
    )
    assert result.transform.angle_deg <= 20.0 + 1e-6
    codes = _codes(result)
    assert codes & {"angle_at_limit", "not_above_chance"}, codes
    if "angle_at_limit" in codes:
        angle = next(c for c in result.concerns() if c.code == "angle_at_limit")
        # held by the limit: twice it; and not sure either: the whole of it (issue 26)
        wider = "= 180" if "not_above_chance" in codes else "= 50"
        assert angle.param == "max_search_angle_deg" and wider in angle.message


def test_unrelated_maps_and_pure_noise_are_not_above_chance(reference: np.ndarray) -> None:
    other = protein_like_map(BOX, P, seed=11)
    noise = np.random.default_rng(5).standard_normal(BOX).astype(np.float32)
    for moving in (other, noise):
        result = align_maps(
            reference,
            moving,
            reference_voxel_A=P,
            moving_voxel_A=P,
            params=AlignmentParams(max_shift_A=10),
        )
        assert "not_above_chance" in _codes(result)


def test_a_mask_off_the_molecule_or_a_blob_low_pass_warns(reference: np.ndarray) -> None:
    truth = RigidTransform(np.eye(3), [3.0, 0.0, 0.0])
    moving = _moved(reference, truth)
    corner = np.zeros(BOX, dtype=np.float32)
    corner[:12, :12, :12] = 1.0
    masked = align_maps(
        reference,
        moving,
        reference_voxel_A=P,
        moving_voxel_A=P,
        params=AlignmentParams(max_shift_A=10),
        moving_mask=corner,
    )
    assert "not_above_chance" in _codes(masked)
    blobs = align_maps(
        reference,
        moving,
        reference_voxel_A=P,
        moving_voxel_A=P,
        params=AlignmentParams(max_shift_A=10, lowpass_resolution_A=100),
    )
    assert {"lowpass_too_coarse"} <= _codes(blobs)


def _write_case(folder: Path, reference: np.ndarray, shifts: list[float]) -> Path:
    write_map(folder / "ref.mrc", reference, P)
    maps = []
    for k, shift in enumerate(shifts, start=1):
        write_map(
            folder / f"mov{k}.mrc", _moved(reference, RigidTransform(np.eye(3), [0, shift, 0])), P
        )
        maps.append({"map": f"mov{k}.mrc"})
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 10, "log_diagnostics": True},
        "inputs": {"reference_map": {"map": "ref.mrc"}, "maps_to_align": maps},
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    return folder / "spec.json"


def test_warnings_reach_result_log_and_report(tmp_path: Path, reference: np.ndarray) -> None:
    spec = _write_case(tmp_path, reference, [11.0, 3.0])
    out = tmp_path / "out"
    proc = cli("run", str(spec), "--out", str(out), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    manifest = ResultManifest.model_validate_json((out / "result.json").read_text())
    first, second = manifest.details_as(AlignmentDetails).alignments
    assert any("max_shift_A" in w for w in first.warnings)
    assert second.warnings == []  # well inside its limits
    assert manifest.warnings == first.warnings
    assert first.chance_z is not None and first.chance_gain is not None
    log = (out / "job.log").read_text()
    report = (out / "report.html").read_text()
    for warning in first.warnings:
        assert f"WARNING: {warning}" in log
        assert warning.replace("'", "&#x27;") in report or warning in report
    assert "No warnings" not in report


def test_align_summary_prints_the_ambiguity_of_a_symmetric_self_alignment(
    tmp_path: Path, shared_data: Path
) -> None:
    betagal = shared_data / "maps" / "betagal_D2_100px.mrc"
    proc = cli(
        "align",
        str(betagal),
        str(betagal),
        "--out",
        str(tmp_path / "a.mrc"),
        "--max-shift",
        "5",
        "--json",
        "-",
    )
    assert proc.returncode == Exit.OK, proc.stderr
    summary = json.loads(proc.stdout)
    assert any("ambiguous" in w for w in summary["warnings"])
    assert "WARNING: ambiguous alignment" in proc.stderr


def test_without_symmetry_an_ambiguous_pair_prefers_the_smaller_rotation(shared_data: Path) -> None:
    from scipy.spatial.transform import Rotation

    from align3d.slots.mrc import read_map

    m = read_map(shared_data / "maps" / "emd6824_trpml3_C4_70px.mrc")
    p = float(m.voxel_size_A[0])
    truth = RigidTransform(Rotation.from_rotvec([0.9, -1.2, 1.5]).as_matrix(), [3.0, -2.0, 4.0])
    moving = move_with_scipy(m.data, p, truth.inverse(), m.data.shape, p)
    result = align_maps(
        m.data,
        moving,
        reference_voxel_A=p,
        moving_voxel_A=p,
        params=AlignmentParams(max_shift_A=15),
    )
    assert result.alternative is not None and "ambiguous" in _codes(result)
    assert result.transform.angle_deg <= result.alternative.angle_deg  # the smaller one kept
    assert result.preferred_smaller_rotation  # the search's best was the larger rotation
    assert any("smaller rotation was chosen" in c.message for c in result.concerns())
