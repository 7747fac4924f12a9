"""The top of ``report.html``: what made the page and what decided the answer.

The align3d version, when the job ran (UTC) and the command line; the parameters that decide
the alignment (the alignment's own, :class:`align3d.engine.alignment.params.AlignmentParams`,
with the masks switch and the output grid), titled as their declaration titles them; and the
symmetry: of each volume's equally good symmetry mates, the one chosen (the closest to the
identity, by its rotation angle in degrees), its score and the lowest score of its mates.
FSC resolutions as the report writes them (a resolution at the grid's Nyquist says so) are
here too, so that the page and its figures word them alike.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from align3d.engine.alignment.fsc import last_shell_A
from align3d.engine.alignment.params import AlignmentParams
from align3d.jobs.align_3d_maps.figures import resolution_words
from align3d.jobs.align_3d_maps.params import AlignParams
from align3d.schemas.documents import AlignmentRecord, GridRecord

DECIDING = (*AlignmentParams.model_fields, "apply_mask_to_volumes", "output_grid")
"""The parameters shown at the top of the report: those that decide the answer."""


@dataclass(frozen=True)
class RunFacts:
    """What made the page: the align3d version, when (a time zone-aware datetime) and the
    command line (argv; empty when not known, as for a job run from Python)."""

    version: str
    created: datetime
    command: Sequence[str] = ()


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _rows(rows: Sequence[Sequence[Any]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A table of cells already in HTML."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{_rows(rows)}</tbody></table>"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return _esc(value)


def facts_table(facts: RunFacts) -> str:
    """Version, date and command, one row each."""
    command = shlex.join(facts.command) if facts.command else "(not known: run from Python)"
    rows = [
        ["align3d version", _esc(facts.version)],
        ["date", _esc(facts.created.strftime("%Y-%m-%d %H:%M:%S %Z"))],
        ["command", f"<code>{_esc(command)}</code>"],
    ]
    return f'<table class="facts"><tbody>{_rows(rows)}</tbody></table>'


def deciding_table(params: Mapping[str, Any]) -> str:
    """The parameters that decide the answer: name, title (from the declaration) and value."""
    fields = AlignParams.model_fields
    rows = [
        [f"<code>{_esc(name)}</code>", _esc(fields[name].title or ""), _value(params[name])]
        for name in DECIDING
        if name in params
    ]
    return _table(["parameter", "what", "value"], rows)


def symmetry_part(symmetry: str, records: Sequence[AlignmentRecord]) -> str:
    """The symmetry and, for a point group other than C1, each volume's chosen mate."""
    if symmetry == "C1":
        return (
            "<p>Symmetry <b>C1</b>: the maps are taken as asymmetric; each volume has one "
            "solution, no symmetry mates.</p>"
        )
    rows = [
        [
            str(rec.index),
            f"{rec.rotation_angle_deg:.2f}",
            f"{rec.score:.4f}",
            "–"
            if rec.symmetry_lowest_mate_score is None
            else f"{rec.symmetry_lowest_mate_score:.4f}",
        ]
        for rec in records
    ]
    return (
        f"<p>Symmetry <b>{_esc(symmetry)}</b>: each volume is aligned modulo it; of its equally "
        "good symmetry mates the one closest to the identity is kept (the same mate for the "
        "volumes of one frame). A lowest mate score close to the score says the reference has "
        "the symmetry.</p>"
        + _table(["volume", "mate chosen: rotation (°)", "score", "lowest mate score"], rows)
    )


def header_parts(
    facts: RunFacts, params: Mapping[str, Any], records: Sequence[AlignmentRecord]
) -> list[str]:
    """The report's first section: what ran, and what decided the answer."""
    symmetry = str(params.get("symmetry", "C1"))
    return [
        facts_table(facts),
        "<h2>What decided the answer</h2>",
        deciding_table(params),
        symmetry_part(symmetry, records),
    ]


def at_nyquist(resolution_A: float | None, grid: GridRecord | None) -> bool:
    """Whether a record's FSC = 0.143 resolution (Å) is the last shell of the reference's grid
    (``grid``): the curve never fell below 0.143, and the grid, not the maps, set the bound."""
    return (
        resolution_A is not None
        and grid is not None
        and abs(resolution_A - last_shell_A(tuple(grid.box), grid.voxel_size_A[0])) < 1e-3
    )


def fsc_words(resolution_A: float | None, grid: GridRecord | None) -> str:
    """An FSC = 0.143 resolution of a record (Å, no unit), ``≤ ... (Nyquist)`` when it is the
    last shell of the reference's grid (:func:`at_nyquist`)."""
    return resolution_words(resolution_A, at_nyquist(resolution_A, grid), unit="")
