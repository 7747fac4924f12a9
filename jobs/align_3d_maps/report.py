"""``report.html``: one self-contained page per job (figures inlined, no network, no server).

From the top: the align3d version, date and command, the parameters that decide the answer and
the symmetry mate chosen for each volume (:mod:`.report_header`); the reference, the warnings, a
table of the alignments (the map of each volume,
rotation angle, shift, hand, score, alternative score, score against chance, FSC, warnings) and
the particle files written (how many particles, how many poses changed); then each volume in
index order: its warnings, every input file (map, sharpened map, half maps, mask, particles)
and every output file, its matrix and its figures; last, the parameters and every input of the
job (group mode included). It opens straight from disk.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from align3d.engine.version import align3d_version
from align3d.jobs.align_3d_maps import names
from align3d.jobs.align_3d_maps.inputs import AlignInputs
from align3d.jobs.align_3d_maps.particle_outputs import ParticlesWritten
from align3d.jobs.align_3d_maps.report_files import (
    FileRow,
    reference_rows,
    shown,
    volume_input_rows,
    volume_output_rows,
)
from align3d.jobs.align_3d_maps.report_header import RunFacts, fsc_words, header_parts
from align3d.schemas.documents import AlignmentRecord

_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; font-size: 1.25em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f0f3f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warn { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.5em 0.8em; }
.ok { color: #2a7a2a; } figure { margin: 0.6em 0; } img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
td.path { font-size: 0.85em; color: #555; word-break: break-all; }
table.facts td:first-child { background: #f0f3f7; font-weight: 600; }
table.facts code { word-break: break-all; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_esc(path.name)}" src="data:image/png;base64,{data}">'


def _cell(value: Any, column: int, path_column: int | None) -> str:
    if column == path_column:
        return f'<td class="path">{_esc(value)}</td>'
    if isinstance(value, int | float):
        return f'<td class="num">{_esc(value)}</td>'
    return f"<td>{_esc(value)}</td>"


def _table(
    rows: Sequence[Sequence[Any]], header: Sequence[str], path_column: int | None = None
) -> str:
    """An HTML table; numbers right-aligned, the ``path_column`` (if any) in small print."""
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(_cell(c, i, path_column) for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class ReportInputs:
    """What the page shows: the job folder (output paths are shown relative to it), the
    parameters, the job's inputs, one record per volume, each volume's figures, the warnings
    and the particle files written; ``facts``: what made the page (version, date, command)."""

    workdir: Path
    params: Mapping[str, Any]
    inputs: AlignInputs
    records: Sequence[AlignmentRecord]
    figures: Mapping[int, Sequence[Path]]
    warnings: Sequence[str]
    particles: Sequence[ParticlesWritten] = ()
    facts: RunFacts | None = None


def volume_folder(workdir: Path, index: int) -> Path:
    """The folder of volume ``index``'s files."""
    return workdir / names.volume_folder(index)


def _cells(row: FileRow, workdir: Path) -> list[Any]:
    return [row.role, row.path.name, row.slot or "–", shown(row.path, workdir), row.note]


_FILE_HEADER = ["what", "file", "slot", "path", "note"]


def _file_table(rows: Sequence[FileRow], workdir: Path) -> str:
    """One file a row: what it is, its name, its slot, its path, a note."""
    return _table([_cells(row, workdir) for row in rows], _FILE_HEADER, path_column=3)


def _all_inputs(report: ReportInputs) -> str:
    """Every input file of the job, the reference's first, then each volume's in index order
    (in group mode too: half maps, sharpened maps, masks and particles)."""
    cells = [["reference", *_cells(row, report.workdir)] for row in reference_rows(report.inputs)]
    for volume in sorted(report.inputs.volumes, key=lambda v: v.index):
        for row in volume_input_rows(volume, report.inputs):
            cells.append([volume.index, *_cells(row, report.workdir)])
    return _table(cells, ["volume", *_FILE_HEADER], path_column=4)


