"""Structured validation issues: every problem of a graph, reported at once.

Codes (stable, for programs that read them):

``unknown_job``, ``unknown_param``, ``invalid_param``, ``param_out_of_range``,
``unknown_slot``, ``unknown_source``, ``type_mismatch``, ``missing_required_input``,
``group_and_individual``, ``per_volume_without_volume``, ``wrong_mask_count``,
``multiple_connections``, ``duplicate_index``, ``cycle``, ``invalid_document``,
``group_replaces_individual`` (a warning of the graph-editing API).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Issue(BaseModel):
    """One problem: where (job, slot or param, JSON path), what (code, message), how bad."""

    model_config = ConfigDict(frozen=True)
    level: Literal["error", "warning"] = "error"
    code: str
    message: str
    job: str | None = None
    slot: str | None = None
    param: str | None = None
    path: str = "$"

    def __str__(self) -> str:
        where = ".".join(x for x in (self.job, self.slot or self.param) if x)
        return f"{self.level}: {self.path}: [{self.code}] {where + ': ' if where else ''}{self.message}"


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.level == "error"]


class JobProblem(BaseModel):
    """A problem a job finds in its own rules or input files (``check``, ``preflight``): what
    (code, message) and where (slot or parameter). The runtime turns it into an :class:`Issue`
    of the job it belongs to (:meth:`issue`)."""

    model_config = ConfigDict(frozen=True)
    code: str
    message: str
    slot: str | None = None
    param: str | None = None
    level: Literal["error", "warning"] = "error"

    def issue(self, job: str) -> Issue:
        """This problem as an issue of ``job``, with its JSON path in the workflow document."""
        where = (
            f".inputs.{self.slot}" if self.slot else (f".params.{self.param}" if self.param else "")
        )
        return Issue(
            level=self.level,
            code=self.code,
            message=self.message,
            job=job,
            slot=self.slot,
            param=self.param,
            path=f"$.jobs.{job}{where or '.inputs'}",
        )


class InvalidSpec(Exception):
    """A document, graph or its input files have errors; ``issues`` lists them all."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues
