"""The job model: what a job declares and what the runtime gives it.

A job is data plus pure functions. Its input and output slots are computed from
``(params, connected)`` every time they are asked for, never stored and mutated. A job declares
them once, as :class:`SlotDecl` records: a plain slot or a per-volume *template* (a name
ending in ``_N``, ``NAME_N``) that expands to one slot per connected volume, each with the
stable index of its volume, and a :class:`Condition` that says when the slot appears. The
resolver asks for the expanded slots to validate a graph, the executor to run it, and
``align3d describe`` prints the declarations themselves. Jobs are discovered through the
``align3d.jobs`` entry-point group, so the runtime imports no job module by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from align3d.engine.issues import JobProblem
from align3d.engine.parallel.backend import Backend
from align3d.slots.payloads import SlotKind

TEMPLATE_SUFFIX = "_N"
"""A declared slot name ending in ``_N`` is a per-volume template (``NAME_N``)."""


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
class Condition:
    """When a declared slot appears: a pure predicate of ``(params, connected, index)`` (the
    index is the volume's for a template, None otherwise) and the same rule in words, for
    ``align3d describe`` and the README."""

    text: str
    test: Callable[[Any, Connected, int | None], bool]

    def __call__(self, params: Any, connected: Connected, index: int | None = None) -> bool:
        return bool(self.test(params, connected, index))


ALWAYS = Condition("always", lambda params, connected, index: True)


@dataclass(frozen=True)
class SlotSpec:
    """One concrete input or output slot.

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
class SlotDecl:
    """One declared slot, or a per-volume template (``name`` ends in ``_N``).

    ``replaces``: connecting this slot drops the connections of that one (a volumes group
    replaces the individual volumes). ``indexed``: the items of this multiple input carry the
    stable indices that the job's templates expand over.
    """

    name: str
    kind: SlotKind
    help: str
    required: bool = False
    multiple: bool = False
    when: Condition = ALWAYS
    replaces: str | None = None
    indexed: bool = False

    @property
    def is_template(self) -> bool:
        return self.name.endswith(TEMPLATE_SUFFIX)

    def at(self, index: int) -> str:
        """The concrete name of a template for volume ``index`` (``NAME_N`` -> ``NAME_3``)."""
        if not self.is_template:
            raise ValueError(f"{self.name} is not a per-volume template")
        return f"{self.name[: -len(TEMPLATE_SUFFIX)]}_{index}"

    def index_of(self, slot: str) -> int | None:
        """The volume index of a concrete slot made from this template, or None."""
        if not self.is_template:
            return None
        match = re.fullmatch(re.escape(self.name[: -len(TEMPLATE_SUFFIX)]) + r"_(\d+)", slot)
        return int(match.group(1)) if match else None

    def spec(self, index: int | None = None) -> SlotSpec:
        name = self.name if index is None else self.at(index)
        return SlotSpec(name, self.kind, self.required, self.multiple, index, self.help)


@dataclass(frozen=True)
class RunContext:
    """Where a job writes (``workdir``, a temporary folder renamed into place when the job is
    complete), where relative paths of its spec start (``base_dir``), how it reports (``log``:
    one line at a time, to the job's log file and, unless ``quiet``, the screen) and where its
    tasks run (``backend``: local processes by default, or a Dask cluster) and the command line
    that ran it (``command``)."""

    workdir: Path
    base_dir: Path
    log: Callable[[str], None]
    quiet: bool = False
    backend: Backend = field(default_factory=Backend)
    command: tuple[str, ...] = ()
    """The command line that ran the job (argv), when known (as result.json records it)."""


class JobInputError(Exception):
    """A job cannot run on its inputs (a user-fixable problem); the message names the file,
    slot or parameter and says what to do."""


@dataclass(frozen=True)
class JobOutcome:
    """What a job returns: its output payloads by slot name, its warnings, and ``details``:
    what it found, an instance of its ``details_model`` (None when it declares none), which the
    runtime writes under ``details`` in ``result.json``."""

    outputs: dict[str, BaseModel]
    warnings: list[str] = field(default_factory=list)
    details: BaseModel | None = None


class JobDefinition(Protocol):
    """What a job module exports (as ``JOB``): every member the runtime may use. A job built on
    :class:`DeclaredJob` inherits a default for each optional hook and overrides what it has.

    Required: ``name``, ``description``, ``params_model``, the slot declarations (``inputs``,
    ``outputs``) and :meth:`run`. Optional hooks, with their defaults in :class:`DeclaredJob`:

    * ``details_model``: the model of the job's own document in ``result.json`` (``details``),
      None for a job that records none;
    * ``error_codes``: the codes of the job's own problems with their meanings;
    * :meth:`check`: rules beyond slot types (none);
    * :meth:`preflight`: problems of the input files, before any work (none);
    * :meth:`input_files`: the files the result depends on (None: the files the spec names);
    * :meth:`outputs_before_run`: outputs known before the job runs (None: not known);
    * :meth:`output_bytes`: an estimate of the bytes the job writes (0: unknown).
    """

    name: str
    description: str
    params_model: type[BaseModel]
    inputs: tuple[SlotDecl, ...]
    outputs: tuple[SlotDecl, ...]
    details_model: type[BaseModel] | None
    error_codes: Mapping[str, str]

    def input_slots(self, params: BaseModel, connected: Connected) -> list[SlotSpec]: ...

    def output_slots(self, params: BaseModel, connected: Connected) -> list[SlotSpec]: ...

    def run(
        self, params: BaseModel, inputs: Mapping[str, Any], context: RunContext
    ) -> JobOutcome: ...

    def check(self, params: BaseModel, connected: Connected) -> list[JobProblem]: ...

    def preflight(
        self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path
    ) -> list[JobProblem]: ...

    def input_files(
        self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path
    ) -> list[Path] | None: ...

    def outputs_before_run(
        self, params: BaseModel, base_dir: Path
    ) -> dict[str, BaseModel] | None: ...

    def output_bytes(self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path) -> int: ...


def expand(
    decls: Sequence[SlotDecl], params: BaseModel, connected: Connected, indices: Sequence[int]
) -> list[SlotSpec]:
    """The concrete slots of ``decls``: plain slots first, then each volume's templated slots
    (in declaration order), for the volumes ``indices``, where their conditions hold."""
    plain = [d.spec() for d in decls if not d.is_template and d.when(params, connected)]
    templates = [d for d in decls if d.is_template]
    per_volume = [d.spec(n) for n in indices for d in templates if d.when(params, connected, n)]
    return plain + per_volume


@dataclass(frozen=True)
class DeclaredJob:
    """A job whose slots come from its declarations (:class:`SlotDecl`), with the default of
    every optional hook of :class:`JobDefinition`; subclasses add ``run`` and override the
    hooks they have."""

    name: str
    description: str
    params_model: type[BaseModel]
    inputs: tuple[SlotDecl, ...]
    outputs: tuple[SlotDecl, ...]
    details_model: ClassVar[type[BaseModel] | None] = None
    error_codes: ClassVar[Mapping[str, str]] = MappingProxyType({})

    @property
    def indexed_slot(self) -> SlotDecl | None:
        """The multiple input whose items carry the indices that the templates expand over."""
        return next((d for d in self.inputs if d.indexed), None)

    def volume_indices(self, connected: Connected) -> tuple[int, ...]:
        slot = self.indexed_slot
        return tuple(connected.volume_indices.get(slot.name, ())) if slot else ()

    def input_slots(self, params: BaseModel, connected: Connected) -> list[SlotSpec]:
        return expand(self.inputs, params, connected, self.volume_indices(connected))

    def output_slots(self, params: BaseModel, connected: Connected) -> list[SlotSpec]:
        return expand(self.outputs, params, connected, self.volume_indices(connected))

    def template_of(self, slot: str) -> tuple[SlotDecl, int] | None:
        """The input template a concrete slot name comes from, with its volume index."""
        for decl in self.inputs:
            index = decl.index_of(slot)
            if index is not None:
                return decl, index
        return None

    def run(self, params: BaseModel, inputs: Mapping[str, Any], context: RunContext) -> JobOutcome:
        raise NotImplementedError(f"job {self.name} declares no run")

    def check(self, params: BaseModel, connected: Connected) -> list[JobProblem]:
        """Rules beyond slot types, every problem at once (default: none)."""
        return []

    def preflight(
        self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path
    ) -> list[JobProblem]:
        """Problems of the input files, found before any work (default: none)."""
        return []

    def input_files(
        self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path
    ) -> list[Path] | None:
        """The files the result depends on besides earlier jobs' outputs (default None: the
        files the spec names)."""
        return None

    def outputs_before_run(self, params: BaseModel, base_dir: Path) -> dict[str, BaseModel] | None:
        """The outputs, when known before the job runs (default None: not known)."""
        return None

    def output_bytes(self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path) -> int:
        """An estimate of the bytes the job will write, for the free-space check (default 0)."""
        return 0


def discover_jobs() -> dict[str, JobDefinition]:
    """All installed jobs, by name, from the ``align3d.jobs`` entry points."""
    jobs: dict[str, JobDefinition] = {}
    for ep in entry_points(group="align3d.jobs"):
        job = ep.load()
        jobs[job.name] = job
    return jobs
