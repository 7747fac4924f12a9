"""MRC axis order and header fields as docs/conventions.md#mrc-files-header-origin-and-nstart
states them: a map is read as a ``[z, y, x]`` array whatever its MAPC/MAPR/MAPS, and a written
map carries the header origin (Å) and nstart it is given, in the standard axis order."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from align3d.slots.mrc import MapHeader, read_grid, read_map, write_map


@pytest.mark.parametrize("axes", [(3, 1, 2), (2, 3, 1), (3, 2, 1)])
def test_maps_stored_in_another_axis_order_are_read_as_z_y_x(
    tmp_path: Path, axes: tuple[int, int, int]
) -> None:
    # a map with a different length on each axis, and a value that names its voxel
    nz, ny, nx = 5, 6, 7
    z, y, x = np.indices((nz, ny, nx))
    expected = (100 * z + 10 * y + x).astype(np.float32)  # [z, y, x]
    # the file stores sections, rows, columns: the map axes MAPS, MAPR, MAPC (1 = x, 2 = y, 3 = z)
    mapc, mapr, maps = axes
    stored = np.ascontiguousarray(np.transpose(expected, [3 - maps, 3 - mapr, 3 - mapc]))
    path = tmp_path / "permuted.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(stored)
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = axes
        mrc.voxel_size = 1.5
    got = read_map(path)
    assert got.data.shape == (nz, ny, nx)
    np.testing.assert_array_equal(got.data, expected)
    assert read_grid(path).shape == (nz, ny, nx)
    # the check can fail: the file's own array is not the map unless the axes are 1, 2, 3
    assert stored.shape != expected.shape or not np.array_equal(stored, expected)


def test_a_written_map_carries_its_origin_and_nstart(tmp_path: Path) -> None:
    volume = np.random.default_rng(0).normal(size=(6, 7, 8)).astype(np.float32)  # [z, y, x]
    header = MapHeader((12.5, -3.0, 40.25), (-4, -3, -2))
    path = write_map(tmp_path / "out.mrc", volume, 1.25, header)
    with mrcfile.open(path) as mrc:
        h = mrc.header
        assert (int(h.mapc), int(h.mapr), int(h.maps)) == (1, 2, 3)
        assert (int(h.nx), int(h.ny), int(h.nz)) == (8, 7, 6)  # x, y, z
        assert tuple(float(v) for v in h.origin.item()) == (12.5, -3.0, 40.25)
        assert (int(h.nxstart), int(h.nystart), int(h.nzstart)) == (-4, -3, -2)
    back = read_map(path)
    assert back.header == header
    np.testing.assert_array_equal(back.data, volume)
