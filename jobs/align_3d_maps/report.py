"""``report.html``: one self-contained page per job (figures inlined, no network, no server).

It shows the parameters, the inputs, a table of the alignments (rotation angle, shift, hand,
score, alternative score, FSC), every figure, and the warnings. It opens straight from disk.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas.documents import AlignmentRecord

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
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_esc(path.name)}" src="data:image/png;base64,{data}">'


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_esc(c)}</td>'
            if isinstance(c, int | float)
            else f"<td>{_esc(c)}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def write_report(
    path: Path,
    title: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    alignments: Sequence[AlignmentRecord],
    figures: Mapping[int, Sequence[Path]],
    warnings: Sequence[str],
) -> Path:
    """Write the report page. ``alignments`` are result-manifest records; ``figures`` maps a
    volume index to its PNG files (inlined as data URIs)."""
    rows = []
    for rec in alignments:
        rows.append(
            [
                rec.index,
                f"{rec.rotation_angle_deg:.2f}",
                ", ".join(f"{x:.2f}" for x in rec.shift_A),
                "flipped" if rec.hand_flipped else "kept",
                _fmt(rec.score, 4),
                _fmt(rec.alternative_score, 4),
                _fmt(rec.fsc_0143_before_A, 1),
                _fmt(rec.fsc_0143_A, 1),
                f"{rec.seconds:.1f}",
            ]
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        "<p>Transforms map a point <code>x</code> of each volume to <code>y = R F<sup>flip</sup>"
        " x + t</code> in the reference frame (<code>F = diag(1, 1, -1)</code>, t in Å).</p>",
    ]
    if warnings:
        items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
        parts.append(f'<h2>Warnings</h2><div class="warn"><ul>{items}</ul></div>')
    else:
        parts.append('<p class="ok">No warnings.</p>')
    parts.append("<h2>Alignments</h2>")
    parts.append(
        _table(
            rows,
            [
                "volume",
                "rotation (°)",
                "shift (Å)",
                "hand",
                "score",
                "alternative",
                "FSC before (Å)",
                "FSC after (Å)",
                "time (s)",
            ],
        )
    )
    for rec in alignments:
        matrix = "<br>".join(" ".join(f"{v: .5f}" for v in row) for row in rec.matrix)
        parts.append(f"<h2>Volume {rec.index}</h2>")
        parts.append(
            f"<p>4x4 matrix <code>[[R F<sup>flip</sup>, t], [0, 1]]</code>:<br>"
            f"<code>{matrix}</code></p>"
        )
        for fig in figures.get(rec.index, []):
            parts.append(f"<figure>{_image(fig)}<figcaption>{_esc(fig.name)}</figcaption></figure>")
    parts.append("<h2>Parameters</h2>")
    parts.append(_table([[k, v] for k, v in params.items()], ["parameter", "value"]))
    parts.append("<h2>Inputs</h2>")
    parts.append(_table([[k, v] for k, v in inputs.items()], ["slot", "files"]))
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def describe_inputs(inputs: Mapping[str, Any]) -> dict[str, str]:
    """Slot -> its files, for the report."""
    out = {}
    for slot, value in inputs.items():
        items = value if isinstance(value, list) else [(None, value)]
        texts = []
        for index, payload in items:
            data = payload.model_dump(exclude_none=True, exclude={"kind"})
            if "volumes" in data:
                text = "; ".join(str(v["map"]) for v in data["volumes"])
            else:
                text = ", ".join(f"{k}: {v}" for k, v in data.items())
            texts.append(text if index is None else f"#{index} {text}")
        out[slot] = " | ".join(texts)
    return out


def job_report(
    workdir: Path,
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
    records: Sequence[AlignmentRecord],
    figures: Mapping[int, Sequence[Path]],
    warnings: Sequence[str],
) -> Path:
    return write_report(
        workdir / "report.html",
        "Align 3D Maps",
        params,
        describe_inputs(inputs),
        records,
        figures,
        warnings,
    )
