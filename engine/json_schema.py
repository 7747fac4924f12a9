"""JSON Schemas (Draft 2020-12) of the documents align3d reads and writes, generated from the
job declarations.

``document`` accepts any valid job spec or workflow and rejects ill-typed ones: each job type
has its own parameters (types, defaults, limits and help, from the job's parameter model) and
its own input slots (templates, ``NAME_N``, as patterns), so that an editor can complete and
check a spec. ``job_spec``, ``workflow`` and ``result_manifest`` are the single documents; in
``result_manifest``, ``details`` follows the job type's ``details_model``. The committed
``schemas/*.schema.json`` are written by ``align3d schema --out schemas`` (a test fails when
they are stale).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from align3d.engine.jobdef import JobDefinition, SlotDecl
from align3d.schemas.documents import (
    JOB_NAME_PATTERN,
    FileRef,
    FromRef,
    GroupRef,
    PathRef,
    ResultManifest,
    VolumeRef,
)
from align3d.slots.payloads import SlotKind

DRAFT = "https://json-schema.org/draft/2020-12/schema"
REF = "#/$defs/{model}"
NAMES = ("document", "job_spec", "workflow", "result_manifest")

_FORMS = {
    SlotKind.VOLUME: "VolumeRef",
    SlotKind.VOLUMES_GROUP: "GroupRef",
    SlotKind.MASK: "PathRef",
    SlotKind.PARTICLES: "PathRef",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _input(decl: SlotDecl) -> dict[str, Any]:
    one = {"oneOf": [_ref(_FORMS[decl.kind]), _ref("FromRef")]}
    many = {"type": "array", "items": one, "minItems": 1}
    if not decl.multiple:
        many["maxItems"] = 1
    return {
        "description": f"{decl.help} ({decl.kind}; when: {decl.when.text})",
        "oneOf": [one, many],
    }


def _params(job: JobDefinition) -> dict[str, Any]:
    schema = job.params_model.model_json_schema(ref_template=REF)
    schema.pop("$defs", None)  # parameter models are flat
    schema["additionalProperties"] = False
    return schema


def _job(job: JobDefinition) -> dict[str, Any]:
    declared = list(job.inputs)
    properties = {d.name: _input(d) for d in declared if not d.is_template}
    patterns = {
        "^" + re.escape(d.name[:-2]) + "_[1-9][0-9]*$": _input(d) for d in declared if d.is_template
    }
    inputs: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if patterns:
        inputs["patternProperties"] = patterns
    return {
        "type": "object",
        "title": job.name,
        "description": job.description,
        "properties": {
            "job": {"const": job.name, "description": "Job type."},
            "params": _ref(f"params_{job.name}"),
            "inputs": inputs,
        },
        "required": ["job"],
        "additionalProperties": False,
    }


def _definitions(registry: Mapping[str, JobDefinition]) -> dict[str, Any]:
    _, shared = models_json_schema(
        [(m, "validation") for m in (FromRef, VolumeRef, GroupRef, PathRef, FileRef)],
        by_alias=True,
        ref_template=REF,
    )
    defs: dict[str, Any] = dict(shared.get("$defs", {}))
    for name in sorted(registry):
        defs[f"params_{name}"] = _params(registry[name])
        defs[f"job_{name}"] = _job(registry[name])
    defs["JobSpec"] = {
        "description": "One job: {job, params, inputs}; params and inputs follow the job type.",
        "oneOf": [_ref(f"job_{name}") for name in sorted(registry)],
    }
    defs["Workflow"] = {
        "type": "object",
        "description": "Named jobs whose inputs may reference other jobs' outputs "
        '({"from": "JOB.SLOT"}).',
        "properties": {
            "jobs": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": JOB_NAME_PATTERN},
                "additionalProperties": _ref("JobSpec"),
            }
        },
        "required": ["jobs"],
        "additionalProperties": False,
    }
    return defs


def _result_manifest(registry: Mapping[str, JobDefinition]) -> dict[str, Any]:
    """The manifest's schema, with each job type's ``details`` as that job's model says (null
    for a job that declares none)."""
    body = ResultManifest.model_json_schema(by_alias=True, ref_template=REF)
    models = {n: j.details_model for n, j in sorted(registry.items())}
    refs, shared = models_json_schema(
        [(m, "validation") for m in models.values() if m is not None],
        by_alias=True,
        ref_template=REF,
    )
    body.setdefault("$defs", {}).update(shared.get("$defs", {}))
    body["allOf"] = [
        {
            "if": {"properties": {"job_type": {"const": name}}, "required": ["job_type"]},
            "then": {
                "properties": {
                    "details": {"type": "null"} if model is None else refs[(model, "validation")]
                }
            },
        }
        for name, model in models.items()
    ]
    return body


def _root(title: str, body: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": DRAFT, "title": title, **body, "$defs": defs}


def schema(name: str, registry: Mapping[str, JobDefinition]) -> dict[str, Any]:
    """The JSON Schema of document ``name`` (one of :data:`NAMES`)."""
    if name == "result_manifest":
        return {"$schema": DRAFT, **_result_manifest(registry)}
    defs = _definitions(registry)
    if name == "job_spec":
        return _root("align3d job spec", _ref("JobSpec"), defs)
    if name == "workflow":
        return _root("align3d workflow", _ref("Workflow"), defs)
    if name == "document":
        body = {
            "description": "A job spec or a workflow, as align3d validate and run read them.",
            "oneOf": [_ref("JobSpec"), _ref("Workflow")],
        }
        return _root("align3d document", body, defs)
    raise KeyError(name)


def write_schemas(folder: Path, registry: Mapping[str, JobDefinition]) -> list[Path]:
    """Write ``NAME.schema.json`` for every document into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in NAMES:
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema(name, registry), indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths
