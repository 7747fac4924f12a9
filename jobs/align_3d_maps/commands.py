"""The commands Align 3D Maps adds to ``align3d`` (entry-point group ``align3d.commands``):
``align`` (two map files, no workflow) and ``demo`` (the built-in example as a workflow).

Their options come from the parameter declarations; the numerical work is imported when a
command runs, so that ``align3d --help`` stays quick.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.alignment.params import AlignmentParams
from engine.cli_options import (
    add_model_options,
    add_parallel_options,
    backend_of,
    model_from_options,
)
from engine.exit_codes import Exit


@dataclass(frozen=True)
class AlignCommand:
    name: str = "align"
    help: str = "Align one map onto a reference and write the aligned map (no workflow)."
    needs_kernels: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("reference", help="reference map (MRC)")
        parser.add_argument("moving", help="map to align (MRC)")
        parser.add_argument("--out", required=True, help="aligned map to write (MRC)")
        parser.add_argument("--json", help="also write the summary to this JSON file")
        parser.add_argument("--ref-voxel", type=float, help="reference voxel size in Å (header)")
        parser.add_argument("--mov-voxel", type=float, help="moving map voxel size in Å (header)")
        add_model_options(parser, AlignmentParams)

    def run(self, args: argparse.Namespace) -> int:
        from jobs.align_3d_maps.volume import align_files

        outcome = align_files(
            Path(args.reference),
            Path(args.moving),
            Path(args.out),
            model_from_options(args, AlignmentParams),
            reference_voxel_A=args.ref_voxel,
            moving_voxel_A=args.mov_voxel,
        )
        summary = outcome.summary()
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary, indent=2))
        for warning in summary["warnings"]:
            print(f"align3d: WARNING: {warning}", file=sys.stderr)
        return Exit.OK


@dataclass(frozen=True)
class DemoCommand:
    name: str = "demo"
    help: str = "Run the built-in example as a workflow: import two maps, align one onto the other."
    needs_kernels: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", required=True, help="output folder")
        parser.add_argument("--force", action="store_true", help="replace a previous demo run")
        parser.add_argument("--quiet", action="store_true", help="no progress lines")
        add_parallel_options(parser)
        add_model_options(parser, AlignmentParams)

    def run(self, args: argparse.Namespace) -> int:
        from jobs.align_3d_maps.demo import run_demo

        params = model_from_options(args, AlignmentParams)
        summary = run_demo(Path(args.out), params, args.force, args.quiet, backend_of(args))
        print(json.dumps(summary, indent=2))
        return Exit.OK


ALIGN = AlignCommand()
DEMO = DemoCommand()
