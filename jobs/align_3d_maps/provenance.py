"""What made an output: MRC header labels on every map align3d writes, and ``alignments.tsv``,
the job's alignments as one row per volume (for spreadsheets and pandas).

Labels are short (an MRC header holds ten of 80 ASCII characters): align3d and its version,
the volume and which of its maps, the convention, and the transform's 3x4 matrix row by row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.version import align3d_version
from align3d.jobs.align_3d_maps.names import ALIGNMENTS_TABLE
from align3d.schemas.documents import AlignmentRecord
from align3d.slots.atomic import atomic_write
from align3d.slots.rotations import matrix_rotvec

MATRIX_COLUMNS = [f"m{row}{col}" for row in (1, 2, 3) for col in (1, 2, 3, 4)]
"""The 3x4 matrix ``[R F^flip | t]`` row by row (``m14, m24, m34``: the shift in Å)."""
TABLE_COLUMNS = [
    "index",
    "map",
    "rotation_angle_deg",
    "shift_x_A",
    "shift_y_A",
    "shift_z_A",
    "hand_flipped",
    "score",
    "alternative_score",
    "fsc_0143_A",
    *MATRIX_COLUMNS,
    "warnings",
]


def map_labels(index: int, name: str, transform: RigidTransform, what: str = "") -> list[str]:
    """MRC labels for map ``name`` (``map``, ``map_half_A``, ``mask``, a file name, ...) of
    volume ``index`` moved by ``transform``; ``what``: the program part, e.g. ``"apply"``.
    Seven labels, each at most 80 ASCII characters."""
    t = transform
    matrix = t.matrix
    axis = _axis(t.rotation)
    title = f"align3d {align3d_version()} {what or 'Align 3D Maps'}: volume {index} {name}"
    labels = [
        title[:80],
        f"y = R F^f x + t about box centres, A; hand flipped (F = diag(1,1,-1)): "
        f"{'yes' if t.flip else 'no'}",
        f"rotation R: {t.angle_deg:.4f} deg about the axis ({axis})",
        f"shift t: ({_join(t.shift_A, 4)}) A",
    ]
    labels += [f"[R F^f | t] row {k + 1}: {_join(matrix[k], 8)}" for k in range(3)]
    return labels


def _join(values: Sequence[float] | np.ndarray, digits: int) -> str:
    return " ".join(f"{float(v) + 0.0:.{digits}f}" for v in values)


def _axis(rotation: np.ndarray) -> str:
    """The rotation's unit axis (x y z, 4 decimals; 0 0 1 for the identity)."""
    vec = matrix_rotvec(rotation)
    norm = float(np.linalg.norm(vec))
    return _join(vec / norm if norm > 0 else np.array([0.0, 0.0, 1.0]), 4)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def table_rows(records: Sequence[AlignmentRecord]) -> list[list[str]]:
    """One row per volume, in :data:`TABLE_COLUMNS` order (numbers unrounded, empty cells
    where a value is unknown, booleans as ``true`` / ``false``)."""
    rows = []
    for r in sorted(records, key=lambda record: record.index):
        matrix = [float(v) for row in r.matrix[:3] for v in row[:4]]
        values: list[object] = [
            r.index,
            None if r.map_grid is None else r.map_grid.path,
            float(r.rotation_angle_deg),
            *(float(v) for v in r.shift_A),
            r.hand_flipped,
            float(r.score),
            None if r.alternative_score is None else float(r.alternative_score),
            None if r.fsc_0143_A is None else float(r.fsc_0143_A),
            *matrix,
            len(r.warnings),
        ]
        rows.append([_cell(v) for v in values])
    return rows


def alignments_table(records: Sequence[AlignmentRecord]) -> str:
    """The TSV text: a header line of :data:`TABLE_COLUMNS`, then :func:`table_rows`."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    writer.writerows(table_rows(records))
    return out.getvalue()


def write_alignments_table(folder: Path, records: Sequence[AlignmentRecord]) -> Path:
    """Write ``folder/alignments.tsv`` atomically."""
    text = alignments_table(records)
    return atomic_write(folder / ALIGNMENTS_TABLE, lambda tmp: tmp.write_text(text))
