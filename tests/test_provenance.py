"""Provenance: MRC labels on every map a job writes (align3d, its version, the volume, the
transform), and ``alignments.tsv`` (one row per volume) in the job folder."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.version import align3d_version
from align3d.jobs.align_3d_maps.provenance import TABLE_COLUMNS, map_labels, table_rows
from align3d.schemas.documents import AlignmentRecord
from align3d.slots.mrc import read_labels, write_map
from tests.apply_case import Case, case  # noqa: F401 - the session fixture


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


def test_every_map_the_job_writes_says_what_made_it(case: Case) -> None:  # noqa: F811
    written = sorted(case.folder.glob("volume_*/*.mrc"))
    names = {p.relative_to(case.folder).as_posix() for p in written}
    assert {"volume_001/map.mrc", "volume_002/mask.mrc", "volume_002/difference_map.mrc"} <= names
    for path in written:
        index = int(path.parent.name.split("_")[1])
        record = case.record(index)
        labels = read_labels(path)
        assert 1 <= len(labels) <= 10 and all(len(label) <= 80 for label in labels)
        assert labels[0] == f"align3d {align3d_version()} Align 3D Maps: volume {index} {path.stem}"
        assert labels[1].endswith("yes" if record.hand_flipped else "no")
        rows = [_numbers(label.split(":", 1)[1]) for label in labels[-3:]]
        assert np.allclose(rows, np.asarray(record.matrix)[:3], atol=1e-8)
        assert _numbers(labels[2])[0] == pytest.approx(record.rotation_angle_deg, abs=1e-4)
        assert np.allclose(_numbers(labels[3]), record.shift_A, atol=1e-4)


def test_labels_must_fit_an_mrc_header(tmp_path: Path) -> None:
    data = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    t = RigidTransform(np.eye(3), [1234.56789, -0.5, 0.0], flip=True)
    labels = map_labels(3, "map_half_A_with_a_rather_long_name_for_a_map_file", t)
    assert len(labels) == 7 and max(len(label) for label in labels) <= 80
    write_map(tmp_path / "ok.mrc", data, 1.0, labels=labels)
    assert read_labels(tmp_path / "ok.mrc") == labels
    assert read_labels(write_map(tmp_path / "plain.mrc", data, 1.0))[0].startswith(
        "Created by mrcfile.py"
    )  # no labels given: as before
    for bad in (["x"] * 11, ["y" * 81], ["Å"]):
        with pytest.raises(ValueError, match="label"):
            write_map(tmp_path / "bad.mrc", data, 1.0, labels=bad)
    assert not (tmp_path / "bad.mrc").exists()


def test_alignments_table_has_one_row_per_volume(case: Case) -> None:  # noqa: F811
    table = pd.read_csv(case.folder / "alignments.tsv", sep="\t")
    # unrounded: equal but for the last digits (pandas' fast float parser may differ in the
    # last digit from Python's; a table rounded to 6 digits is 1e-7 off)
    exact = lambda value: pytest.approx(value, rel=1e-13, abs=1e-300)  # noqa: E731
    assert list(table.columns) == TABLE_COLUMNS
    assert table["index"].tolist() == [1, 2]
    assert table["hand_flipped"].tolist() == [True, False]
    for row in table.itertuples(index=False):
        record = case.record(row.index)
        assert row.map == str(case.moving(row.index).resolve())
        assert [row.shift_x_A, row.shift_y_A, row.shift_z_A] == exact(record.shift_A)
        assert row.rotation_angle_deg == exact(record.rotation_angle_deg)
        assert (row.score, row.alternative_score) == exact((record.score, record.alternative_score))
        assert row.fsc_0143_A == exact(record.fsc_0143_A)
        matrix = [getattr(row, f"m{r}{c}") for r in (1, 2, 3) for c in (1, 2, 3, 4)]
        assert matrix == exact([v for line in record.matrix[:3] for v in line])
        assert row.warnings == len(record.warnings)


def test_unknown_values_are_empty_cells() -> None:
    record = AlignmentRecord(
        index=4,
        rotation=np.eye(3).tolist(),
        shift_A=[0.0, 1.5, -2.0],
        hand_flipped=False,
        matrix=RigidTransform(np.eye(3), [0.0, 1.5, -2.0]).matrix.tolist(),
        rotation_angle_deg=0.0,
        score=0.5,
        seconds=1.0,
        warnings=["a", "b"],
    )
    (row,) = table_rows([record])
    cells = dict(zip(TABLE_COLUMNS, row, strict=True))
    assert cells["map"] == cells["alternative_score"] == cells["fsc_0143_A"] == ""
    assert (cells["index"], cells["hand_flipped"], cells["warnings"]) == ("4", "false", "2")
    assert (cells["shift_y_A"], cells["m24"], cells["m11"]) == ("1.5", "1.5", "1.0")
