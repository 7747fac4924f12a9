"""The ``align3d`` command line: the runtime's commands (``run``, ``validate``, ``schema``,
``describe``) and the commands that installed jobs add (entry-point group ``align3d.commands``:
``align``, ``demo``, ...).

Exit codes: :mod:`align3d.engine.exit_codes`. ``--help``, ``validate``, ``schema`` and ``describe`` load
no compiled kernel and no plotting library, so they answer at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from align3d.engine.alignment.errors import InvalidMapError
from align3d.engine.cli_options import (
    Command,
    InvalidInput,
    add_parallel_options,
    backend_of,
)
from align3d.engine.exit_codes import MEANING, Exit
from align3d.engine.interrupts import lost_interrupts_resent
from align3d.engine.issues import InvalidSpec, Issue
from align3d.engine.jobdef import JobDefinition, JobInputError, discover_jobs
from align3d.engine.locations import as_written
from align3d.engine.logs import configure_cli_logging
from align3d.engine.parallel.backend import SchedulerUnreachable, TaskFailed
from align3d.engine.store import OutputBusy, OutputExists, OutputWriteError, storage_error
from align3d.engine.suggest import unknown_name
from align3d.slots.errors import MapReadError, ParticleFileError

logger = logging.getLogger(__name__)


def _print_issues(issues: list[Issue]) -> None:
    for issue in issues:
        print(str(issue), file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a job spec or workflow, its input files too (--no-files: the document alone);
    exit 0 when valid, 2 with every problem listed."""
    from align3d.engine.executor import load_document, preflight_document, validate_document

    spec = Path(args.spec)
    data = load_document(spec)
    resolution = validate_document(data, discover_jobs())
    if isinstance(resolution, list):
        issues = resolution
    else:
        issues = list(resolution.issues)
        if not args.no_files:
            issues += preflight_document(resolution, spec.absolute().parent)[0]
    issues = as_written(issues, data)
    if args.json:
        print(json.dumps([i.model_dump() for i in issues], indent=2))
    else:
        _print_issues(issues)
    if any(i.level == "error" for i in issues):
        return Exit.INVALID_INPUT
    if not args.json:
        checked = "document" if args.no_files else "document and input files"
        print(f"{args.spec}: valid ({checked})", file=sys.stderr)
    return Exit.OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run a job spec (into --out) or a workflow (into --out/JOB for each job)."""
    from align3d.engine.executor import load_document, run_document

    spec = Path(args.spec)
    data = load_document(spec)
    try:
        manifests = run_document(
            data,
            spec.absolute().parent,
            Path(args.out),
            discover_jobs(),
            args.force,
            args.quiet,
            backend_of(args),
            command=sys.argv,
        )
    except InvalidSpec as exc:  # reported at the paths of the file the user wrote
        raise InvalidSpec(as_written(exc.issues, data)) from exc
    for name, manifest in manifests.items():
        print(f"{name}: {manifest.job_type} complete", file=sys.stderr)
    return Exit.OK


def cmd_version(args: argparse.Namespace) -> int:
    """Print align3d's version, the Python running it and the versions of the libraries it
    uses (for a bug report)."""
    from align3d.engine.version import versions_text

    print(versions_text())
    return Exit.OK


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema (Draft 2020-12) of a document: by default of any document align3d
    reads (a job spec or a workflow); or write every schema to --out as NAME.schema.json."""
    from align3d.engine.json_schema import schema, write_schemas

    registry = discover_jobs()
    if args.out:
        for path in write_schemas(Path(args.out), registry):
            print(path)
        return Exit.OK
    print(json.dumps(schema(args.name, registry), indent=2))
    return Exit.OK


def _job(registry: dict[str, JobDefinition], name: str) -> JobDefinition:
    if name not in registry:
        raise InvalidInput(unknown_name("job", name, registry))
    return registry[name]


