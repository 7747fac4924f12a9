"""Structured validation issues: every problem of a graph, reported at once.

Each issue carries a stable code (for programs that read them), declared once with its
meaning: the runtime's and the file formats' in :data:`ERROR_CODES`, a job's own in its
``error_codes``. The README's tables are generated from them, and a test fails when the code
raises a code that is not declared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

ERROR_CODES: dict[str, str] = {
    "invalid_document": "the document is not a job spec or workflow: unknown keys, wrong types "
    "or a malformed input reference (the JSON path says where)",
    "unknown_job": "no installed job has this type (the message lists them)",
    "unknown_param": "the job has no such parameter (with a 'did you mean' and the valid names)",
    "invalid_param": "a parameter of the wrong type or form (the message says which it takes)",
    "param_out_of_range": "a parameter outside its limits (align3d describe lists them)",
    "unknown_slot": "the job has no such input slot at these parameters (with the valid names; "
    "per-volume slots appear only when their switch is on)",
    "unknown_source": "an input reads from a job or output slot the workflow does not have",
    "type_mismatch": "an input of another kind than the slot takes (e.g. a mask into a volume "
    "slot)",
    "missing_required_input": "a required input is not connected (a slot may be required only "
    "with some parameters or connections: align3d describe says when)",
    "multiple_connections": "several connections to a slot that takes one",
    "duplicate_index": "two items of a multiple input with the same index",
    "cycle": "jobs of a workflow read from each other in a cycle",
    "group_replaces_individual": "(warning of the graph-editing API) connecting a slot that "
    "replaces another (its declaration says which) dropped that slot's connections",
    "unreadable_map": "a map or mask that is missing, unreadable, not MRC, truncated, not 3-D, "
    "with NaN or infinite values, constant, or without a voxel size; or a mask outside [0, 1]",
    "invalid_particles": "a particle file that cannot be read, has no poses, or whose format its "
    "name does not say",
    "output_exists": "an output is there already (a file, or a job folder of another request): "
    "nothing is replaced without --force; an input file, a folder where a file goes (or a file "
    "where a folder goes), and a folder that is not align3d's are never replaced",
}


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

    def cli_line(self) -> str:
        """The issue as the command line prints a problem that has no place in a document:
        ``align3d: error: [code] message``."""
        return f"align3d: {self.level}: [{self.code}] {self.message}"

    def __str__(self) -> str:
        """``error: PATH: [code] message``: the JSON path says where (job, slot or parameter),
        once."""
        return f"{self.level}: {self.path}: [{self.code}] {self.message}"


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
    file: Path | None = None
    """The input file the problem is about (the runtime finds the element of the document
    that names it: :func:`align3d.engine.locations.file_location`)."""

    def issue(self, job: str, element: str | None = None) -> Issue:
        """This problem as an issue of ``job``, with its JSON path in the workflow document:
        at ``element`` (below the job, e.g. ``.inputs.SLOT[1].map``) when given,
        else at its slot or parameter."""
        where = element or (
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
