"""``align3d-relion-external``: Align 3D Maps as a RELION External job (RELION 3.1 to 5).

RELION runs ``EXE --o External/jobNNN/ [--in_parts P.star] [--in_3dref REF.mrc] [--in_mask
MASK.mrc] [--LABEL VALUE ...] --j N`` in the project folder, then waits for an exit marker in
the job folder. In RELION's meanings:

* ``--in_3dref`` is the **reference**; ``--in_mask`` its mask;
* ``--in_parts`` the particles of the map or maps to align (their poses follow their map);
* ``maps``: the maps to align, comma-separated. Without it they come from the particles' own
  job folder: a Refine3D's ``run_class001.mrc`` with its unfiltered half maps, or a Class3D's
  last-iteration ``run_itNNN_classKKK.mrc`` (a volumes group: each particle follows the volume
  of its ``rlnClassNumber``);
* ``half_maps``, ``sharpened``, ``mask_to_align``: more files of the maps to align
  (comma-separated; a PostProcess's sharpened map and mask live in another job folder). Each
  goes with the map whose job made it or is upstream or downstream of its own, as the
  project's ``default_pipeline.star`` says;
* every other label is an align3d parameter by its own name (``max_shift_A``, ...); one not
  given takes its default.

The job runs ``align3d run`` on a spec it writes into its folder (``align3d_job.json``), into
``align3d/``, lists every moved map, half map, mask and particle file in
``RELION_OUTPUT_NODES.star`` (both type columns), then writes ``RELION_JOB_EXIT_SUCCESS``. On any
failure it writes ``RELION_JOB_EXIT_FAILURE`` and the reason on standard error (RELION's
``run.err``), and exits non-zero. When the GUI asks for an abort (``RELION_JOB_ABORT_NOW``), the
run stops as on Ctrl-C (nothing half-written is kept) and ``RELION_JOB_EXIT_ABORTED`` follows.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align3d.engine.cli import main as align3d
from align3d.engine.describe import describe
from align3d.engine.exit_codes import Exit
from align3d.engine.hosts.params import parse_param
from align3d.engine.hosts.relion_pipeline import (
    ABORT_NOW,
    ABORTED,
    FAILURE,
    SUCCESS,
    NodeType,
    OutputNode,
    PipelineFileError,
    ProjectPipeline,
    read_project_pipeline,
    relion_major_version,
    write_exit_marker,
    write_output_nodes,
)
from align3d.engine.interrupts import lost_interrupts_resent
from align3d.engine.process_end import exit_process
from align3d.engine.suggest import unknown_name
from align3d.jobs.align_3d_maps.hosts.abort import AbortWatch
from align3d.jobs.align_3d_maps.hosts.outputs import output_files, read_result
from align3d.jobs.align_3d_maps.hosts.pairing import (
    HostFile,
    HostInputs,
    PairingError,
    job_spec,
    plan_volumes,
)
from align3d.jobs.align_3d_maps.hosts.run_folder import RUN_FOLDER, run_arguments, write_spec
from align3d.jobs.align_3d_maps.job import JOB
from align3d.slots.payloads import MapRole

logger = logging.getLogger(__name__)

FILE_OPTIONS = ("maps", "half_maps", "sharpened", "mask_to_align")
RELION_INPUTS = ("o", "in_3dref", "in_mask", "in_parts", "j", "pipeline_control")
UNSUPPORTED_INPUTS = ("in_movies", "in_mics", "in_coords")
ROLE_NODE = {
    MapRole.MAP: NodeType.MAP,
    MapRole.MAP_SHARP: NodeType.FINAL_MAP,
    MapRole.MAP_HALF_A: NodeType.HALF_MAP,
    MapRole.MAP_HALF_B: NodeType.HALF_MAP,
    MapRole.MASK: NodeType.MASK,
    MapRole.PARTICLES: NodeType.PARTICLES,
}
REFINE3D_PARTICLES = re.compile(r"^run(_ct\d+)?_data\.star$")
CLASS3D_PARTICLES = re.compile(r"^(run(?:_ct\d+)?_it(\d+))_data\.star$")


class ExternalJobError(Exception):
    """A user's mistake in the External job's inputs or parameters."""


@dataclass
class ExternalArgs:
    """RELION's arguments, by name (labels as given, without ``--``)."""

    out: Path
    values: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value else None


