"""Where a problem is, as a JSON path into the document the user wrote.

The runtime works on workflows: a single job spec (``{"job": ..., "params": ..., "inputs":
...}``) is run as a workflow of one job named ``J1``. Its issues are reported at the paths of
the file the user wrote (``$.params.max_shift_A``, not ``$.jobs.J1.params.max_shift_A``), and a
problem with an input file at the element of the spec that names that file
(``$.inputs.SLOT[1].map``), not at its whole slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from align3d.engine.inputs import absolute
from align3d.engine.issues import Issue
from align3d.schemas.documents import FileRef, GroupRef, JobSpec, VolumeFiles

SINGLE_JOB = "J1"
"""The name a single job spec runs under (:func:`align3d.engine.resolver.document_issues`)."""

_VOLUME_FILES = ("map", "map_sharp", "map_half_A", "map_half_B", "mask")


def _volume_files(ref: VolumeFiles, where: str) -> Iterator[tuple[str, str]]:
    for name in _VOLUME_FILES:
        value = getattr(ref, name, None)
        if value is not None:
            yield f"{where}.{name}", value


def _named_files(spec: JobSpec) -> Iterator[tuple[str, str]]:
    """``(JSON path below the job, file as written)`` of every file the spec's inputs name."""
    for slot, value in spec.inputs.items():
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            where = f".inputs.{slot}" + (f"[{i}]" if isinstance(value, list) else "")
            if isinstance(item, GroupRef):
                for j, volume in enumerate(item.volumes):
                    yield from _volume_files(volume, f"{where}.volumes[{j}]")
            elif isinstance(item, VolumeFiles):
                yield from _volume_files(item, where)
            elif isinstance(item, FileRef):
                yield f"{where}.path", item.path


def file_location(spec: JobSpec, base: Path, file: Path | None, slot: str | None) -> str | None:
    """The JSON path below the job (``.inputs.SLOT[1].map``) of the element of
    ``spec`` that names ``file`` (relative to ``base``) within ``slot`` when given; None when
    the spec names no such file (it came from another job)."""
    if file is None:
        return None
    wanted = absolute(base, file)
    for where, named in _named_files(spec):
        in_slot = slot is None or where.startswith((f".inputs.{slot}.", f".inputs.{slot}["))
        if in_slot and absolute(base, named) == wanted:
            return where
    return None


def is_single_job(data: Any) -> bool:
    """Whether a document is a single job spec (not a workflow)."""
    return not (isinstance(data, dict) and "jobs" in data)


def as_written(issues: list[Issue], data: Any) -> list[Issue]:
    """``issues`` at the paths of the document the user wrote: for a single job spec, without
    the workflow's ``$.jobs.J1`` around it (and no job name: there is one)."""
    if not is_single_job(data):
        return issues
    prefix = f"$.jobs.{SINGLE_JOB}"
    return [
        issue.model_copy(update={"path": "$" + issue.path[len(prefix) :], "job": None})
        if issue.path == prefix or issue.path.startswith((prefix + ".", prefix + "["))
        else issue
        for issue in issues
    ]
