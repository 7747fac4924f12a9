"""A job's parameters as CCP-EM pipeliner job options, generated from its declaration
(:func:`align3d.engine.describe.describe`): the same names (the option keys), defaults, hard limits
and help texts, and the title as the label. Imports the pipeliner: only host adapters
import this module."""

from __future__ import annotations

from typing import Any

from pipeliner.job_options import (
    BooleanJobOption,
    FloatJobOption,
    IntJobOption,
    JobOption,
    MultipleChoiceJobOption,
    StringJobOption,
)

from align3d.engine.describe import ParamDescription


def _help(param: ParamDescription) -> str:
    limits = []
    if param.minimum is not None:
        limits.append(f"{'>' if param.exclusive_minimum else '>='} {param.minimum:g}")
    if param.maximum is not None:
        limits.append(f"<= {param.maximum:g}")
    suffix = (
        f" (align3d parameter {param.name}; {', '.join(limits)})"
        if limits
        else (f" (align3d parameter {param.name})")
    )
    return param.help + suffix


def job_option(param: ParamDescription, group: str = "Main") -> JobOption:
    """The pipeliner option of one parameter."""
    common: dict[str, Any] = {
        "label": param.title or param.name,
        "help_text": _help(param),
        "jobop_group": group,
    }
    if param.type == "boolean":
        return BooleanJobOption(default_value=bool(param.default), **common)
    if param.choices:
        return MultipleChoiceJobOption(
            choices=list(param.choices), default_value=str(param.default), **common
        )
    if param.type in ("integer", "number"):
        limits: dict[str, Any] = {}
        if param.minimum is not None:
            limits["hard_min"] = param.minimum
            limits["suggested_min"] = param.minimum
        if param.maximum is not None:
            limits["hard_max"] = param.maximum
            limits["suggested_max"] = param.maximum
        if param.type == "integer":
            limits = {k: int(v) for k, v in limits.items()}
            return IntJobOption(default_value=int(param.default), step_value=1, **limits, **common)
        return FloatJobOption(
            default_value=float(param.default), step_value=1.0, **limits, **common
        )
    return StringJobOption(default_value=str(param.default), **common)


def option_value(param: ParamDescription, option: JobOption) -> Any:
    """The option's value as the job's parameter takes it."""
    if param.type == "boolean":
        return option.get_boolean()
    if param.type == "integer":
        return int(option.get_number())
    if param.type == "number" and not param.choices:
        return float(option.get_number())
    return option.get_string()