def _summary(report: ReportInputs, records: Sequence[AlignmentRecord]) -> list[str]:
    maps = {v.index: Path(v.volume.map).name for v in report.inputs.volumes}
    rows = [
        [
            rec.index,
            maps.get(rec.index, "–"),
            f"{rec.rotation_angle_deg:.2f}",
            ", ".join(f"{x:.2f}" for x in rec.shift_A),
            "flipped" if rec.hand_flipped else "kept",
            _fmt(rec.score, 4),
            _fmt(rec.alternative_score, 4),
            _fmt(rec.chance_z, 1),
            fsc_words(rec.fsc_0143_before_A, rec.reference_grid),
            fsc_words(rec.fsc_0143_A, rec.reference_grid),
            len(rec.warnings),
            f"{rec.seconds:.1f}",
        ]
        for rec in records
    ]
    header = [
        "volume",
        "map",
        "rotation (°)",
        "shift (Å)",
        "hand",
        "score",
        "alternative",
        "above chance (σ)",
        "FSC before (Å)",
        "FSC after (Å)",
        "warnings",
        "time (s)",
    ]
    parts = ["<h2>Alignments</h2>", _table(rows, header)]
    if report.particles:
        written = [
            [
                w.slot,
                shown(w.path, report.workdir),
                str(w.source),
                w.count,
                w.changed,
                ", ".join(map(str, w.volumes)),
            ]
            for w in sorted(report.particles, key=lambda w: (w.volumes, w.slot))
        ]
        parts.append("<h2>Particles written</h2>")
        parts.append(
            _table(
                written,
                ["slot", "file", "from", "particles", "poses changed", "volumes"],
                path_column=2,
            )
        )
    return parts


def _volume(report: ReportInputs, rec: AlignmentRecord) -> list[str]:
    volume = next(v for v in report.inputs.volumes if v.index == rec.index)
    matrix = "<br>".join(" ".join(f"{v: .5f}" for v in row) for row in rec.matrix)
    folder = volume_folder(report.workdir, rec.index)
    outputs = volume_output_rows(folder, rec.index, report.particles) if folder.is_dir() else []
    parts = [
        f'<h2 id="volume-{rec.index}">Volume {rec.index}: {_esc(Path(volume.volume.map).name)}</h2>'
    ]
    if rec.warnings:
        items = "".join(f"<li>{_esc(w)}</li>" for w in rec.warnings)
        parts.append(f'<div class="warn"><ul>{items}</ul></div>')
    parts += [
        "<h3>Inputs</h3>",
        _file_table(volume_input_rows(volume, report.inputs), report.workdir),
        "<h3>Outputs</h3>",
        _file_table(outputs, report.workdir),
        f"<p>4x4 matrix <code>[[R F<sup>flip</sup>, t], [0, 1]]</code>:<br>"
        f"<code>{matrix}</code></p>",
    ]
    for fig in report.figures.get(rec.index, []):
        parts.append(f"<figure>{_image(fig)}<figcaption>{_esc(fig.name)}</figcaption></figure>")
    return parts


def write_report(path: Path, title: str, report: ReportInputs) -> Path:
    """Write the report page (figures inlined as data URIs)."""
    records = sorted(report.records, key=lambda r: r.index)
    reference = Path(report.inputs.reference.map)
    count = len(records)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p>{count} volume{'s' if count != 1 else ''} aligned onto the reference "
        f"<b>{_esc(reference.name)}</b> (<code>{_esc(shown(reference, report.workdir))}</code>)"
        f", given as {'a volumes group' if report.inputs.group else 'individual volumes'}.</p>",
        "<p>Transforms map a point <code>x</code> of each volume to <code>y = R F<sup>flip</sup>"
        " x + t</code> in the reference frame (<code>F = diag(1, 1, -1)</code>, t in Å).</p>",
    ]
    if report.facts is not None:
        parts += header_parts(report.facts, report.params, records)
    if report.warnings:
        items = "".join(f"<li>{_esc(w)}</li>" for w in report.warnings)
        parts.append(f'<h2>Warnings</h2><div class="warn"><ul>{items}</ul></div>')
    else:
        parts.append('<p class="ok">No warnings.</p>')
    parts += _summary(report, records)
    for rec in records:
        parts += _volume(report, rec)
    parts.append("<h2>Parameters</h2>")
    parts.append(_table([[k, v] for k, v in report.params.items()], ["parameter", "value"]))
    parts += ["<h2>Inputs</h2>", _all_inputs(report)]
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def job_report(
    workdir: Path,
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
    records: Sequence[AlignmentRecord],
    figures: Mapping[int, Sequence[Path]],
    warnings: Sequence[str],
    particles: Sequence[ParticlesWritten] = (),
    command: Sequence[str] = (),
) -> Path:
    """Write ``report.html`` into the job folder ``workdir`` from the job's inputs (payloads by
    slot, as the job gets them), records, figures, warnings, the particle files written and the
    command line that ran the job (dated now, UTC)."""
    facts = RunFacts(align3d_version(), datetime.now(UTC), tuple(command))
    report = ReportInputs(
        workdir, params, AlignInputs.read(inputs), records, figures, warnings, particles, facts
    )
    return write_report(workdir / names.REPORT, "Align 3D Maps", report)