def cmd_describe(args: argparse.Namespace) -> int:
    """Print a job's parameters (name, type, default, limits, help) and its input and output
    slots (per-volume templates too, with when each appears); --json for programs."""
    from align3d.engine.describe import bounds_text, describe

    registry = discover_jobs()
    names = [args.job] if args.job else sorted(registry)
    descriptions = [describe(_job(registry, name)) for name in names]
    if args.json:
        documents = [d.model_dump(mode="json") for d in descriptions]
        print(json.dumps(documents[0] if args.job else documents, indent=2))
        return Exit.OK
    for description in descriptions:
        print(f"{description.job}: {description.description}\n\nparameters:")
        for p in description.params:
            bounds = bounds_text(p)
            choices = " or ".join(p.choices or ())
            limits = "".join(f", {x}" for x in (bounds, choices) if x)
            default = "required" if p.required else f"default {json.dumps(p.default)}"
            print(f"  {p.name} ({p.type}, {default}{limits}): {p.help}")
        for title, slots in (("inputs", description.inputs), ("outputs", description.outputs)):
            print(f"\n{title}:")
            for s in slots:
                extra = ", ".join(
                    x
                    for x in ("required" if s.required else "", "multiple" if s.multiple else "")
                    if x
                )
                print(f"  {s.name} ({s.kind}{', ' + extra if extra else ''}; {s.when}): {s.help}")
        print()
    return Exit.OK


def job_commands() -> list[Command]:
    """The commands installed jobs add (entry-point group ``align3d.commands``)."""
    return [
        ep.load() for ep in sorted(entry_points(group="align3d.commands"), key=lambda e: e.name)
    ]


