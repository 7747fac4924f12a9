"""``align3d apply``: move one more map, mask, particle file or atomic model by the transform a
finished Align 3D Maps job found for one of its volumes (read from its ``result.json``).

* ``--map IN.mrc``: moved as the job moves a volume's maps (cubic B-spline, band-limited onto
  a coarser grid) onto the grid of that volume's aligned map, with its header.
* ``--mask IN.mrc``: moved as the job moves masks (trilinear, values stay in [0, 1]).
* ``--particles IN.star|IN.cs``: every particle's pose follows the volume, as the job's
  ``particles_for_map_N`` (:func:`align3d.engine.alignment.poses.move_poses`).
* ``--model IN.cif|IN.pdb``: an atomic model fitted into the volume's original map (atoms in
  Å in that map's frame, voxel 0 at its header origin, as ChimeraX and the PDB read maps) is
  moved into the aligned map's frame (the reference's), by the matrix of
  :mod:`.chimerax` (gemmi reads and writes it: ``pip install 'align3d[models]'``).

Numerics are imported when the command runs, so that ``align3d --help`` stays quick.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from align3d.engine.cli_options import CommandDefaults, InvalidInput
from align3d.engine.exit_codes import Exit
from align3d.engine.outputs import check_output_file

logger = logging.getLogger(__name__)

MAP_SUFFIXES = (".mrc",)
PARTICLE_SUFFIXES = (".star", ".cs")
MODEL_SUFFIXES = (".cif", ".mmcif", ".pdb", ".ent")


@dataclass(frozen=True)
class ApplyCommand(CommandDefaults):
    name: str = "apply"
    help: str = (
        "Move one more map, mask, particle file or atomic model by the transform a finished "
        "align job found for one of its volumes (from its result.json)."
    )
    needs_kernels: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("result", help="the job's result.json (or the job's folder)")
        parser.add_argument(
            "--volume",
            type=int,
            required=True,
            metavar="N",
            help="the volume whose transform to apply (its index in result.json)",
        )
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument(
            "--map",
            metavar="IN.mrc",
            help="a map on the volume's grid (e.g. a locally filtered map): moved as the job "
            "moves the volume's maps, onto the grid of its aligned map",
        )
        what.add_argument(
            "--mask", metavar="IN.mrc", help="a mask on the volume's grid (trilinear, as the job)"
        )
        what.add_argument(
            "--particles",
            metavar="IN.star|IN.cs",
            help="RELION .star or CryoSPARC .cs particles of the volume: their poses follow it",
        )
        what.add_argument(
            "--model",
            metavar="IN.cif|IN.pdb",
            help="an atomic model fitted into the volume's original map (mmCIF or PDB; needs "
            "gemmi): moved into the aligned map's frame",
        )
        parser.add_argument("--out", required=True, help="file to write (same kind as the input)")
        parser.add_argument(
            "--force", action="store_true", help="replace --out if it exists (default: refuse)"
        )
        parser.add_argument(
            "--voxel",
            type=float,
            metavar="A",
            help="voxel size of --map/--mask in Å (default: the one the job used for the "
            "volume's maps when it overrode the header, else the header's)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from align3d.jobs.align_3d_maps.apply import (
            apply_map,
            apply_model,
            apply_particles,
            load_result,
        )

        result, manifest = load_result(Path(args.result))
        inputs = [(o, getattr(args, o)) for o in ("map", "mask", "particles", "model")]
        option, source = next((o, v) for o, v in inputs if v is not None)
        source_path, out = Path(source), Path(args.out)
        # the overwrite rule of align and run (an input never, an existing file with --force)
        check_output_file(out, "--out", args.force, [source_path, Path(args.result)])
        if args.voxel is not None and option not in ("map", "mask"):
            raise InvalidInput("--voxel applies to --map and --mask only")
        if args.voxel is not None and not args.voxel > 0:
            raise InvalidInput(f"--voxel must be positive, got {args.voxel}")
        if option in ("map", "mask"):
            _suffix(out, "--out", MAP_SUFFIXES, "a map is written as MRC")
            written = apply_map(result, manifest, args.volume, source_path, out, option, args.voxel)
        elif option == "particles":
            _suffix(source_path, "--particles", PARTICLE_SUFFIXES, "RELION or CryoSPARC")
            _suffix(
                out, "--out", (source_path.suffix.lower(),), "particles keep their input's format"
            )
            written = apply_particles(result, manifest, args.volume, source_path, out)
        else:
            _suffix(source_path, "--model", MODEL_SUFFIXES, "mmCIF or PDB", gz=True)
            _suffix(out, "--out", MODEL_SUFFIXES, "mmCIF or PDB")
            written = apply_model(result, manifest, args.volume, source_path, out)
        print(written)
        return Exit.OK


def _suffix(path: Path, option: str, allowed: tuple[str, ...], what: str, gz: bool = False) -> None:
    """Refuse a file whose suffix is not one of ``allowed`` (``gz``: also ``.gz`` of them)."""
    name = path.name.lower()
    if gz and name.endswith(".gz"):
        name = name[:-3]
    if not any(name.endswith(s) for s in allowed):
        raise InvalidInput(
            f"{option} {path}: expected a {' or '.join(allowed)} file ({what})"
            + (" (optionally .gz)" if gz else "")
        )


APPLY = ApplyCommand()
