"""Volumes out of register with each other (issue 26, item 2): the warning compares the maps,
not the transforms. Inputs that came in different frames, each aligned correctly, have very
different transforms and end up in register: no warning. Volumes that shared a frame and end
up apart (on different symmetry mates, or one aligned wrongly): a warning."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.align import AlignmentResult, align_maps
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.symmetry import mates, point_group
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.consistency import VolumePrint, register_checks
from align3d.slots.mrc import read_map
from tests.helpers import REPO, cli, move_with_scipy

FIXTURES = REPO / "fixtures"


def _print(result: AlignmentResult, transform: RigidTransform | None = None) -> VolumePrint:
    assert result.moving_search_map is not None
    return VolumePrint(
        result.moving_search_map, result.search_voxel_A, transform or result.transform
    )


@pytest.fixture(scope="module")
def fixture_alignments() -> list[AlignmentResult]:
    """small_moving.mrc and small_class2.mrc (two frames, 163° apart) onto small_reference."""
    ref = read_map(FIXTURES / "small_reference.mrc")
    out = []
    for name in ("small_moving.mrc", "small_class2.mrc"):
        m = read_map(FIXTURES / name)
        params = AlignmentParams(max_shift_A=15)
        out.append(
            align_maps(
                ref.data,
                m.data,
                reference_voxel_A=3.0,
                moving_voxel_A=float(m.voxel_size_A[0]),
                params=params,
            )
        )
    return out


def test_inputs_in_different_frames_aligned_correctly_are_in_register(
    fixture_alignments: list[AlignmentResult],
) -> None:
    first, second = fixture_alignments
    assert first.transform.rotation_error_deg(second.transform) > 90  # the old false alarm
    (check,) = register_checks({1: _print(first), 2: _print(second)})
    assert check.fit_after > 0.95 and check.fit_before < 0.6
    assert not check.out_of_register()


def test_volumes_of_one_frame_with_one_aligned_wrongly_are_out_of_register(
    fixture_alignments: list[AlignmentResult],
) -> None:
    first = fixture_alignments[0]
    turn = RigidTransform(Rotation.from_rotvec([0.0, 0.0, np.radians(60.0)]).as_matrix())
    (check,) = register_checks({1: _print(first), 2: _print(first, turn.compose(first.transform))})
    assert check.rotation_deg == pytest.approx(60.0, abs=1e-6)
    assert check.fit_before > 0.99 and check.fit_after < 0.9
    assert check.out_of_register()
    # the same frame, the same transform: nothing to compare
    assert register_checks({1: _print(first), 2: _print(first)}) == []


def test_volumes_of_one_frame_on_different_symmetry_mates_are_out_of_register(
    shared_data: Path,
) -> None:
    """A C4 reference: a volume and its copy in the same frame, one given another mate (the
    map looks the same, its particles would differ by a 4-fold turn)."""
    m = read_map(shared_data / "maps" / "emd6824_trpml3_C4_70px.mrc")
    p = float(m.voxel_size_A[0])
    truth = RigidTransform(Rotation.from_rotvec([0.4, -0.3, 0.2]).as_matrix(), [2.0, -1.0, 1.0])
    moving = move_with_scipy(m.data, p, truth.inverse(), m.data.shape, p)
    params = AlignmentParams(max_shift_A=10, symmetry="C4")
    result = align_maps(m.data, moving, reference_voxel_A=p, moving_voxel_A=p, params=params)
    other = next(
        mate.transform
        for mate in mates(result.transform, point_group("C4"))
        if mate.transform.rotation_error_deg(result.transform) > 45
    )
    (check,) = register_checks({1: _print(result), 2: _print(result, other)})
    assert check.rotation_deg > 80
    assert check.out_of_register()


@pytest.mark.parametrize("spec", ["group_spec.json", "individual_spec.json"])
def test_the_readme_examples_raise_no_register_warning(tmp_path: Path, spec: str) -> None:
    proc = cli("run", str(FIXTURES / spec), "--out", str(tmp_path / "out"), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    manifest = json.loads((tmp_path / "out" / "result.json").read_text())
    assert manifest["warnings"] == []  # two frames, 163° apart, each aligned correctly


def test_the_job_words_the_warning_and_leaves_unsure_volumes_out(
    fixture_alignments: list[AlignmentResult],
) -> None:
    """run.py's check over the volumes' results: a warning naming both volumes for the pair
    turned apart, none for the pair that came in different frames, and none where one of the
    alignments is not sure (its transform may be anything)."""
    from types import SimpleNamespace

    from align3d.engine.alignment.confidence import ChanceLevel
    from align3d.jobs.align_3d_maps.run import _out_of_register

    first, second = fixture_alignments
    turn = RigidTransform(Rotation.from_rotvec([0.0, 0.0, np.radians(60.0)]).as_matrix())
    wrong = turn.compose(first.transform)
    results: dict[int, Any] = {
        1: SimpleNamespace(alignment=first, transform=first.transform),
        2: SimpleNamespace(alignment=second, transform=second.transform),
        3: SimpleNamespace(alignment=first, transform=wrong),
    }
    (warning,) = _out_of_register(results, None)
    assert warning.startswith("volumes 1 and 3 end up out of register with each other")
    assert "differ by 60.0°" in warning and "name its symmetry" in warning
    unsure = replace(first, chance=ChanceLevel(score=0.5, decoy_median=0.5, decoy_spread=0.05))
    results[3] = SimpleNamespace(alignment=unsure, transform=wrong)
    assert _out_of_register(results, None) == []