def job_folder_of(argv: Sequence[str]) -> Path | None:
    """The ``--o`` folder, found before anything else can fail (so the marker lands there)."""
    for position, token in enumerate(argv[:-1]):
        if token == "--o":
            return Path(argv[position + 1])
    return None


def parse_arguments(argv: Sequence[str]) -> ExternalArgs:
    """``--LABEL VALUE`` pairs (a label with no value counts as not given)."""
    values: dict[str, str] = {}
    position = 0
    while position < len(argv):
        token = argv[position]
        if not token.startswith("--") or len(token) == 2:
            raise ExternalJobError(f"unexpected argument {token!r}: arguments are --LABEL VALUE")
        name = token[2:]
        has_value = position + 1 < len(argv) and not argv[position + 1].startswith("--")
        values[name] = argv[position + 1] if has_value else ""
        position += 2 if has_value else 1
    out = values.pop("o", "")
    if not out:
        raise ExternalJobError("--o (the job folder) is missing: run this job from RELION")
    return ExternalArgs(Path(out), values)


def job_params(args: ExternalArgs) -> dict[str, Any]:
    """The align3d parameters given (typed), every unknown label refused with a suggestion."""
    declared = {p.name: p for p in describe(JOB).params}
    params: dict[str, Any] = {}
    for name, text in args.values.items():
        if name in RELION_INPUTS or name in FILE_OPTIONS:
            continue
        if name in UNSUPPORTED_INPUTS:
            raise ExternalJobError(f"--{name}: Align 3D Maps takes no {name[3:]}; leave it empty")
        if name not in declared:
            valid = [*declared, *FILE_OPTIONS]
            raise ExternalJobError(unknown_name("parameter", name, valid))
        if text:
            try:
                params[name] = parse_param(declared[name], text)
            except ValueError as exc:
                raise ExternalJobError(str(exc)) from None
    return params


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _host_file(path_text: str, project: Path, pipeline: ProjectPipeline, what: str) -> HostFile:
    path = Path(path_text)
    absolute = path if path.is_absolute() else project / path
    if not absolute.is_file():
        raise ExternalJobError(
            f"{what} {path_text}: no such file (paths are relative to the project folder {project})"
        )
    try:
        name = str(absolute.resolve().relative_to(project.resolve()))
    except ValueError:
        name = str(absolute)
    source = pipeline.source(name) or str(Path(name).parent) + "/"
    return HostFile(absolute.resolve(), source, pipeline.upstream(source), name)


def maps_from_particles_folder(particles: Path) -> tuple[list[Path], list[Path]]:
    """The maps (and half maps) that a Refine3D or Class3D job wrote beside its particles."""
    folder, name = particles.parent, particles.name
    if REFINE3D_PARTICLES.match(name):
        stem = name[: -len("_data.star")]
        found = folder / f"{stem}_class001.mrc"
        halves = [folder / f"{stem}_half{h}_class001_unfil.mrc" for h in (1, 2)]
        if found.is_file():
            return [found], [h for h in halves if h.is_file()]
    classes = CLASS3D_PARTICLES.match(name)
    if classes:
        found_classes = sorted(folder.glob(f"{classes.group(1)}_class[0-9][0-9][0-9].mrc"))
        if found_classes:
            return found_classes, []
    raise ExternalJobError(
        f"--in_parts {particles}: no maps beside these particles (a Refine3D's run_data.star "
        "with run_class001.mrc, or a Class3D's run_itNNN_data.star with run_itNNN_classKKK.mrc); "
        "give the maps to align as the parameter 'maps'"
    )


