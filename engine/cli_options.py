"""Command-line options shared by the runtime's commands and the jobs' own commands, and
options generated from a parameter model (one declaration: name, default, limits, help)."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from align3d.engine.describe import bounds_text, describe_param
from align3d.engine.parallel.backend import SCHEDULER_ENV, Backend

DEFAULT_SCHEDULER_TIMEOUT_S = 10.0


class InvalidInput(Exception):
    """A user mistake on the command line: reported as one clear line, with exit code 2."""


class Command(Protocol):
    """A subcommand a job package adds to ``align3d`` (entry-point group ``align3d.commands``):
    every member the command line uses (:class:`CommandDefaults` gives the optional ones their
    defaults)."""

    name: str
    help: str
    needs_kernels: bool
    """Whether it runs compiled kernels (compiled first, once per install, behind a notice)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def precheck(self, args: argparse.Namespace) -> None:
        """Checks (such as of its output paths) that run before anything else, the kernels'
        compilation included."""

    def run(self, args: argparse.Namespace) -> int: ...


class CommandDefaults:
    """The defaults of a :class:`Command`'s optional members: no compiled kernels, no
    precheck. A command derives from it and overrides what it has."""

    needs_kernels: bool = False

    def precheck(self, args: argparse.Namespace) -> None:
        """Checks before anything else (default: none)."""


def add_parallel_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        help="local processes for the volumes of a job (default: as many as the cores and the "
        "memory this process may use allow; 1 = serial)",
    )
    parser.add_argument(
        "--scheduler",
        help=f"Dask scheduler address (tcp://HOST:PORT, or 'local' for a local cluster; "
        f"default ${SCHEDULER_ENV})",
    )
    parser.add_argument(
        "--scheduler-timeout",
        type=float,
        default=DEFAULT_SCHEDULER_TIMEOUT_S,
        metavar="S",
        help="seconds to wait for the Dask scheduler to answer (default: %(default)s)",
    )


def backend_of(args: argparse.Namespace) -> Backend:
    if args.workers is not None and args.workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {args.workers}")
    if args.scheduler_timeout <= 0:
        raise InvalidInput(f"--scheduler-timeout must be positive, got {args.scheduler_timeout}")
    return Backend.from_options(args.workers, args.scheduler, args.scheduler_timeout)


def _negated(info: Any) -> str:
    """What a negating flag does, in words (its declaration's ``negated``), or ''."""
    return next((str(getattr(m, "negated", "")) for m in info.metadata if hasattr(m, "flag")), "")


def _flag(name: str, info: Any) -> tuple[str, bool]:
    for item in info.metadata:
        if hasattr(item, "flag"):
            return item.flag, bool(getattr(item, "negate", False))
    return "--" + name.replace("_", "-"), False


def add_model_options(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    include: Collection[str] | None = None,
) -> None:
    """One option per field of ``model`` (or of those named in ``include``): its flag, type and
    choices, and a help text made of the field's description, its default (``(default: X)``,
    from the declaration, never retyped) and its limits."""
    for name, info in model.model_fields.items():
        if include is not None and name not in include:
            continue
        flag, negate = _flag(name, info)
        described = describe_param(name, info)
        bounds = bounds_text(described)
        limits = f"; {bounds}" if bounds else ""
        if described.type == "boolean":
            action = "store_false" if negate else "store_true"
            state = "on" if info.default else "off"
            text = f"{info.description} (default: {state}; {flag} turns it {'off' if negate else 'on'})"
            said = _negated(info)
            if negate and said:
                text = (
                    f"{said}: turns {name} off. Without the flag (default: on): {info.description}"
                )
            parser.add_argument(flag, dest=name, action=action, default=info.default, help=text)
            continue
        kind = {"number": float, "integer": int}.get(described.type, str)
        parser.add_argument(
            flag,
            dest=name,
            type=kind,
            default=info.default,
            choices=described.choices,
            help=f"{info.description} (default: %(default)s{limits})",
        )


def model_from_options(args: argparse.Namespace, model: type[BaseModel]) -> Any:
    """The parameter model from the options :func:`add_model_options` added; bad values become
    one :class:`InvalidInput` naming each option."""
    values = {name: getattr(args, name) for name in model.model_fields}
    try:
        return model(**values)
    except ValidationError as exc:
        flags = {name: _flag(name, info)[0] for name, info in model.model_fields.items()}
        problems = "; ".join(
            f"{flags.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"invalid parameter: {problems}") from exc
