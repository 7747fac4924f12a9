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

from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.cli_options import (
    InvalidInput,
    add_model_options,
    add_parallel_options,
    backend_of,
    model_from_options,
)
from align3d.engine.exit_codes import Exit


def moved_mask_path(out: Path) -> Path:
    """Where ``align --mask`` writes the moved mask by default: beside the aligned map, its
    name with ``_mask`` (``aligned.mrc`` -> ``aligned_mask.mrc``)."""
    return out.with_name(f"{out.stem}_mask{out.suffix or '.mrc'}")


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
        parser.add_argument(
            "--ref-voxel", type=float, help="reference voxel size in Å (default: the header's)"
        )
        parser.add_argument(
            "--mov-voxel", type=float, help="moving map voxel size in Å (default: the header's)"
        )
        parser.add_argument(
            "--mask",
            help="mask of the moving map (MRC on its grid, values in [0, 1]): restricts the "
            "search and is moved with the map (default: none)",
        )
        parser.add_argument(
            "--mask-out",
            help="where the moved mask goes (default: the aligned map's name with _mask, "
            "e.g. aligned_mask.mrc)",
        )
        parser.add_argument(
            "--ref-mask",
            help="mask of the reference (MRC on its grid, values in [0, 1]): restricts the "
            "search (default: none)",
        )
        add_model_options(parser, AlignmentParams)

    def run(self, args: argparse.Namespace) -> int:
        from align3d.jobs.align_3d_maps.early_reads import EarlyReads

        if args.mask_out and not args.mask:
            raise InvalidInput("--mask-out needs --mask (the mask to move)")
        params = model_from_options(args, AlignmentParams)
        # both maps are read and transformed while the numerical stack loads (below); a
        # reference mask changes what is kept of the reference, which is then read in turn
        early = None
        if not args.ref_mask:
            early = EarlyReads(
                Path(args.reference), args.ref_voxel, Path(args.moving), args.mov_voxel
            )

        from align3d.jobs.align_3d_maps.align_pair import align_files
        from align3d.jobs.align_3d_maps.record import alignment_record
        from align3d.jobs.align_3d_maps.warnings import volume_label

        out = Path(args.out)
        mask_out = None
        if args.mask:
            mask_out = Path(args.mask_out) if args.mask_out else moved_mask_path(out)
        outcome = align_files(
            Path(args.reference),
            Path(args.moving),
            out,
            params,
            reference_voxel_A=args.ref_voxel,
            moving_voxel_A=args.mov_voxel,
            mask_path=Path(args.mask) if args.mask else None,
            moved_mask_path=mask_out,
            reference_mask_path=Path(args.ref_mask) if args.ref_mask else None,
            early=early,
        )
        # the record of a job's volume 1 (the numbers and warnings result.json would give),
        # its warnings without the volume's name: there is one map
        record = alignment_record(1, outcome, params.symmetry, outcome.timings_s["total"])
        warnings = [w.removeprefix(volume_label(1)) for w in record.warnings]
        summary = {
            "aligned_map": str(outcome.files["map"]),
            **({"aligned_mask": str(outcome.files["mask"])} if "mask" in outcome.files else {}),
            **record.model_dump(mode="json", exclude={"index"}),
            "warnings": warnings,
            "timings_s": {k: round(v, 4) for k, v in outcome.timings_s.items()},
        }
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary, indent=2))
        for warning in warnings:
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
        from align3d.jobs.align_3d_maps.demo import run_demo

        params = model_from_options(args, AlignmentParams)
        summary = run_demo(Path(args.out), params, args.force, args.quiet, backend_of(args))
        print(json.dumps(summary, indent=2))
        return Exit.OK


ALIGN = AlignCommand()
DEMO = DemoCommand()
