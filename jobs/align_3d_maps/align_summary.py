"""What ``align3d align`` says and writes besides the aligned map: the summary (the record of
the job's volume 1, as ``--json`` writes it), the same in a few lines for people, and, with
``--report DIR``, the job's own report page and figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from align3d.jobs.align_3d_maps.diagnostics import volume_figures
from align3d.jobs.align_3d_maps.outcome import VolumeOutcome
from align3d.jobs.align_3d_maps.record import alignment_record
from align3d.jobs.align_3d_maps.report import job_report, volume_folder
from align3d.jobs.align_3d_maps.slots import INDIVIDUAL, REFERENCE_MAP, REFERENCE_MASK
from align3d.jobs.align_3d_maps.warnings import volume_label
from align3d.schemas.documents import AlignmentRecord
from align3d.slots.payloads import MaskPayload, VolumePayload

INDEX = 1
"""The align command's one map is the job's volume 1."""


@dataclass(frozen=True)
class AlignFiles:
    """The input files of one ``align3d align`` (paths as given) and its voxel size overrides
    (Å)."""

    reference: Path
    moving: Path
    reference_voxel_A: float | None
    moving_voxel_A: float | None
    mask: Path | None
    reference_mask: Path | None


def command_record(outcome: VolumeOutcome, symmetry: str) -> AlignmentRecord:
    """The record of the job's volume 1 (the numbers and warnings result.json would give),
    its warnings without the volume's name: there is one map."""
    record = alignment_record(INDEX, outcome, symmetry, outcome.timings_s["total"])
    return record.model_copy(
        update={"warnings": [w.removeprefix(volume_label(INDEX)) for w in record.warnings]}
    )


def summary_document(
    outcome: VolumeOutcome, record: AlignmentRecord, report: Path | None
) -> dict[str, Any]:
    """The summary ``--json`` writes (keys as the README lists them)."""
    return {
        "aligned_map": str(outcome.files["map"]),
        **({"aligned_mask": str(outcome.files["mask"])} if "mask" in outcome.files else {}),
        **({"report": str(report / "report.html")} if report is not None else {}),
        **record.model_dump(mode="json", exclude={"index"}),
        "timings_s": {k: round(v, 4) for k, v in outcome.timings_s.items()},
    }


def _resolution(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} Å"


def summary_text(summary: Mapping[str, Any]) -> str:
    """The summary in a few lines: what was written, the rotation (angle), the shift (Å), the
    hand, the scores, the FSC = 0.143 resolutions and how many warnings (each is printed on
    stderr as ``align3d: WARNING: ...``)."""
    shift = ", ".join(f"{x:.2f}" for x in summary["shift_A"])
    length = sum(x * x for x in summary["shift_A"]) ** 0.5
    alternative = summary["alternative_score"]
    chance = summary["chance_z"]
    warnings = summary["warnings"]
    lines = [
        f"aligned map:   {summary['aligned_map']}",
        *([f"moved mask:    {summary['aligned_mask']}"] if "aligned_mask" in summary else []),
        *([f"report:        {summary['report']}"] if "report" in summary else []),
        f"rotation:      {summary['rotation_angle_deg']:.2f}°"
        + (f" (modulo {summary['symmetry']})" if summary["symmetry"] != "C1" else ""),
        f"shift:         ({shift}) Å, length {length:.2f} Å",
        f"hand:          {'flipped (the map was mirrored)' if summary['hand_flipped'] else 'kept'}",
        f"score (NCC):   {summary['score']:.4f}"
        + ("" if alternative is None else f"; next best solution {alternative:.4f}")
        + ("" if chance is None else f"; {chance:.1f} robust deviations above chance"),
        f"FSC = 0.143:   {_resolution(summary['fsc_0143_A'])} "
        f"(before: {_resolution(summary['fsc_0143_before_A'])})",
        f"warnings:      {len(warnings) or 'none'}"
        + (" (printed above: align3d: WARNING: ...)" if warnings else ""),
    ]
    return "\n".join(lines)


def report_inputs(files: AlignFiles) -> dict[str, Any]:
    """The command's inputs as the job's inputs (payloads by slot), for the job's report."""
    inputs: dict[str, Any] = {
        REFERENCE_MAP.name: VolumePayload(
            map=files.reference.absolute(), voxel_size_A=files.reference_voxel_A
        ),
        INDIVIDUAL: [
            (
                INDEX,
                VolumePayload(
                    map=files.moving.absolute(),
                    mask=None if files.mask is None else files.mask.absolute(),
                    voxel_size_A=files.moving_voxel_A,
                ),
            )
        ],
    }
    if files.reference_mask is not None:
        inputs[REFERENCE_MASK.name] = MaskPayload(
            path=files.reference_mask.absolute(), voxel_size_A=files.reference_voxel_A
        )
    return inputs


def difference_map_path(folder: Path) -> Path:
    """Where the report folder's difference map goes (as in a job folder)."""
    return volume_folder(folder, INDEX) / "difference_map.mrc"


def write_report(
    folder: Path,
    files: AlignFiles,
    outcome: VolumeOutcome,
    record: AlignmentRecord,
    params: Mapping[str, Any],
) -> Path:
    """The job's figures of the volume and its ``report.html``, in ``folder`` (the difference
    map is already there, written by the alignment)."""
    figures = volume_figures(outcome, volume_folder(folder, INDEX), INDEX)
    job_record = alignment_record(INDEX, outcome, record.symmetry, record.seconds)
    return job_report(
        folder,
        params,
        report_inputs(files),
        [job_record],
        {INDEX: figures},
        job_record.warnings,
    )
