"""The ``align3d`` command line.

Exit codes: 0 success; 2 invalid input (bad arguments, unreadable or unusable files: the message
names the culprit); 1 internal error (a bug: please report it with the traceback printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from pydantic import ValidationError

from engine.alignment import AlignmentParams, InvalidMapError
from engine.pairwise import align_files
from slots.mrc import MapReadError, write_map

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_INVALID_INPUT = 2


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


def cmd_demo(args: argparse.Namespace) -> int:
    """Align the built-in example (a mirrored, rotated, shifted copy on another grid)."""
    from engine.synthetic import DEMO_TRUTH, demo_maps

    out = Path(args.out)
    (reference, p_ref), (moving, p_mov) = demo_maps()
    ref_path = write_map(out / "inputs" / "reference.mrc", reference, p_ref)
    mov_path = write_map(out / "inputs" / "moving.mrc", moving, p_mov)
    outcome = align_files(ref_path, mov_path, out / "aligned_map.mrc", _params(args))
    found = outcome.alignment.transform
    summary = outcome.summary()
    summary["truth"] = {
        "rotation": DEMO_TRUTH.rotation.round(8).tolist(),
        "shift_A": DEMO_TRUTH.shift_A.tolist(),
        "hand_flipped": DEMO_TRUTH.flip,
        "rotation_error_deg": round(found.rotation_error_deg(DEMO_TRUTH), 4),
        "shift_error_A": round(found.shift_error_A(DEMO_TRUTH), 4),
        "hand_right": found.flip == DEMO_TRUTH.flip,
    }
    (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary)
    print(f"demo: wrote {out / 'aligned_map.mrc'} and {out / 'result.json'}", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="align3d",
        description="Align 3D maps: rotation, shift and hand of maps onto a reference.",
        epilog="Exit codes: 0 success, 2 invalid input, 1 internal error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help=cmd_demo.__doc__)
    demo.add_argument("--out", required=True, help="output folder")
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (InvalidInput, MapReadError, InvalidMapError) as exc:
        print(f"align3d: error: {exc}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except Exception:  # a bug: say so and show where
        traceback.print_exc()
        print("align3d: internal error (a bug); please report the traceback above", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