def host_inputs(args: ExternalArgs, project: Path) -> HostInputs:
    """RELION's inputs as the pairing sees them."""
    pipeline = read_project_pipeline(project)
    reference = args.get("in_3dref")
    if reference is None:
        raise ExternalJobError("no reference: give the reference map as the 3D reference input")
    ref_mask = args.get("in_mask")
    particles = args.get("in_parts")
    maps, halves = _split(args.get("maps")), _split(args.get("half_maps"))
    if not maps:
        if particles is None:
            raise ExternalJobError(
                "no maps to align: give them as the parameter 'maps' (comma-separated), or give "
                "the particles of a Refine3D or Class3D job, whose maps are found beside them"
            )
        found, found_halves = maps_from_particles_folder(project / particles)
        maps = [str(p) for p in found]
        halves = halves or [str(p) for p in found_halves]

    def files(texts: list[str], what: str) -> list[HostFile]:
        return [_host_file(text, project, pipeline, what) for text in texts]

    return HostInputs(
        reference=_host_file(reference, project, pipeline, "reference (--in_3dref)"),
        maps=files(maps, "map to align"),
        reference_mask=None
        if ref_mask is None
        else _host_file(ref_mask, project, pipeline, "reference mask (--in_mask)"),
        halves=files(halves, "half map"),
        sharpened=files(_split(args.get("sharpened")), "sharpened map"),
        masks=files(_split(args.get("mask_to_align")), "mask to align"),
        particles=files([particles] if particles else [], "particles (--in_parts)"),
    )


def run_external(args: ExternalArgs, project: Path) -> int:
    """Pair, run ``align3d run``, declare the outputs; the exit code of ``align3d run``."""
    job_dir = project / args.out
    inputs = host_inputs(args, project)
    params = job_params(args)
    plan = plan_volumes(inputs)
    # unless the user said, particles and masks are updated when connected
    particles = params.setdefault("update_particle_alignments", bool(inputs.particles))
    masks = params.setdefault("create_mask_inputs", bool(inputs.masks))
    spec = job_spec(inputs, plan, params, particles=bool(particles), masks=bool(masks))
    changed = write_spec(job_dir, spec)
    threads = args.get("j")
    workers = (
        int(threads) if threads is not None and threads.isdigit() and int(threads) > 1 else None
    )
    code = align3d(run_arguments(job_dir, changed, workers))
    if code != 0:
        return code
    manifest = read_result(job_dir / RUN_FOLDER)
    nodes = [
        OutputNode(str(args.out / RUN_FOLDER / item.path), ROLE_NODE[item.role])
        for item in output_files(manifest)
    ]
    write_output_nodes(job_dir, nodes, relion_major_version(project))
    for warning in manifest.warnings:
        print(f"align3d: warning: {warning}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; always leaves one exit marker in the job folder."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    project = Path.cwd()
    job_dir = job_folder_of(arguments)
    code = 1
    try:
        if job_dir is None:
            raise ExternalJobError("--o (the job folder) is missing: run this job from RELION")
        (project / job_dir).mkdir(parents=True, exist_ok=True)
        (project / job_dir / ABORT_NOW).unlink(missing_ok=True)
        # the GUI's abort request interrupts the job as Ctrl-C does
        with AbortWatch(project / job_dir, ABORT_NOW), lost_interrupts_resent():
            code = run_external(parse_arguments(arguments), project)
    except (ExternalJobError, PairingError, PipelineFileError) as exc:
        print(f"align3d-relion-external: error: {exc}", file=sys.stderr)
        code = 2
    except Exception as exc:  # a bug: RELION must still see the job end
        logger.exception("align3d-relion-external failed")
        print(f"align3d-relion-external: internal error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:  # an abort request that came between two align3d steps
        code = int(Exit.INTERRUPTED)
    finally:
        if job_dir is not None and (project / job_dir).is_dir():
            aborted = (project / job_dir / ABORT_NOW).exists() and code == Exit.INTERRUPTED
            marker = SUCCESS if code == 0 else ABORTED if aborted else FAILURE
            write_exit_marker(project / job_dir, marker)
    return code


def console() -> None:
    """The ``align3d-relion-external`` console command: :func:`main`, then a quick exit
    (:func:`align3d.engine.process_end.exit_process`); RELION starts one per job."""
    exit_process(main())


if __name__ == "__main__":
    console()
