"""What a job declares, as a document: its parameters (name, type, default, limits, help) and
its input and output slots (templates included, with when each appears). ``align3d describe``
prints it; the README's job reference, the JSON Schema and the host adapters are made from it.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

from align3d.engine.jobdef import JobDefinition, SlotDecl

_FROZEN = ConfigDict(frozen=True)


class ParamDescription(BaseModel):
    model_config = _FROZEN
    name: str
    type: Literal["boolean", "integer", "number", "string"]
    required: bool = False
    default: Any = None  # None for a required parameter (it has none)
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: list[str] | None = None
    title: str = ""
    help: str = ""


def bounds_text(param: ParamDescription) -> str:
    """A parameter's limits as people read them: ``> 0, ≤ 1000`` (an exclusive bound with
    ``>``), ``≥ 1, ≤ 200`` (integer limits as integers); empty when it has none."""
    low = (
        ""
        if param.minimum is None
        else f"{'>' if param.exclusive_minimum else '≥'} {param.minimum:g}"
    )
    high = "" if param.maximum is None else f"≤ {param.maximum:g}"
    return ", ".join(x for x in (low, high) if x)


class SlotDescription(BaseModel):
    model_config = _FROZEN
    name: str
    kind: str
    required: bool
    multiple: bool
    when: str
    help: str


class JobDescription(BaseModel):
    model_config = _FROZEN
    job: str
    description: str
    params: list[ParamDescription]
    inputs: list[SlotDescription]
    outputs: list[SlotDescription]


def _type(annotation: Any) -> tuple[str, list[str] | None]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type(typing.get_args(annotation)[0])
    if origin is Literal:
        return "string", [str(a) for a in typing.get_args(annotation)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _type(args[0])
    if annotation is bool:
        return "boolean", None
    if annotation is int:
        return "integer", None
    if annotation is float:
        return "number", None
    return "string", None


def describe_param(name: str, info: FieldInfo) -> ParamDescription:
    kind, choices = _type(info.annotation)
    low = high = None
    exclusive = False
    for item in info.metadata:
        for attr, is_exclusive in (("ge", False), ("gt", True)):
            if getattr(item, attr, None) is not None:
                low, exclusive = float(getattr(item, attr)), is_exclusive
        for attr in ("le", "lt"):
            if getattr(item, attr, None) is not None:
                high = float(getattr(item, attr))
    return ParamDescription(
        name=name,
        type=kind,  # type: ignore[arg-type]
        required=info.is_required(),
        default=None if info.is_required() else info.default,
        minimum=low,
        maximum=high,
        exclusive_minimum=exclusive,
        choices=choices,
        title=info.title or "",
        help=info.description or "",
    )


def _slot(decl: SlotDecl) -> SlotDescription:
    return SlotDescription(
        name=decl.name,
        kind=str(decl.kind),
        required=decl.required,
        multiple=decl.multiple,
        when=decl.when.text,
        help=decl.help,
    )


def describe(job: JobDefinition) -> JobDescription:
    """The declaration of ``job`` as a document (slot templates as ``name_N``)."""
    fields = job.params_model.model_fields
    return JobDescription(
        job=job.name,
        description=job.description,
        params=[describe_param(name, info) for name, info in fields.items()],
        inputs=[_slot(d) for d in job.inputs],
        outputs=[_slot(d) for d in job.outputs],
    )
