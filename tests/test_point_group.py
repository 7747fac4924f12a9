"""The point group found (``align3d symmetry``): known answers on maps symmetrised by
construction in a known orientation and centre, on real symmetric maps, and on an asymmetric
one; the move to RELION's orientation makes the map invariant under RELION's operators."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.point_group_search import (
    PointGroupResult,
    axis_error_deg,
    find_point_group,
    group_axes,
)
from align3d.engine.alignment.resample import GridMove, move_map, resample_map
from align3d.engine.alignment.symmetry import point_group
from align3d.engine.cli import main
from align3d.engine.exit_codes import Exit
from align3d.slots.mrc import MapData, read_map, write_map
from align3d.slots.rotations import seeded_random_rotations
from tests.helpers import cli

BOX, VOXEL_A = 48, 2.0
CENTRE_A = np.array([2.0, -3.0, 1.5])  # the symmetry centre, off the box centre


def symmetrised(name: str, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A map of Gaussian blobs (σ 3.5 Å) made ``name``-symmetric about :data:`CENTRE_A`, the
    group turned by a seeded random rotation ``Q0`` (returned with the map)."""
    rng = np.random.default_rng(seed)
    q0 = seeded_random_rotations(1, seed)[0]
    blobs = rng.normal(size=(10, 3)) * 10 + np.array([6.0, 3.0, 4.0])
    zz, yy, xx = np.indices((BOX,) * 3)
    points = (np.stack([xx, yy, zz], -1) - BOX // 2) * VOXEL_A
    vol = np.zeros((BOX,) * 3)
    for s in point_group(name).operators:
        for blob in blobs:
            centre = CENTRE_A + q0 @ s @ blob
            vol += np.exp(-((points - centre) ** 2).sum(-1) / (2 * 3.5**2))
    return vol.astype(np.float32), q0


@cache
def found(name: str) -> tuple[np.ndarray, np.ndarray, PointGroupResult]:
    vol, q0 = symmetrised(name)
    return vol, q0, find_point_group(vol, VOXEL_A)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("name", ["C5", "D3", "T", "O"])
def test_the_group_and_its_axes_of_a_map_symmetric_by_construction(name: str) -> None:
    _, q0, result = found(name)
    assert result.point_group == name
    true_axes = group_axes(name, q0)
    axes = result.found.axes
    assert len(axes) == len(true_axes)
    for axis in axes:  # each found axis is a true one of the same fold, within 2°
        errors = [
            axis_error_deg(axis.direction, t.direction) for t in true_axes if t.fold == axis.fold
        ]
        assert min(errors) < 2.0, (name, axis)
    # the centre: on the axis for Cn (its height along the axis is not defined), else exact
    offset = result.centre_A - CENTRE_A
    if name.startswith("C"):
        offset -= (offset @ axes[0].direction) * axes[0].direction
    assert np.linalg.norm(offset) < 0.5
    # every larger group scores below the one found, which scores near 1
    assert result.found.score > 0.8
    assert all(not c.holds for c in result.candidates if c.order > result.found.order)


def _turned(vol: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``vol`` turned by ``rotation`` about its box centre (the operators' centre)."""
    move = GridMove(
        transform=RigidTransform(rotation),
        in_voxel_A=VOXEL_A,
        out_shape=vol.shape,
        out_voxel_A=VOXEL_A,
    )
    return resample_map(vol, move)


@pytest.mark.parametrize("name", ["C5", "D3", "T", "O"])
def test_the_move_to_relions_orientation_makes_the_map_invariant_under_relions_operators(
    name: str,
) -> None:
    vol, _, result = found(name)
    move = GridMove(
        transform=result.to_relion, in_voxel_A=VOXEL_A, out_shape=vol.shape, out_voxel_A=VOXEL_A
    )
    moved = move_map(vol, move)
    group = point_group(name)
    for s in group.operators[1:]:
        assert _correlation(_turned(moved, s), moved) > 0.99, (name, s)
    # before the move, the same operators do not leave it so (the check can fail)
    worst = min(_correlation(_turned(vol, s), vol) for s in group.operators[1:])
    assert worst < 0.9


REAL = [
    # file, group, (fold, axis) pairs the shared data's README states
    ("betagal_D2_100px.mrc", "D2", [(2, (1, 0, 0)), (2, (0, 1, 0)), (2, (0, 0, 1))]),
    ("groel_D7_100px.mrc", "D7", [(7, (0, 0, 1))]),
    ("emd6824_trpml3_C4_70px.mrc", "C4", [(4, (0, 0, 1))]),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("file", "name", "axes"), REAL)
def test_real_symmetric_maps(
    real_map: Callable[[str], MapData], file: str, name: str, axes: list
) -> None:
    m = real_map(file)
    result = find_point_group(m.data, m.voxel_size_A)
    assert result.point_group == name
    for fold, direction in axes:
        errors = [
            axis_error_deg(a.direction, np.array(direction, float))
            for a in result.found.axes
            if a.fold == fold
        ]
        assert min(errors) < 2.0, (file, fold, direction)


@pytest.mark.realdata
def test_an_asymmetric_map_is_c1(real_map: Callable[[str], MapData]) -> None:
    m = real_map("ribosome70S_65px.mrc")
    result = find_point_group(m.data, m.voxel_size_A)
    assert result.point_group == "C1"
    assert np.array_equal(result.to_relion.matrix, np.eye(4))  # left as it is


def test_the_command_writes_the_json_and_the_moved_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vol, _, result = found("D3")
    source = tmp_path / "d3.mrc"
    write_map(source, vol, VOXEL_A)
    out, doc = tmp_path / "moved.mrc", tmp_path / "sym.json"
    assert main(["symmetry", str(source), "--json", str(doc), "--out", str(out)]) == Exit.OK
    report = json.loads(doc.read_text())
    assert report["point_group"] == "D3"
    assert {c["name"] for c in report["candidates"]} >= {"C1", "C3", "D3", "T", "O"}
    matrix = np.array(report["to_relion_matrix"])
    assert np.allclose(matrix, result.to_relion.matrix, atol=1e-6)
    moved = read_map(out)
    assert moved.data.shape == vol.shape and moved.voxel_size_A[0] == VOXEL_A
    # an existing output is refused before any work, naming the option
    capsys.readouterr()
    assert main(["symmetry", str(source), "--out", str(out)]) == Exit.INVALID_INPUT
    assert "--out" in capsys.readouterr().err
    assert main(["symmetry", str(source), "--out", str(tmp_path / "x.txt")]) == Exit.INVALID_INPUT
    assert ".mrc" in capsys.readouterr().err


def test_the_align_job_reports_the_references_point_group(tmp_path: Path) -> None:
    vol, _, _ = found("D3")
    write_map(tmp_path / "reference.mrc", vol, VOXEL_A)
    write_map(tmp_path / "moving.mrc", vol, VOXEL_A)
    spec = {
        "job": "align_3d_maps",
        "params": {"detect_symmetry": True, "log_diagnostics": False},
        "inputs": {
            "reference_map": {"map": "reference.mrc"},
            "maps_to_align": [{"map": "moving.mrc"}],
        },
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "job"
    done = cli("run", "spec.json", "--out", str(out), "--workers", "1", cwd=tmp_path)
    assert done.returncode == Exit.OK, done.stderr
    details = json.loads((out / "result.json").read_text())["details"]
    assert details["detected_symmetry"]["point_group"] == "D3"
    assert "reference's point group (detect_symmetry): D3" in (out / "job.log").read_text()


def test_a_bad_voxel_size_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "d3.mrc"
    write_map(source, found("D3")[0], VOXEL_A)
    assert main(["symmetry", str(source), "--voxel", "-1"]) == Exit.INVALID_INPUT
    err = capsys.readouterr().err
    assert "--voxel" in err and "Traceback" not in err
