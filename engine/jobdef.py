"""The job model: what a job declares and what the runtime gives it.

A job is data plus two pure functions: its input and output slots are computed from
``(params, connected)`` every time they are asked for, never stored and mutated. The resolver
calls them to validate a graph, the executor to run it. Jobs are discovered through the
``align3d.jobs`` entry-point group, so the runtime imports no job module by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from engine.parallel.backend import Backend
from slots.payloads import SlotKind


@dataclass(frozen=True)
class SlotSpec:
    """One input or output slot.

    ``multiple``: an input that takes a list (each item a connection of its own, with a stable
    volume index). ``volume_index``: the stable index of the volume a per-volume slot belongs to.
    """

    name: str
    kind: SlotKind
    required: bool = False
    multiple: bool = False
    volume_index: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Connected:
    """What is connected to a job's inputs, as far as its slot functions need to know.

    ``counts``: slot name -> number of connections. ``volume_indices``: stable indices of the
    items connected to a ``multiple`` input, by slot. ``group_sizes``: number of volumes of a
    connected volumes group, when known before the run (None when it comes from a job output).
    """

    counts: Mapping[str, int] = field(default_factory=dict)
    volume_indices: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    group_sizes: Mapping[str, int | None] = field(default_factory=dict)

    def has(self, slot: str) -> bool:
        return self.counts.get(slot, 0) > 0


@dataclass(frozen=True)
class RunContext:
    """Where a job writes (``workdir``, a temporary folder renamed into place when the job is
    complete), where relative paths of its spec start (``base_dir``), how it reports (``log``:
    one line at a time, to stdout and the job's log file) and where its tasks run
    (``backend``: local processes by default, or a Dask cluster)."""

    workdir: Path
    base_dir: Path
    log: Callable[[str], None]
    quiet: bool = False
    backend: Backend = field(default_factory=Backend)


class JobInputError(Exception):
    """A job cannot run on its inputs (a user-fixable problem); the message names the file,
    slot or parameter and says what to do."""


@dataclass(frozen=True)
class JobOutcome:
    """What a job returns: its output payloads by slot name, and extra documents for the
    result manifest (e.g. ``alignments``)."""

    outputs: dict[str, BaseModel]
    extra: dict[str, Any] = field(default_factory=dict)


class JobDefinition(Protocol):
    """What a job module exports (as ``JOB``)."""

    name: str
    description: str
    params_model: type[BaseModel]

    def input_slots(self, params: BaseModel, connected: Connected) -> list[SlotSpec]: ...

    def output_slots(self, params: BaseModel, connected: Connected) -> list[SlotSpec]: ...

    def run(
        self, params: BaseModel, inputs: Mapping[str, Any], context: RunContext
    ) -> JobOutcome: ...


def discover_jobs() -> dict[str, JobDefinition]:
    """All installed jobs, by name, from the ``align3d.jobs`` entry points."""
    jobs: dict[str, JobDefinition] = {}
    for ep in entry_points(group="align3d.jobs"):
        job = ep.load()
        jobs[job.name] = job
    return jobs
