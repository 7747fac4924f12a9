"""Resolve a workflow document into a validated graph, reporting every problem at once.

The graph is a networkx ``MultiDiGraph``: one node per job (attributes ``job_type``,
``params``), one edge per connection from another job's output, with ``source_slot`` and
``target_slot`` (and ``index`` for items of a multiple input) on the edge. The resolver knows no
job: it asks each job definition for its slots, as pure functions of (params, connected).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from pydantic import BaseModel, ValidationError

from align3d.engine.issues import Issue
from align3d.engine.jobdef import Connected, JobDefinition, SlotSpec
from align3d.engine.suggest import closest, keys_at, unknown_name
from align3d.schemas.documents import (
    FromRef,
    GroupRef,
    JobSpec,
    PathRef,
    SingleInput,
    VolumeRef,
    Workflow,
)
from align3d.slots.payloads import SlotKind

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


@dataclass
class ResolvedJob:
    """A job of the graph with its validated parameters and slots."""

    name: str
    spec: JobSpec
    definition: JobDefinition | None
    params: BaseModel | None
    connected: Connected
    inputs: list[SlotSpec] = field(default_factory=list)
    outputs: list[SlotSpec] = field(default_factory=list)
    slot_params: BaseModel | None = None
    """The parameters the slots were computed with: ``params``, or when some parameters are
    invalid, the valid ones with defaults for the rest (``params`` is then None)."""


@dataclass
class Resolution:
    graph: nx.MultiDiGraph
    jobs: dict[str, ResolvedJob]
    issues: list[Issue]

    @property
    def ok(self) -> bool:
        return not any(i.level == "error" for i in self.issues)

    def order(self) -> list[str]:
        """Jobs in an order where every job comes after the jobs it reads from."""
        return list(nx.topological_sort(self.graph))


def as_list(value: SingleInput | list[SingleInput]) -> list[SingleInput]:
    return list(value) if isinstance(value, list) else [value]


def item_index(item: SingleInput, position: int) -> int:
    """Stable index of an item of a multiple input: its ``index``, else its position from 1."""
    index = getattr(item, "index", None)
    return index if index is not None else position + 1


def _connected(spec: JobSpec) -> Connected:
    counts: dict[str, int] = {}
    indices: dict[str, tuple[int, ...]] = {}
    sizes: dict[str, int | None] = {}
    for slot, value in spec.inputs.items():
        items = as_list(value)
        counts[slot] = len(items)
        indices[slot] = tuple(item_index(it, i) for i, it in enumerate(items))
        if len(items) == 1 and isinstance(items[0], GroupRef):
            sizes[slot] = len(items[0].volumes)
        elif len(items) == 1 and isinstance(items[0], FromRef):
            sizes[slot] = None
    return Connected(counts, indices, sizes)


def _valid_part(model: type[BaseModel], given: dict[str, Any], exc: ValidationError) -> Any:
    """``model`` from the given parameters that are valid (None when even those fail)."""
    bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
    try:
        return model(**{k: v for k, v in given.items() if k not in bad})
    except ValidationError:
        return None


def _param_issues(name: str, exc: ValidationError, model: type[BaseModel]) -> list[Issue]:
    issues = []
    for err in exc.errors():
        param = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            code, message = "unknown_param", unknown_name("parameter", param, model.model_fields)
        elif err["type"] in _RANGE_ERRORS:  # the path names the parameter: the message does not
            code, message = "param_out_of_range", f"{err['msg']} (got {err['input']!r})"
        else:
            code, message = "invalid_param", f"{err['msg']} (got {err['input']!r})"
        issues.append(
            Issue(
                code=code,
                message=message,
                job=name,
                param=param,
                path=f"$.jobs.{name}.params.{param}",
            )
        )
    return issues


def _literal_kind(item: SingleInput) -> set[SlotKind]:
    if isinstance(item, VolumeRef):
        return {SlotKind.VOLUME}
    if isinstance(item, GroupRef):
        return {SlotKind.VOLUMES_GROUP}
    if isinstance(item, PathRef):
        if item.path.lower().endswith((".star", ".cs")):
            return {SlotKind.PARTICLES}
        return {SlotKind.MASK}
    return set()


def resolve(workflow: Workflow, registry: Mapping[str, JobDefinition]) -> Resolution:
    """Validate ``workflow`` against the job definitions in ``registry``."""
    issues: list[Issue] = []
    graph = nx.MultiDiGraph()
    jobs: dict[str, ResolvedJob] = {}

    # pass 1: jobs, parameters, input slots
    for name, spec in workflow.jobs.items():
        definition = registry.get(spec.job)
        graph.add_node(name, job_type=spec.job)
        connected = _connected(spec)
        resolved = ResolvedJob(name, spec, definition, None, connected)
        jobs[name] = resolved
        if definition is None:
            issues.append(
                Issue(
                    code="unknown_job",
                    job=name,
                    path=f"$.jobs.{name}.job",
                    message=unknown_name("job type", spec.job, registry),
                )
            )
            continue
        try:
            resolved.params = definition.params_model(**spec.params)
            slot_params = resolved.params
        except ValidationError as exc:
            issues.extend(_param_issues(name, exc, definition.params_model))
            # the slots and rules are still checked, with the parameters that are valid (the
            # others at their defaults), so that every problem is reported at once
            slot_params = _valid_part(definition.params_model, spec.params, exc)
        if slot_params is None:
            continue
        resolved.slot_params = slot_params
        graph.nodes[name]["params"] = slot_params.model_dump(mode="json")
        resolved.inputs = definition.input_slots(slot_params, connected)
        resolved.outputs = definition.output_slots(slot_params, connected)
        issues.extend(_job_check_issues(name, definition, resolved))

    # pass 2: connections
    for name, resolved in jobs.items():
        if resolved.slot_params is None:
            continue
        issues.extend(_connection_issues(name, resolved, jobs, graph))

    # only a graph with a cycle is searched for its cycles (networkx 3.2's simple_cycles
    # copies the graph through a converter that imports pandas and scipy)
    cycles = [] if nx.is_directed_acyclic_graph(graph) else nx.simple_cycles(graph)
    for cycle in cycles:
        path = " -> ".join([*cycle, cycle[0]])
        issues.append(
            Issue(
                code="cycle",
                job=cycle[0],
                path=f"$.jobs.{cycle[0]}.inputs",
                message=f"jobs read from each other in a cycle: {path}",
            )
        )
    return Resolution(graph, jobs, issues)


def _job_check_issues(name: str, definition: JobDefinition, job: ResolvedJob) -> list[Issue]:
    return [problem.issue(name) for problem in definition.check(job.slot_params, job.connected)]


def _connection_issues(
    name: str, job: ResolvedJob, jobs: dict[str, ResolvedJob], graph: nx.MultiDiGraph
) -> list[Issue]:
    issues: list[Issue] = []
    slots = {s.name: s for s in job.inputs}
    claimed = (
        {i.slot for i in _job_check_issues(name, job.definition, job)} if job.definition else set()
    )
    for slot_name, value in job.spec.inputs.items():
        base = f"$.jobs.{name}.inputs.{slot_name}"
        slot = slots.get(slot_name)
        if slot is None:
            if slot_name not in claimed:
                issues.append(
                    Issue(
                        code="unknown_slot",
                        job=name,
                        slot=slot_name,
                        path=base,
                        message=_unknown_slot(job, slot_name, sorted(slots)),
                    )
                )
            continue
        items = as_list(value)
        if len(items) > 1 and not slot.multiple:
            issues.append(
                Issue(
                    code="multiple_connections",
                    job=name,
                    slot=slot_name,
                    path=base,
                    message=f"{slot_name} takes one connection, got {len(items)}",
                )
            )
        if slot.multiple:
            seen: dict[int, int] = {}
            for i, item in enumerate(items):
                index = item_index(item, i)
                if index in seen:
                    issues.append(
                        Issue(
                            code="duplicate_index",
                            job=name,
                            slot=slot_name,
                            path=f"{base}[{i}].index",
                            message=f"index {index} is given twice",
                        )
                    )
                seen[index] = i
        for i, item in enumerate(items):
            where = f"{base}[{i}]" if isinstance(value, list) else base
            issues.extend(_item_issues(name, slot, item, i, where, jobs, graph))
    for slot in job.inputs:
        if slot.required and not job.connected.has(slot.name):
            issues.append(
                Issue(
                    code="missing_required_input",
                    job=name,
                    slot=slot.name,
                    path=f"$.jobs.{name}.inputs.{slot.name}",
                    message=f"required input {slot.name!r} ({slot.kind}) is not connected",
                )
            )
    return issues


def _unknown_slot(job: ResolvedJob, slot: str, now: list[str]) -> str:
    """Why ``slot`` is not an input now: a declared slot whose condition does not hold (say
    when it appears), or a name that is not declared at all (suggest the closest)."""
    declared = list(job.definition.inputs) if job.definition is not None else []
    for decl in declared:
        if decl.name == slot or decl.index_of(slot) is not None:
            return (
                f"input {slot!r} appears only {decl.when.text}; with these parameters and "
                f"connections the inputs are: {', '.join(now) or 'none'}"
            )
    templates = [d for d in declared if d.is_template]
    index = re.fullmatch(r".*_(\d+)", slot)
    # a misspelt per-volume slot (NAMES_1 for NAME_1) is closest to a concrete one
    concrete = {d.at(int(index.group(1))): d for d in templates} if index else {}
    candidates = now + (list(concrete) if concrete else [d.name for d in templates])
    hidden = [
        f" ({c!r} appears only {concrete[c].when.text})"
        for c in closest(slot, sorted(candidates))
        if c in concrete and c not in now
    ]
    return unknown_name(
        "input slot", slot, now + [d.name for d in templates], candidates, "".join(hidden)
    )


def _item_issues(
    name: str,
    slot: SlotSpec,
    item: SingleInput,
    position: int,
    where: str,
    jobs: dict[str, ResolvedJob],
    graph: nx.MultiDiGraph,
) -> list[Issue]:
    def problem(code: str, message: str, path: str) -> list[Issue]:
        return [Issue(code=code, job=name, slot=slot.name, path=path, message=message)]

    if isinstance(item, FromRef):
        source = jobs.get(item.job)
        if source is None:
            return problem(
                "unknown_source", f"no job named {item.job!r} in this workflow", f"{where}.from"
            )
        graph.add_edge(
            item.job,
            name,
            source_slot=item.slot,
            target_slot=slot.name,
            index=item_index(item, position),
        )
        if source.slot_params is None:
            return []  # the source's own issues are reported already
        outputs = {s.name: s for s in source.outputs}
        out = outputs.get(item.slot)
        if out is None:
            known = ", ".join(sorted(outputs))
            return problem(
                "unknown_source",
                f"job {item.job!r} has no output {item.slot!r} (outputs: {known})",
                f"{where}.from",
            )
        if out.kind != slot.kind:
            return problem(
                "type_mismatch",
                f"{item.from_} is a {out.kind}, {slot.name} takes a {slot.kind}",
                f"{where}.from",
            )
        return []
    kinds = _literal_kind(item)
    if slot.kind not in kinds:
        given = "/".join(sorted(kinds)) or "reference"
        return problem("type_mismatch", f"{slot.name} takes a {slot.kind}, got a {given}", where)
    return []


def document_issues(data: Any) -> tuple[Workflow | None, list[Issue]]:
    """Parse a job spec or workflow document (a dict from JSON); structural problems become
    ``invalid_document`` issues with their JSON paths (a misspelt key gets the closest valid
    keys at its place and the list of them)."""
    model: type[BaseModel] = Workflow if isinstance(data, dict) and "jobs" in data else JobSpec
    try:
        if model is Workflow:
            return Workflow.model_validate(data), []
        spec = JobSpec.model_validate(data)
        return Workflow(jobs={"J1": spec}), []
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = [str(x) for x in err["loc"] if not str(x).startswith("<")]
            path = "$"
            for part in loc:
                path += f"[{part}]" if part.isdigit() else f".{part}"
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                valid = keys_at(model, err["loc"][:-1])
                message = (
                    unknown_name("key", loc[-1], valid) if valid else f"unknown key {loc[-1]!r}"
                )
            elif err["type"] == "missing":
                message = f"missing key {loc[-1]!r}"
            elif err["type"] == "string_pattern_mismatch" and loc and loc[-1] == "from":
                message = 'expected "JOB.SLOT", e.g. "J1.volume"'

            issues.append(Issue(code="invalid_document", path=path, message=message))
        return None, _dedupe(issues)


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, str]] = set()
    out = []
    for issue in issues:
        key = (issue.path, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out
