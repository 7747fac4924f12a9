"""A Python API for node-style graph editing: add jobs, connect and disconnect slots, validate.

The graph is kept as a workflow document (the same JSON a user submits), so what is edited here
runs, validates and serialises exactly as a submitted document does. Individual volumes keep
the stable index they were connected with: disconnecting item 2 of an indexed input leaves
items 1 and 3 as they were, and a per-volume slot of item 2 still connected is reported, never
re-paired.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from align3d.engine.issues import Issue
from align3d.engine.jobdef import JobDefinition, SlotDecl
from align3d.engine.resolver import Resolution, resolve
from align3d.schemas.documents import Workflow


class WorkflowGraph:
    """An editable workflow. Every edit returns the notices it produced (as issues)."""

    def __init__(self, registry: Mapping[str, JobDefinition]) -> None:
        self._registry = registry
        self._jobs: dict[str, dict[str, Any]] = {}

    def add_job(self, name: str, job: str, params: Mapping[str, Any] | None = None) -> None:
        if name in self._jobs:
            raise ValueError(f"a job named {name!r} exists already")
        self._jobs[name] = {"job": job, "params": dict(params or {}), "inputs": {}}

    def set_params(self, name: str, **params: Any) -> None:
        self._jobs[name]["params"].update(params)

    def connect(
        self, source: str, source_slot: str, target: str, target_slot: str, index: int | None = None
    ) -> list[Issue]:
        """Connect ``source.source_slot`` to ``target.target_slot``.

        For an indexed multiple input (the job's declaration says which: ``indexed``) the
        connection joins the list under ``index`` (default: one more than the highest index
        there). Connecting a slot that replaces another (its declaration's ``replaces``) drops
        that one's connections, and says so.
        """
        inputs = self._jobs[target]["inputs"]
        ref: dict[str, Any] = {"from": f"{source}.{source_slot}"}
        notices: list[Issue] = []
        decl = self._declared(target, target_slot)
        if decl is not None and decl.indexed:
            items = inputs.setdefault(target_slot, [])
            used = [item["index"] for item in items]
            ref["index"] = index if index is not None else max(used, default=0) + 1
            if ref["index"] in used:
                raise ValueError(f"{target}.{target_slot} already has a volume {ref['index']}")
            items.append(ref)
            return notices
        replaced = decl.replaces if decl is not None else None
        if replaced is not None and inputs.get(replaced):
            dropped = [item.get("index") for item in inputs.pop(replaced)]
            notices.append(
                Issue(
                    level="warning",
                    code="group_replaces_individual",
                    job=target,
                    slot=replaced,
                    path=f"$.jobs.{target}.inputs.{replaced}",
                    message=f"connecting {target_slot} dropped the connections of {replaced}: "
                    f"indices {dropped}",
                )
            )
        inputs[target_slot] = ref
        return notices

    def _declared(self, job: str, slot: str) -> SlotDecl | None:
        """The declaration of input ``slot`` of ``job`` (None for undeclared jobs or slots)."""
        definition = self._registry.get(self._jobs[job]["job"])
        for decl in definition.inputs if definition is not None else ():
            if decl.name == slot:
                return decl
        return None

    def disconnect(self, target: str, target_slot: str, index: int | None = None) -> None:
        """Remove a connection (for an indexed input, the volume with ``index``)."""
        inputs = self._jobs[target]["inputs"]
        if index is not None and isinstance(inputs.get(target_slot), list):
            inputs[target_slot] = [i for i in inputs[target_slot] if i.get("index") != index]
            if not inputs[target_slot]:
                del inputs[target_slot]
        else:
            inputs.pop(target_slot, None)

    def set_input(self, target: str, target_slot: str, value: Any) -> None:
        """Connect a file reference (``{"map": ...}``, ``{"path": ...}``, ...) directly."""
        self._jobs[target]["inputs"][target_slot] = value

    def document(self) -> dict[str, Any]:
        """The workflow document (JSON-ready) this graph stands for."""
        return {"jobs": {name: dict(spec) for name, spec in self._jobs.items()}}

    def resolve(self) -> Resolution:
        return resolve(Workflow.model_validate(self.document()), self._registry)

    def input_slots(self, name: str) -> list[str]:
        """The input slots the job has now (they change with parameters and connections)."""
        return [s.name for s in self.resolve().jobs[name].inputs]

    def output_slots(self, name: str) -> list[str]:
        return [s.name for s in self.resolve().jobs[name].outputs]
