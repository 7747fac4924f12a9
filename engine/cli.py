"""The ``align3d`` command line.

Exit codes: 0 success; 2 invalid input (bad arguments, documents, files or parameters, or an
output folder holding another completed job: every problem is named); 3 the output folder is
being written by another run; 4 a task failed on its worker (a Dask worker died and the retries
ran out; nothing partial is kept); 130 interrupted (SIGINT or SIGTERM; no partial output is left in
place, and the same command completes the work); 1 internal error (a bug: the traceback is
printed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from pathlib import Path

from pydantic import ValidationError

from engine.alignment.align import InvalidMapError
from engine.alignment.geometry import RigidTransform
from engine.alignment.params import AlignmentParams
from engine.executor import (
    InvalidSpec,
    OutputBusy,
    OutputExists,
    load_document,
    run_document,
    validate_document,
)
from engine.issues import Issue
from engine.jobdef import JobInputError, discover_jobs
from engine.parallel.backend import SCHEDULER_ENV, Backend, TaskFailed
from jobs.align_3d_maps.volume import align_files
from schemas.export import export_schemas, write_schemas
from slots.mrc import MapReadError, write_map

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_INVALID_INPUT = 2
EXIT_BUSY = 3
EXIT_TASK_FAILED = 4
EXIT_INTERRUPTED = 130


class InvalidInput(Exception):
    """A user mistake: reported as one clear line, with exit code 2."""


_OPTION = {
    "max_shift_A": "--max-shift",
    "max_search_angle_deg": "--max-angle",
    "lowpass_resolution_A": "--lowpass",
    "check_both_chiralities": "--no-hand-check",
}


def _params(args: argparse.Namespace) -> AlignmentParams:
    try:
        return AlignmentParams(
            max_shift_A=args.max_shift,
            max_search_angle_deg=args.max_angle,
            lowpass_resolution_A=args.lowpass,
            check_both_chiralities=not args.no_hand_check,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{_OPTION[str(e['loc'][0])]}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid parameter: {problems}") from exc


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    defaults = AlignmentParams()
    parser.add_argument(
        "--max-shift", type=float, default=defaults.max_shift_A, help="maximum shift in Å"
    )
    parser.add_argument(
        "--max-angle",
        type=float,
        default=defaults.max_search_angle_deg,
        help="maximum search angle in degrees (180 = all rotations)",
    )
    parser.add_argument(
        "--lowpass",
        type=float,
        default=defaults.lowpass_resolution_A,
        help="low-pass resolution in Å applied before aligning",
    )
    parser.add_argument("--no-hand-check", action="store_true", help="do not try the mirrored hand")


def _add_parallel_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        help="local processes for the volumes of a job (default: as many as cores and memory "
        "allow; 1 = serial)",
    )
    parser.add_argument(
        "--scheduler",
        help=f"Dask scheduler address (tcp://HOST:PORT, or 'local' for a local cluster); "
        f"default ${SCHEDULER_ENV}",
    )


def _print_summary(summary: dict[str, object]) -> None:
    print(json.dumps(summary, indent=2))


def cmd_align(args: argparse.Namespace) -> int:
    """Align one map onto a reference and write the aligned map."""
    outcome = align_files(
        Path(args.reference),
        Path(args.moving),
        Path(args.out),
        _params(args),
        reference_voxel_A=args.ref_voxel,
        moving_voxel_A=args.mov_voxel,
    )
    summary = outcome.summary()
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary)
    return EXIT_OK


def _print_issues(issues: list[Issue]) -> None:
    for issue in issues:
        print(str(issue), file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a job spec or workflow: exit 0 when valid, 2 with every problem listed."""
    data = load_document(Path(args.spec))
    resolution = validate_document(data, discover_jobs())
    issues = resolution if isinstance(resolution, list) else resolution.issues
    if args.json:
        print(json.dumps([i.model_dump() for i in issues], indent=2))
    else:
        _print_issues(issues)
    if any(i.level == "error" for i in issues):
        return EXIT_INVALID_INPUT
    if not args.json:
        print(f"{args.spec}: valid", file=sys.stderr)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run a job spec (into --out) or a workflow (into --out/JOB for each job)."""
    spec = Path(args.spec)
    data = load_document(spec)
    manifests = run_document(
        data,
        spec.resolve().parent,
        Path(args.out),
        discover_jobs(),
        args.force,
        args.quiet,
        Backend.from_options(args.workers, args.scheduler),
    )
    for name, manifest in manifests.items():
        print(f"{name}: {manifest.job_type} complete", file=sys.stderr)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schemas of the documents, or write them to --out as NAME.schema.json."""
    schemas = export_schemas()
    if args.out:
        for path in write_schemas(Path(args.out)):
            print(path)
    else:
        print(json.dumps(schemas, indent=2))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the built-in example as a workflow: import two maps, align one onto the other."""
    from jobs.align_3d_maps.demo import DEMO_TRUTH, demo_maps

    out = Path(args.out)
    (reference, p_ref), (moving, p_mov) = demo_maps()
    write_map(out / "inputs" / "reference.mrc", reference, p_ref)
    write_map(out / "inputs" / "moving.mrc", moving, p_mov)
    params = _params(args)
    workflow = {
        "jobs": {
            "reference": {"job": "import_volume", "params": {"map": "inputs/reference.mrc"}},
            "moving": {"job": "import_volume", "params": {"map": "inputs/moving.mrc"}},
            "align": {
                "job": "align_3d_maps",
                "params": {
                    "max_shift_A": params.max_shift_A,
                    "max_search_angle_deg": params.max_search_angle_deg,
                    "lowpass_resolution_A": params.lowpass_resolution_A,
                    "check_both_chiralities": params.check_both_chiralities,
                },
                "inputs": {
                    "reference_map": {"from": "reference.volume"},
                    "maps_to_align": [{"from": "moving.volume"}],
                },
            },
        }
    }
    spec = out / "workflow.json"
    spec.write_text(json.dumps(workflow, indent=2) + "\n")
    manifests = run_document(
        workflow,
        out,
        out / "run",
        discover_jobs(),
        args.force,
        args.quiet,
        Backend.from_options(args.workers, args.scheduler),
    )
    record = manifests["align"].alignments[0]
    found = RigidTransform.from_matrix(record.matrix)
    summary = {
        "workflow": str(spec),
        "result": str(out / "run" / "align" / "result.json"),
        "aligned_map": str(
            out / "run" / "align" / manifests["align"].outputs["aligned_volume_1"]["map"]
        ),
        "alignment": record.model_dump(),
        "truth": {
            "matrix": DEMO_TRUTH.matrix.round(8).tolist(),
            "rotation_error_deg": round(found.rotation_error_deg(DEMO_TRUTH), 4),
            "shift_error_A": round(found.shift_error_A(DEMO_TRUTH), 4),
            "hand_right": found.flip == DEMO_TRUTH.flip,
        },
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="align3d",
        description="Align 3D maps: rotation, shift and hand of maps onto a reference.",
        epilog="Exit codes: 0 success, 2 invalid input, 3 output folder busy, 4 a worker failed, "
        "130 interrupted, 1 internal error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help=cmd_run.__doc__)
    run.add_argument("spec", help="job spec or workflow (JSON)")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--force", action="store_true", help="replace completed job folders")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_parallel_options(run)
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help=cmd_validate.__doc__)
    validate.add_argument("spec", help="job spec or workflow (JSON)")
    validate.add_argument("--json", action="store_true", help="issues as JSON on stdout")
    validate.set_defaults(func=cmd_validate)

    schema = sub.add_parser("schema", help=cmd_schema.__doc__)
    schema.add_argument("--out", help="folder to write NAME.schema.json files into")
    schema.set_defaults(func=cmd_schema)

    demo = sub.add_parser("demo", help=cmd_demo.__doc__)
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--force", action="store_true", help="replace a previous demo run")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_parallel_options(demo)
    _add_search_options(demo)
    demo.set_defaults(func=cmd_demo)

    align = sub.add_parser("align", help=cmd_align.__doc__)
    align.add_argument("reference", help="reference map (MRC)")
    align.add_argument("moving", help="map to align (MRC)")
    align.add_argument("--out", required=True, help="aligned map to write (MRC)")
    align.add_argument("--json", help="also write the summary to this JSON file")
    align.add_argument("--ref-voxel", type=float, help="override the reference voxel size (Å)")
    align.add_argument("--mov-voxel", type=float, help="override the moving map voxel size (Å)")
    _add_search_options(align)
    align.set_defaults(func=cmd_align)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args))
    except KeyboardInterrupt as exc:
        why = str(exc) or "SIGINT"
        print(
            f"align3d: interrupted ({why}); unfinished job folders were removed, completed ones "
            "are kept: run the same command again to finish",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except OutputBusy as exc:
        print(f"align3d: busy: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except TaskFailed as exc:
        print(f"align3d: failed: {exc}", file=sys.stderr)
        return EXIT_TASK_FAILED
    except InvalidSpec as exc:
        _print_issues(exc.issues)
        print(f"align3d: invalid input: {len(exc.issues)} problem(s)", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except (InvalidInput, MapReadError, InvalidMapError, JobInputError, OutputExists) as exc:
        print(f"align3d: error: {exc}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except Exception:  # a bug: say so and show where
        traceback.print_exc()
        print("align3d: internal error (a bug); please report the traceback above", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