def build_parser() -> argparse.ArgumentParser:
    codes = ", ".join(f"{int(code)} {code.name.lower().replace('_', ' ')}" for code in Exit)
    parser = argparse.ArgumentParser(
        prog="align3d",
        description="Align 3D maps: rotation, shift and hand of maps onto a reference.",
        epilog=f"Exit codes: {codes}.",
    )
    parser.add_argument(
        "--version", action="store_true", help="print the versions (as align3d version) and exit"
    )
    # what main reads of every command; a job's command sets its own (Command's hooks)
    parser.set_defaults(func=None, needs_kernels=False, precheck=None, quiet=False)
    sub = parser.add_subparsers(dest="command")

    version_cmd = sub.add_parser("version", help=cmd_version.__doc__)
    version_cmd.set_defaults(func=cmd_version)

    run = sub.add_parser("run", help=cmd_run.__doc__)
    run.add_argument("spec", help="job spec or workflow (JSON)")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument(
        "--force",
        action="store_true",
        help="replace completed job folders that hold other results (by default they are "
        "refused, before any work; one of the same request with unchanged inputs is reused)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    add_parallel_options(run)
    run.set_defaults(func=cmd_run, needs_kernels=True)

    validate = sub.add_parser("validate", help=cmd_validate.__doc__)
    validate.add_argument("spec", help="job spec or workflow (JSON)")
    validate.add_argument("--json", action="store_true", help="issues as JSON on stdout")
    validate.add_argument(
        "--no-files", action="store_true", help="check the document only, not its input files"
    )
    validate.set_defaults(func=cmd_validate)

    schema_cmd = sub.add_parser("schema", help=cmd_schema.__doc__)
    schema_cmd.add_argument(
        "name",
        nargs="?",
        default="document",
        choices=("document", "job_spec", "workflow", "result_manifest"),
        help="which document's schema",
    )
    schema_cmd.add_argument("--out", help="folder to write every NAME.schema.json into")
    schema_cmd.set_defaults(func=cmd_schema)

    describe_cmd = sub.add_parser("describe", help=cmd_describe.__doc__)
    describe_cmd.add_argument("job", nargs="?", help="job type (default: every installed job)")
    describe_cmd.add_argument("--json", action="store_true", help="as JSON")
    describe_cmd.set_defaults(func=cmd_describe)

    for command in job_commands():
        parser_of = sub.add_parser(
            command.name,
            help=command.help,
            description=command.help,
        )
        command.add_arguments(parser_of)
        parser_of.set_defaults(
            func=command.run, needs_kernels=command.needs_kernels, precheck=command.precheck
        )
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _silence_standard_streams() -> None:
    """Point stdout and stderr at the null device (their reader is gone: a later flush would
    fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):  # not a real file (pytest's capture): nothing to point
            pass
    os.close(devnull)


@dataclass(frozen=True)
class FailureLine:
    """A failure said in one line: the exceptions, the words before their message, the exit
    code."""

    kinds: tuple[type[Exception], ...]
    prefix: str
    code: Exit


FAILURE_LINES = (
    FailureLine((OutputBusy,), "busy: ", Exit.BUSY),
    FailureLine((TaskFailed,), "failed: ", Exit.TASK_FAILED),
    FailureLine((SchedulerUnreachable,), "", Exit.SCHEDULER_UNREACHABLE),
    FailureLine((OutputWriteError,), "cannot write the outputs: ", Exit.CANNOT_WRITE),
    FailureLine(
        (InvalidInput, MapReadError, InvalidMapError, JobInputError, ParticleFileError),
        "error: ",
        Exit.INVALID_INPUT,
    ),
)
PLAIN_FAILURES = tuple(kind for line in FAILURE_LINES for kind in line.kinds)


def _failure_line(exc: Exception) -> FailureLine:
    return next(line for line in FAILURE_LINES if isinstance(exc, line.kinds))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        args.func = cmd_version
    elif args.command is None:  # a bare ``align3d``: what it can do
        args.func = lambda _: parser.print_help() or Exit.OK
    configure_cli_logging(args.quiet)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with lost_interrupts_resent():  # an interrupt is never lost in a finaliser or callback
            if args.precheck is not None:  # e.g. the output paths, before any work
                args.precheck(args)
            if args.needs_kernels:
                from align3d.engine.alignment.warmup import ensure_compiled

                ensure_compiled(lambda line: print(f"align3d: {line}", file=sys.stderr, flush=True))
            return int(args.func(args))
    except KeyboardInterrupt as exc:
        why = str(exc) or "SIGINT"
        print(
            f"align3d: interrupted ({why}); unfinished job folders were removed, completed ones "
            "are kept: run the same command again to finish",
            file=sys.stderr,
        )
        return Exit.INTERRUPTED
    except BrokenPipeError:  # the reader of the output went away (``align3d describe | head``)
        _silence_standard_streams()
        return Exit.INTERRUPTED
    except PLAIN_FAILURES as exc:
        line = _failure_line(exc)
        print(f"align3d: {line.prefix}{exc}", file=sys.stderr)
        return line.code
    except OutputExists as exc:
        print(Issue(code="output_exists", message=str(exc)).cli_line(), file=sys.stderr)
        return Exit.INVALID_INPUT
    except InvalidSpec as exc:
        _print_issues(exc.issues)
        print(f"align3d: invalid input: {len(exc.issues)} problem(s)", file=sys.stderr)
        return Exit.INVALID_INPUT
    except OSError as exc:  # a write the job could not wrap (e.g. the align command's output)
        storage = storage_error(exc, Path(exc.filename).parent if exc.filename else Path.cwd())
        if storage is None:
            traceback.print_exc()
            print(
                "align3d: internal error (a bug); please report the traceback above",
                file=sys.stderr,
            )
            return Exit.INTERNAL_ERROR
        print(f"align3d: cannot write the outputs: {storage}", file=sys.stderr)
        return Exit.CANNOT_WRITE
    except Exception:  # a bug: say so and show where
        traceback.print_exc()
        print("align3d: internal error (a bug); please report the traceback above", file=sys.stderr)
        return Exit.INTERNAL_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code_table() -> str:
    """The README's table of exit codes (generated from :mod:`align3d.engine.exit_codes`)."""
    rows = ["| code | meaning |", "|---|---|"]
    rows += [
        f"| {int(code)} | {MEANING[code]} |" for code in sorted(Exit, key=lambda c: (c == 1, c))
    ]
    return "\n".join(rows)


def console() -> None:
    """The ``align3d`` console command: :func:`main`, then a quick exit
    (:func:`align3d.engine.process_end.exit_process`)."""
    from align3d.engine.process_end import exit_process

    exit_process(main())


if __name__ == "__main__":
    console()
