"""A parameter value as a host passes it (text: ``--max_shift_A 10``, ``Yes``) turned into the
type its declaration says (:class:`align3d.engine.describe.ParamDescription`); limits and patterns
stay with the job's own model, which names the parameter when a value is out of bounds."""

from __future__ import annotations

from typing import Any

from align3d.engine.describe import ParamDescription

TRUE = frozenset({"yes", "true", "y", "1", "on"})
FALSE = frozenset({"no", "false", "n", "0", "off"})


def parse_param(param: ParamDescription, text: str) -> Any:
    """``text`` as a value of ``param``; ValueError naming the parameter and what it takes."""
    value = text.strip()
    if param.type == "boolean":
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        raise ValueError(f"{param.name}: {text!r} is not yes or no (true/false, 1/0)")
    if param.type in ("integer", "number"):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{param.name}: {text!r} is not a number") from None
        if param.type == "integer":
            if not number.is_integer():
                raise ValueError(f"{param.name}: {text!r} is not a whole number")
            return int(number)
        return number
    if param.choices and value not in param.choices:
        raise ValueError(f"{param.name}: {text!r} is not one of {', '.join(param.choices)}")
    return value
