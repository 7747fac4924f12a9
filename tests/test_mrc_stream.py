"""Maps written slab by slab (align3d.slots.mrc_stream): the same file as a whole-array write, the
header's statistics of the whole map, and no file at all when a slab fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.resample import GridMove, move_map, move_map_slabs
from align3d.slots.mrc import MapHeader, write_map
from align3d.slots.mrc_stream import read_ahead, write_map_slabs
from align3d.slots.rotations import rotvec_matrix


@pytest.mark.parametrize("out_voxel_A", [1.0, 1.7])  # the same grid's voxel, a coarser one
def test_a_map_moved_in_slabs_is_the_map_moved_whole(tmp_path: Path, out_voxel_A: float) -> None:
    rng = np.random.default_rng(0)
    volume = rng.standard_normal((70, 66, 61)).astype(np.float32)
    move = RigidTransform(rotvec_matrix([0.3, -0.2, 0.5]), np.array([1.5, -2.0, 0.7]), True)
    shape = (75, 72, 80) if out_voxel_A == 1.0 else (41, 43, 40)
    header = MapHeader((1.0, 2.0, 3.0), (0, 0, 0))
    whole = move_map(
        volume, GridMove(transform=move, in_voxel_A=1.0, out_shape=shape, out_voxel_A=out_voxel_A)
    )
    write_map(tmp_path / "whole.mrc", whole, (out_voxel_A,) * 3, header, ["made whole"])
    slabs = move_map_slabs(
        volume, GridMove(transform=move, in_voxel_A=1.0, out_shape=shape, out_voxel_A=out_voxel_A)
    )
    write_map_slabs(
        tmp_path / "slabs.mrc",
        shape,
        (out_voxel_A,) * 3,
        slabs,
        (1.0, 2.0, 3.0),
        None,
        ["made whole"],
    )
    with mrcfile.open(tmp_path / "whole.mrc") as a, mrcfile.open(tmp_path / "slabs.mrc") as b:
        np.testing.assert_array_equal(b.data, a.data)
        assert b.data.shape == shape
        assert b.get_labels() == a.get_labels() == ["made whole"]
        assert b.voxel_size == a.voxel_size
        assert tuple(b.header.origin.item()) == (1.0, 2.0, 3.0)
        for field in ("dmin", "dmax", "dmean"):
            assert b.header[field] == a.header[field]
        assert np.isclose(b.header.rms, whole.std(dtype=np.float64), rtol=1e-6)
        assert (tmp_path / "whole.mrc").stat().st_size == (tmp_path / "slabs.mrc").stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slabs.mrc", "whole.mrc"]


def _slabs_then_failure() -> Iterator[np.ndarray]:
    yield np.ones((4, 8, 8), np.float32)
    raise RuntimeError("kernel failed")


def test_a_failing_slab_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.mrc"
    with pytest.raises(RuntimeError, match="kernel failed"):
        write_map_slabs(target, (8, 8, 8), (1.0, 1.0, 1.0), _slabs_then_failure())
    assert list(tmp_path.iterdir()) == []


def test_too_few_planes_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.mrc"
    with pytest.raises(ValueError, match="3 planes were computed for a map of 8"):
        write_map_slabs(target, (8, 8, 8), (1.0, 1.0, 1.0), [np.zeros((3, 8, 8), np.float32)])
    with pytest.raises(ValueError, match="slab of shape"):
        write_map_slabs(target, (8, 8, 8), (1.0, 1.0, 1.0), [np.zeros((8, 8, 7), np.float32)])
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_stays_whole_when_a_slab_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.mrc"
    write_map(target, np.full((8, 8, 8), 2.0, np.float32), 1.0)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        write_map_slabs(target, (8, 8, 8), (1.0, 1.0, 1.0), _slabs_then_failure())
    assert target.read_bytes() == before


def test_reading_ahead_skips_files_it_cannot_open(tmp_path: Path) -> None:
    present = tmp_path / "a.mrc"
    present.write_bytes(b"x" * 4096)
    read_ahead([tmp_path / "missing.mrc", present])  # no error either way
    assert present.read_bytes() == b"x" * 4096
