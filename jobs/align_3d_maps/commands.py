"""The commands Align 3D Maps adds to ``align3d`` (entry-point group ``align3d.commands``):
``align`` (two map files, no workflow) and ``demo`` (the built-in example as a workflow).

Their options come from the parameter declarations; the numerical work is imported when a
command runs, so that ``align3d --help`` stays quick.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.cli_options import (
    CommandDefaults,
    InvalidInput,
    add_model_options,
    add_parallel_options,
    backend_of,
    model_from_options,
)
from align3d.engine.exit_codes import Exit
from align3d.engine.outputs import (
    check_distinct,
    check_folder_path,
    check_output_file,
    check_output_folder,
    check_outside,
)
from align3d.jobs.align_3d_maps.params import AlignParams
from align3d.slots.atomic import atomic_write


def moved_mask_path(out: Path) -> Path:
    """Where ``align --mask`` writes the moved mask by default: beside the aligned map, its
    name with ``_mask`` (``aligned.mrc`` -> ``aligned_mask.mrc``)."""
    return out.with_name(f"{out.stem}_mask{out.suffix or '.mrc'}")


@dataclass(frozen=True)
class AlignCommand(CommandDefaults):
    name: str = "align"
    help: str = "Align one map onto a reference and write the aligned map (no workflow)."
    needs_kernels: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("reference", help="reference map (MRC)")
        parser.add_argument("moving", help="map to align (MRC)")
        parser.add_argument("--out", required=True, help="aligned map to write (MRC)")
        parser.add_argument(
            "--json",
            help="write the summary as JSON to this file ('-': to stdout, instead of the "
            "summary in words)",
        )
        parser.add_argument(
            "--report",
            metavar="DIR",
            help="also write the job's report (report.html) and figures (FSC, difference and "
            "overlay slices, the difference map) into this folder",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace outputs that exist (by default an existing output is refused, "
            "before any work)",
        )
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
        add_model_options(parser, AlignParams, include={"output_grid"})

    def precheck(self, args: argparse.Namespace) -> None:
        """The options and every output path, before any work (the kernels' compilation
        included): the overwrite rule, :mod:`align3d.engine.outputs`."""
        if args.mask_out and not args.mask:
            raise InvalidInput("--mask-out needs --mask (the mask to move)")
        model_from_options(args, AlignmentParams)
        _check_outputs(args, Path(args.out), _mask_out(args), _report(args))

    def run(self, args: argparse.Namespace) -> int:
        from align3d.jobs.align_3d_maps.early_reads import EarlyReads

        self.precheck(args)  # again: the paths may have changed while the kernels compiled
        params = model_from_options(args, AlignmentParams)
        out, mask_out, report = Path(args.out), _mask_out(args), _report(args)
        # both maps are read and transformed while the numerical stack loads (below); a
        # reference mask changes what is kept of the reference, which is then read in turn
        early = None
        if not args.ref_mask:
            early = EarlyReads(
                Path(args.reference), args.ref_voxel, Path(args.moving), args.mov_voxel
            )

        from align3d.engine.store import job_folder
        from align3d.jobs.align_3d_maps import align_summary
        from align3d.jobs.align_3d_maps.align_pair import align_files
        from align3d.jobs.align_3d_maps.difference_map import Diagnostics

        files = align_summary.AlignFiles(
            Path(args.reference),
            Path(args.moving),
            args.ref_voxel,
            args.mov_voxel,
            Path(args.mask) if args.mask else None,
            Path(args.ref_mask) if args.ref_mask else None,
        )
        with ExitStack() as stack:
            # the report folder is built in a temporary sibling and appears whole
            staging = None if report is None else stack.enter_context(job_folder(report, True))
            outcome = align_files(
                files.reference,
                files.moving,
                out,
                params,
                reference_voxel_A=args.ref_voxel,
                moving_voxel_A=args.mov_voxel,
                mask_path=files.mask,
                moved_mask_path=mask_out,
                reference_mask_path=files.reference_mask,
                early=early,
                output_grid=args.output_grid,
                diagnostics=None
                if staging is None
                else Diagnostics(
                    align_summary.difference_map_path(staging), params.lowpass_resolution_A
                ),
            )
            record = align_summary.command_record(outcome, params.symmetry)
            if staging is not None:
                job_params = {**params.model_dump(mode="json"), "output_grid": args.output_grid}
                align_summary.write_report(staging, files, outcome, record, job_params)
        summary = align_summary.summary_document(outcome, record, report)
        text = json.dumps(summary, indent=2) + "\n"
        if args.json and args.json != "-":
            atomic_write(Path(args.json), lambda path: path.write_text(text))
        for warning in record.warnings:
            print(f"align3d: WARNING: {warning}", file=sys.stderr)
        if args.json == "-":
            print(text, end="")
        else:
            print(align_summary.summary_text(summary))
        return Exit.OK


def _mask_out(args: argparse.Namespace) -> Path | None:
    """Where the moved mask goes (with ``--mask``)."""
    if not args.mask:
        return None
    return Path(args.mask_out) if args.mask_out else moved_mask_path(Path(args.out))


def _report(args: argparse.Namespace) -> Path | None:
    return Path(args.report) if args.report else None


def _check_outputs(
    args: argparse.Namespace, out: Path, mask_out: Path | None, report: Path | None
) -> None:
    """Every output path of ``align``, before any work (the overwrite rule:
    :mod:`align3d.engine.outputs`)."""
    inputs = [Path(p) for p in (args.reference, args.moving, args.mask, args.ref_mask) if p]
    outputs = {"--out": out}
    if mask_out is not None:
        outputs["--mask-out"] = mask_out
    if args.json and args.json != "-":
        outputs["--json"] = Path(args.json)
    check_distinct(outputs)
    for option, path in outputs.items():
        check_output_file(path, option, args.force, inputs)
    if report is not None:
        check_output_folder(report, "--report", args.force, "report.html")
        check_outside(report, "--report", outputs)


@dataclass(frozen=True)
class DemoCommand(CommandDefaults):
    name: str = "demo"
    help: str = "Run the built-in example as a workflow: import two maps, align one onto the other."
    needs_kernels: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", required=True, help="output folder")
        parser.add_argument("--force", action="store_true", help="replace a previous demo run")
        parser.add_argument("--quiet", action="store_true", help="no progress lines")
        add_parallel_options(parser)
        add_model_options(parser, AlignmentParams)

    def precheck(self, args: argparse.Namespace) -> None:
        """A file at ``--out`` is refused before any work; the demo's job folders follow the
        rule of run (reused, or replaced with --force)."""
        check_folder_path(Path(args.out), "--out")

    def run(self, args: argparse.Namespace) -> int:
        from align3d.jobs.align_3d_maps.demo import run_demo

        params = model_from_options(args, AlignmentParams)
        summary = run_demo(Path(args.out), params, args.force, args.quiet, backend_of(args))
        print(json.dumps(summary, indent=2))
        return Exit.OK


ALIGN = AlignCommand()
DEMO = DemoCommand()
