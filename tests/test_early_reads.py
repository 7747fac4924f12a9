"""``align3d align`` reads and transforms its two maps in a thread while the numerical stack
loads (:mod:`align3d.jobs.align_3d_maps.early_reads`): the same numbers as reading them in turn, the
same errors, the moving map handed over (no hidden copy held), and nothing heavy imported by the
thread's module (it would wait on the main thread's imports)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.align_pair import align_files
from align3d.jobs.align_3d_maps.early_reads import EarlyReads
from align3d.slots.mrc import read_map, write_map
from align3d.slots.rotations import rotvec_matrix
from tests.helpers import REPO, cli, move_with_scipy

FIXTURES = REPO / "fixtures"
REFERENCE = FIXTURES / "small_reference.mrc"


@pytest.fixture(scope="module")
def same_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A moving map on the reference's own grid (40^3, 3 Å): its spectrum is read early too."""
    folder = tmp_path_factory.mktemp("early")
    reference = read_map(REFERENCE)
    rotation = rotvec_matrix(np.radians([10.0, -25.0, 40.0]))
    truth = RigidTransform(rotation, np.array([4.0, -2.0, 3.0]), False)
    moved = move_with_scipy(reference.data, 3.0, truth, reference.shape, 3.0)
    write_map(folder / "mov.mrc", moved.astype(np.float32), 3.0)
    return folder / "mov.mrc"


@pytest.mark.parametrize("case", ["other grid", "same grid"])
def test_reading_early_gives_the_numbers_of_reading_in_turn(
    tmp_path: Path, same_grid: Path, case: str
) -> None:
    moving = FIXTURES / "small_moving.mrc" if case == "other grid" else same_grid
    params = AlignmentParams(max_shift_A=15)
    in_turn = align_files(REFERENCE, moving, tmp_path / "in_turn.mrc", params)
    early = align_files(
        REFERENCE,
        moving,
        tmp_path / "early.mrc",
        params,
        early=EarlyReads(REFERENCE, None, moving, None),
    )
    assert np.array_equal(early.alignment.transform.matrix, in_turn.alignment.transform.matrix)
    assert early.alignment.score == in_turn.alignment.score
    assert np.array_equal(early.fsc_before.fsc, in_turn.fsc_before.fsc)
    assert np.array_equal(early.fsc_after.fsc, in_turn.fsc_after.fsc)
    assert np.array_equal(
        read_map(tmp_path / "early.mrc").data, read_map(tmp_path / "in_turn.mrc").data
    )
    for name, plane in in_turn.reference_slices.items():
        assert np.array_equal(early.reference_slices[name], plane)


def test_the_moving_map_is_handed_over_once_and_not_kept(same_grid: Path) -> None:
    """The moving map's memory goes with its last user: the reader keeps no reference to it
    (the resampling reuses a map's memory only when no one else holds it)."""
    reads = EarlyReads(REFERENCE, None, same_grid, None)
    assert reads.reference().shape == (40, 40, 40)
    moving = reads.moving()
    assert moving.spectrum is not None and moving.spectrum.shape == (40, 40, 21)
    data = weakref.ref(moving.map.data)
    del moving
    deadline = time.monotonic() + 5.0  # the thread may still be returning from its last line
    while data() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert data() is None, "a reference to the moving map outlived its hand-over"
    with pytest.raises(ValueError, match="handed over already"):
        reads.moving()
    with pytest.raises(ValueError, match="handed over already"):
        reads.reference()


def test_a_map_on_another_grid_is_read_without_a_spectrum() -> None:
    reads = EarlyReads(REFERENCE, None, FIXTURES / "small_moving.mrc", None)
    reads.reference()
    assert reads.moving().spectrum is None  # it is resampled first; its own FFT is no use


def test_voxel_overrides_apply_to_the_maps_read_early(same_grid: Path) -> None:
    reads = EarlyReads(REFERENCE, 2.5, same_grid, 2.5)
    assert reads.reference().voxel_size_A == (2.5, 2.5, 2.5)
    assert reads.moving().map.voxel_size_A == (2.5, 2.5, 2.5)


@pytest.mark.parametrize("which", ["reference", "moving"])
def test_a_map_that_cannot_be_read_is_named_as_before(
    tmp_path: Path, same_grid: Path, which: str
) -> None:
    broken = tmp_path / "broken.mrc"
    broken.write_bytes(b"not an MRC file" * 10)
    reference, moving = (broken, same_grid) if which == "reference" else (REFERENCE, broken)
    done = cli("align", str(reference), str(moving), "--out", str(tmp_path / "out.mrc"))
    assert done.returncode == Exit.INVALID_INPUT, done.stderr
    assert f"align3d: error: {broken}: a text file, not a map" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.mrc").exists()


def test_a_missing_moving_map_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mrc"
    done = cli("align", str(REFERENCE), str(missing), "--out", str(tmp_path / "out.mrc"))
    assert done.returncode == Exit.INVALID_INPUT, done.stderr
    assert f"{missing}: file not found" in done.stderr


def test_the_early_reader_loads_no_numerical_stack() -> None:
    """Its thread must not import what the main thread is importing (it would wait for it)."""
    probe = (
        "import json, sys; import align3d.jobs.align_3d_maps.early_reads; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert loaded.isdisjoint({"numba", "llvmlite", "scipy", "matplotlib", "pandas"}), loaded
