"""``align3d symmetry MAP``: the point group of a map (C1-C12, D2-D12, T, O, I), its axes, a
score per candidate group, and the move that puts the map in RELION's orientation
(:mod:`align3d.engine.alignment.point_group_search`); ``--out`` writes the map so moved.

Numerics are imported when the command runs, so that ``align3d --help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from align3d.engine.cli_options import CommandDefaults, InvalidInput
from align3d.engine.exit_codes import Exit
from align3d.engine.outputs import check_distinct, check_output_file
from align3d.schemas.documents import DetectedSymmetry, SymmetryAxis, SymmetryCandidate
from align3d.slots.atomic import atomic_write

if TYPE_CHECKING:
    from align3d.engine.alignment.point_group_search import PointGroupResult
    from align3d.slots.mrc import MapData


class SymmetryReport(DetectedSymmetry):
    """What ``align3d symmetry --json`` writes: the result, the map and the moved map."""

    map: str
    moved_map: str | None = None


def detected_symmetry(result: PointGroupResult) -> DetectedSymmetry:
    """The document of a result (``details.detected_symmetry`` of the align job, and the
    command's JSON)."""

    def axes(items: tuple) -> list[SymmetryAxis]:
        return [
            SymmetryAxis(
                fold=a.fold, direction=[round(float(v), 6) for v in a.direction], score=a.score
            )
            for a in items
        ]

    return DetectedSymmetry(
        point_group=result.point_group,
        axes=axes(result.found.axes),
        random_level=result.random_level,
        centre_A=[float(v) for v in result.centre_A],
        to_relion_matrix=[[float(v) for v in row] for row in result.to_relion.matrix],
        candidates=[
            SymmetryCandidate(
                name=c.name,
                order=c.order,
                score=c.score,
                threshold=c.threshold,
                holds=c.holds,
                axes=axes(c.axes),
            )
            for c in result.candidates
        ],
    )


def report(path: Path, result: PointGroupResult, moved: Path | None) -> SymmetryReport:
    """The command's JSON document of a result."""
    found = detected_symmetry(result).model_dump()
    return SymmetryReport(**found, map=str(path), moved_map=None if moved is None else str(moved))


def summary_lines(doc: DetectedSymmetry) -> list[str]:
    """The result in words (the command's output, and the align job's log)."""
    return [
        f"point group: {doc.point_group}",
        f"random rotations score {doc.random_level:.3f} (median)",
        "axes (map frame):",
        *(
            f"  {a.fold}-fold ({', '.join(f'{v:+.4f}' for v in a.direction)}) score {a.score:.3f}"
            for a in doc.axes
        ),
        f"symmetry centre: ({', '.join(f'{v:.2f}' for v in doc.centre_A)}) Å from the box centre",
        "move to RELION's orientation, 4x4 [[R, t], [0, 1]] (Å):",
        *(f"  {'  '.join(f'{v:+.6f}' for v in row)}" for row in doc.to_relion_matrix),
        "candidates (score, threshold; * holds):",
        *(
            f"  {c.name:>4} order {c.order:>2}  {c.score:+.3f}  {c.threshold:.3f}"
            f"{' *' if c.holds else ''}"
            for c in doc.candidates
        ),
    ]


def summary_text(doc: SymmetryReport) -> str:
    """The report in words (what the command prints without ``--json -``)."""
    lines = summary_lines(doc)
    if doc.moved_map:
        lines.append(f"moved map: {doc.moved_map}")
    return "\n".join(lines)


@dataclass(frozen=True)
class SymmetryCommand(CommandDefaults):
    name: str = "symmetry"
    help: str = (
        "Find a map's point group (C1-C12, D2-D12, T, O, I), its axes, and the move into "
        "RELION's orientation of it."
    )
    needs_kernels: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("map", help="the map (MRC)")
        parser.add_argument(
            "--json",
            help="write the result as JSON to this file ('-': to stdout, instead of words)",
        )
        parser.add_argument(
            "--out",
            metavar="MOVED.mrc",
            help="also write the map moved into RELION's orientation of its group (same box)",
        )
        parser.add_argument("--voxel", type=float, help="voxel size in Å (default: the header's)")
        parser.add_argument(
            "--force", action="store_true", help="replace outputs that exist (default: refuse)"
        )

    def precheck(self, args: argparse.Namespace) -> None:
        """The options and output paths, before any work."""
        if args.voxel is not None and not args.voxel > 0:
            raise InvalidInput(f"--voxel must be positive, got {args.voxel}")
        outputs = {}
        if args.out:
            if not args.out.lower().endswith(".mrc"):
                raise InvalidInput(f"--out {args.out}: expected a .mrc file (a map)")
            outputs["--out"] = Path(args.out)
        if args.json and args.json != "-":
            outputs["--json"] = Path(args.json)
        check_distinct(outputs)
        for option, path in outputs.items():
            check_output_file(path, option, args.force, [Path(args.map)])

    def run(self, args: argparse.Namespace) -> int:
        from align3d.engine.alignment.point_group_search import find_point_group
        from align3d.slots.mrc import read_map

        self.precheck(args)
        source = Path(args.map)
        data = read_map(source, args.voxel)
        try:
            result = find_point_group(data.data, data.voxel_size_A)
        except ValueError as exc:  # a map with nothing to find a symmetry of
            raise InvalidInput(f"{source}: {exc}; give the map itself, not a mask") from exc
        out = Path(args.out) if args.out else None
        if out is not None:
            _write_moved(out, data, result)
        doc = report(source, result, out)
        text = doc.model_dump_json(indent=2) + "\n"
        if args.json and args.json != "-":
            atomic_write(Path(args.json), lambda path: path.write_text(text))
        if args.json == "-":
            sys.stdout.write(text)
        else:
            print(summary_text(doc))
        return Exit.OK


def _write_moved(out: Path, data: MapData, result: PointGroupResult) -> None:
    """The map moved into RELION's orientation, on its own grid and header."""
    from align3d.engine.alignment.resample import GridMove, move_map
    from align3d.jobs.align_3d_maps.provenance import map_labels
    from align3d.slots.mrc import write_map

    move = GridMove(
        transform=result.to_relion,
        in_voxel_A=data.voxel_size_A,
        out_shape=data.data.shape,  # type: ignore[arg-type]
        out_voxel_A=data.voxel_size_A,
    )
    moved = move_map(data.data, move)
    labels = map_labels(0, f"{result.point_group} frame", result.to_relion, "symmetry")
    write_map(out, moved, data.voxel_size_A, data.header, labels)


SYMMETRY = SymmetryCommand()
