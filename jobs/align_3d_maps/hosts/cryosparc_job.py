"""``align3d-cryosparc``: Align 3D Maps as a CryoSPARC External job, run beside the instance
(README, *CryoSPARC*). It connects (:mod:`align3d.engine.hosts.cryosparc_session`), creates an
External job and declares one input per connection: ``reference``, ``volume_K`` (``map`` and
the optional ``map_sharp``, ``map_half_A``, ``map_half_B``, ``mask``/``mask_refine``) and
``particles_K`` (``alignments3D``). Files are read in the project folder (else downloaded into
the job folder) and paired with their volume by the job that made them and its ancestry
(:mod:`.pairing`); the classes of one job (``volume_class_N``, N from 0) are linked under names
that say their class, so that with one particle set they align as a volumes group. ``align3d
run`` runs on a spec in the job folder (:mod:`.run_folder`); the job saves ``volume_K``,
``volumes`` and ``particles_K`` (or ``particles`` for a group: ``alignments3D`` rewritten, the
rest passed through), paths relative to the project. Any error fails the job with align3d's
own message."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from align3d.engine.describe import describe
from align3d.engine.exit_codes import Exit
from align3d.engine.hosts.cryosparc_session import (
    CryoSPARCConnectionError,
    connect,
    connection_settings,
)
from align3d.engine.hosts.params import parse_param
from align3d.engine.process_end import exit_process
from align3d.jobs.align_3d_maps.hosts.outputs import OutputFile, output_files, read_result
from align3d.jobs.align_3d_maps.hosts.pairing import (
    HostFile,
    HostInputs,
    PairingError,
    job_spec,
    plan_volumes,
)
from align3d.jobs.align_3d_maps.hosts.run_folder import (
    RUN_FOLDER,
    run_align3d,
    run_arguments,
    write_spec,
)
from align3d.jobs.align_3d_maps.job import JOB
from align3d.slots.errors import MapReadError
from align3d.slots.mrc import read_grid
from align3d.slots.particles import CS_FIELDS
from align3d.slots.payloads import HALF_MAPS, VOLUME_FILES, MapRole

if TYPE_CHECKING:
    from cryosparc.controllers.job import ExternalJobController
    from cryosparc.dataset import Dataset
    from cryosparc.tools import CryoSPARC

logger = logging.getLogger(__name__)

PROG = "align3d-cryosparc"
TITLE = "Align 3D Maps (align3d)"
INPUT_MASKS = ("mask", "mask_refine")  # a volume's mask as CryoSPARC's jobs name it
OPTIONAL_SLOTS = (MapRole.MAP_SHARP, *HALF_MAPS, *INPUT_MASKS)
BLOB = {"dtype": "blob", "required": False}
VOLUME_INPUT_SLOTS: list[Any] = ["map", *({"name": str(n), **BLOB} for n in OPTIONAL_SLOTS)]
CLASS_OUTPUT = re.compile(r"class_(\d+)$")
"""The output name of a classification's class volume (``volume_class_0``: class 1)."""


class CryoSPARCJobError(Exception):
    """A user's mistake, an unreachable instance, or a failed run (``code``: the exit code,
    align3d's for a failed run); the message says which."""

    def __init__(self, message: str, code: int = Exit.INVALID_INPUT) -> None:
        super().__init__(message)
        self.code = int(code)


@dataclass(frozen=True)
class OutputRef:
    """A job output as the command line names it: ``J15.volume``."""

    job: str
    output: str

    @classmethod
    def parse(cls, text: str, option: str) -> OutputRef:
        job, _, output = text.partition(".")
        if not (job.upper().startswith("J") and job[1:].isdigit() and output):
            raise CryoSPARCJobError(
                f"{option} {text!r}: name a job output as JOB.OUTPUT (J15.volume, J15.particles)"
            )
        return cls(job.upper(), output)

    def __str__(self) -> str:
        return f"{self.job}.{self.output}"


def job_params(args: argparse.Namespace) -> dict[str, Any]:
    """The align3d parameters given on the command line, typed by their declarations."""
    params: dict[str, Any] = {}
    for param in describe(JOB).params:
        if (text := getattr(args, param.name)) is not None:
            try:
                params[param.name] = parse_param(param, text)
            except ValueError as exc:
                raise CryoSPARCJobError(f"--{exc}") from None
    return params


class InputFiles:
    """Where the inputs' files are (in the project folder, else downloaded into the job's),
    and which jobs are upstream of the jobs that made them."""

    def __init__(self, cs: CryoSPARC, project: str, project_dir: Path, job_dir: Path) -> None:
        self.cs, self.project, self.project_dir, self.job_dir = cs, project, project_dir, job_dir
        self._parents: dict[str, list[str]] = {}

    def as_class(self, file: HostFile, ref: OutputRef) -> HostFile:
        """A class's map (output ``volume_class_N``) linked as ``inputs/JOB_classKKK.mrc``,
        K = N + 1 (align3d counts volumes from 1); any other map as it is."""
        found = CLASS_OUTPUT.search(ref.output)
        if found is None:
            return file
        link = self.job_dir / "inputs" / f"{ref.job}_class{int(found.group(1)) + 1:03d}.mrc"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(file.path.resolve())
        return replace(file, path=link)

    def upstream(self, uid: str) -> frozenset[str]:
        """Every job upstream of ``uid`` (its parents, theirs, ...), for the pairing."""
        found: set[str] = set()
        waiting = [uid]
        while waiting:
            current = waiting.pop()
            if current not in self._parents:
                model = self.cs.api.jobs.find_one(self.project, current)
                self._parents[current] = list(model.parents)
            fresh = [p for p in self._parents[current] if p not in found]
            found.update(fresh)
            waiting += fresh
        return frozenset(found)

    def file(self, relative: str) -> Path:
        """A file named relative to the project folder: there, else as the instance sends it."""
        local = self.project_dir / relative
        if local.is_file():
            return local
        target = self.job_dir / "inputs" / relative.replace("/", "_")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.cs.download_file(self.project, relative, target)
        except Exception as exc:
            raise CryoSPARCJobError(
                f"{relative}: not in {self.project_dir} on this machine, and the instance did "
                f"not send it ({exc})"
            ) from None
        return target


def _path_of(dataset: Dataset, slot: str) -> str | None:
    if f"{slot}/path" not in dataset.fields() or len(dataset) == 0:
        return None
    value = dataset[f"{slot}/path"][0]
    return (value.decode() if isinstance(value, bytes) else str(value)) or None


def _load_one(job: ExternalJobController, name: str, shown: str) -> Dataset:
    dataset = job.load_input(name)
    if len(dataset) != 1:
        raise CryoSPARCJobError(f"{shown}: {len(dataset)} volumes in one output; connect one")
    return dataset


@dataclass(frozen=True)
class LoadedInputs:
    """The pairing's view of the inputs, and the input each particle file came from."""

    host: HostInputs
    particle_inputs: dict[Path, str]


def host_inputs(
    job: ExternalJobController,
    files: InputFiles,
    reference: OutputRef,
    volumes: Sequence[OutputRef],
    particles: Sequence[OutputRef],
) -> LoadedInputs:
    """Declare, connect and load the inputs (each input takes exactly one connection)."""
    named = {"reference": reference, **{f"volume_{k}": r for k, r in enumerate(volumes, 1)}}
    named |= {f"particles_{k}": r for k, r in enumerate(particles, 1)}
    for name, ref in named.items():
        kind = "particle" if name.startswith("particles_") else "volume"
        slots = ["alignments3D"] if kind == "particle" else VOLUME_INPUT_SLOTS
        job.add_input(kind, name, min=1, max=1, slots=slots, title=f"{name} ({ref})")
        job.connect(name, ref.job, ref.output)

    def host_file(relative: str, ref: OutputRef) -> HostFile:
        upstream = files.upstream(ref.job)
        return HostFile(files.file(relative), ref.job, upstream, f"{ref} {relative}")

    maps: list[HostFile] = []
    halves: list[HostFile] = []
    sharpened: list[HostFile] = []
    masks: list[HostFile] = []
    ref_data = _load_one(job, "reference", str(reference))
    ref_map = _path_of(ref_data, "map")
    if ref_map is None:
        raise CryoSPARCJobError(f"--reference {reference}: the volume has no map")
    for k, ref in enumerate(volumes, 1):
        data = _load_one(job, f"volume_{k}", str(ref))
        map_path = _path_of(data, MapRole.MAP)
        if map_path is None:
            raise CryoSPARCJobError(f"--volumes {ref}: the volume has no map")
        maps.append(files.as_class(host_file(map_path, ref), ref))
        halves += [host_file(p, ref) for r in HALF_MAPS if (p := _path_of(data, r)) is not None]
        if (sharp := _path_of(data, MapRole.MAP_SHARP)) is not None:
            sharpened.append(host_file(sharp, ref))
        mask = next((p for n in INPUT_MASKS if (p := _path_of(data, n)) is not None), None)
        if mask is not None:
            masks.append(host_file(mask, ref))
    particle_files: list[HostFile] = []
    origin: dict[Path, str] = {}
    for k, ref in enumerate(particles, 1):
        path = files.job_dir / f"input_particles_{k}.cs"
        job.load_input(f"particles_{k}").save(path)
        particle_files.append(HostFile(path, ref.job, files.upstream(ref.job), str(ref)))
        origin[path] = f"particles_{k}"
    inputs = HostInputs(
        reference=host_file(ref_map, reference),
        maps=maps,
        halves=halves,
        sharpened=sharpened,
        masks=masks,
        particles=particle_files,
    )
    return LoadedInputs(inputs, origin)


@dataclass(frozen=True)
class BlobField:
    """One field of a saved volume row: ``name`` (``map/path``), numpy ``dtype`` and
    ``shape`` (per row), and this row's ``value``."""

    name: str
    dtype: str
    value: Any
    shape: tuple[int, ...] = ()


def _blob(slot: str, path: Path, project_dir: Path) -> list[BlobField]:
    """A blob slot's fields: path relative to the project folder, shape ``[z, y, x]`` in
    voxels, voxel size in Å."""
    grid = read_grid(path)
    return [
        BlobField(f"{slot}/path", "O", str(path.relative_to(project_dir))),
        BlobField(f"{slot}/shape", "<u4", np.array(grid.shape, dtype=np.uint32), (3,)),
        BlobField(f"{slot}/psize_A", "<f4", grid.voxel_size_A[0]),
    ]


def _volume_dataset(rows: list[list[BlobField]]) -> Dataset:
    from cryosparc.dataset import Dataset

    fields = [(f.name, f.dtype, f.shape) if f.shape else (f.name, f.dtype) for f in rows[0]]
    dataset = Dataset.allocate(len(rows), fields)
    for position, row in enumerate(rows):
        for item in row:
            dataset[item.name][position] = item.value
    return dataset


def save_outputs(
    job: ExternalJobController,
    run_dir: Path,
    project_dir: Path,
    sources: dict[int | None, str],
) -> None:
    """Declare and save the aligned volumes, the volumes together and the particles
    (``sources``: the particle input of each volume, or of the volumes group under None)."""
    from cryosparc.dataset import Dataset

    moved = output_files(read_result(run_dir))
    by_volume: dict[int, list[OutputFile]] = {}
    for item in moved:
        if item.role is not MapRole.PARTICLES and item.volume is not None:
            by_volume.setdefault(item.volume, []).append(item)
    rows: list[list[BlobField]] = []
    for index, items in by_volume.items():
        slots = [{"name": str(i.role), "dtype": "blob"} for i in items]
        name = f"volume_{index}"
        job.add_output("volume", name, slots=slots, title=f"aligned volume {index}")
        row = [f for i in items for f in _blob(str(i.role), run_dir / i.path, project_dir)]
        job.save_output(name, _volume_dataset([row]))
        rows.append(row)
    common = set.intersection(*({f.name for f in row} for row in rows))
    rows = [[f for f in row if f.name in common] for row in rows]
    roles = [r for r in VOLUME_FILES if f"{r}/path" in common]
    job.add_output("volume", "volumes", slots=[{"name": str(r), "dtype": "blob"} for r in roles])
    job.save_output("volumes", _volume_dataset(rows))
    for item in (i for i in moved if i.role is MapRole.PARTICLES):
        rewritten = Dataset.load(run_dir / item.path)
        name = "particles" if item.volume is None else f"particles_{item.volume}"
        job.add_output("particle", name, slots=["alignments3D"], passthrough=sources[item.volume])
        job.save_output(name, rewritten.filter_fields(["uid", *CS_FIELDS]))


def run_job(cs: CryoSPARC, args: argparse.Namespace, params: dict[str, Any]) -> int:
    """Create the External job, run align3d in it and save the outputs; the exit code."""
    reference = OutputRef.parse(args.reference, "--reference")
    volumes = [OutputRef.parse(text, "--volumes") for text in args.volumes]
    particles = [OutputRef.parse(text, "--particles") for text in args.particles]
    project_dir = Path(str(cs.find_project(args.project).dir))
    if not project_dir.is_dir():
        raise CryoSPARCJobError(
            f"{args.project}'s folder {project_dir} is not on this machine: run {PROG} where "
            "the project folder is seen at the same path (the job writes its outputs there)"
        )
    job = cs.create_external_job(args.project, args.workspace, title=args.title)
    job.start("running")
    error = ""
    try:
        job_dir = Path(str(job.dir))
        job_dir.mkdir(parents=True, exist_ok=True)
        files = InputFiles(cs, args.project, project_dir, job_dir)
        loaded = host_inputs(job, files, reference, volumes, particles)
        inputs, origin = loaded.host, loaded.particle_inputs
        plan = plan_volumes(inputs)
        update = params.setdefault("update_particle_alignments", bool(inputs.particles))
        moved_masks = params.setdefault("create_mask_inputs", bool(inputs.masks))
        spec = job_spec(inputs, plan, params, particles=bool(update), masks=bool(moved_masks))
        changed = write_spec(job_dir, spec)
        run = run_align3d(run_arguments(job_dir, changed))
        if run.code != 0:
            raise CryoSPARCJobError(run.message, run.code)
        sources = {v.index: origin[v.particles[0].path] for v in plan.volumes if v.particles}
        if plan.particles_all is not None:
            sources[None] = origin[plan.particles_all.path]
        save_outputs(job, job_dir / RUN_FOLDER, project_dir, sources)
        job.log(f"align3d: {len(plan.volumes)} volume(s) aligned into {job_dir / RUN_FOLDER}")
    except (CryoSPARCJobError, PairingError, MapReadError) as exc:
        error = str(exc)
        raise
    except BaseException as exc:  # a bug, or Ctrl-C: the job must not be marked completed
        error = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"internal error: {exc}"
        raise
    finally:
        job.stop(error=error)
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line: the job's inputs by output name, and every align3d parameter."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--project", required=True, help="project UID, e.g. P3")
    p.add_argument("--workspace", required=True, help="workspace UID, e.g. W2")
    p.add_argument("--reference", required=True, help="the reference volume, e.g. J12.volume")
    p.add_argument("--volumes", required=True, nargs="+", help="volumes to align, J15.volume ...")
    p.add_argument("--particles", nargs="*", default=[], help="particles, J15.particles ...")
    p.add_argument("--env-file", type=Path, help="a file of CRYOSPARC_... settings")
    p.add_argument("--title", default=TITLE, help="the External job's title")
    for param in describe(JOB).params:
        p.add_argument(f"--{param.name}", metavar="VALUE", help=param.help)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 on success, 2 for a user's mistake or an unreachable instance, else
    align3d's exit code; a message on standard error, never a traceback for a user's error."""
    args = parser().parse_args(argv)
    try:
        params = job_params(args)
        cs = connect(connection_settings(args.env_file))
        return run_job(cs, args, params)
    except (CryoSPARCJobError, CryoSPARCConnectionError, PairingError, MapReadError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, CryoSPARCJobError) else int(Exit.INVALID_INPUT)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except Exception as exc:  # a bug: said, with the traceback in the log
        logger.exception("%s failed", PROG)
        print(f"{PROG}: internal error: {exc}", file=sys.stderr)
        return int(Exit.INTERNAL_ERROR)


def console() -> None:
    """The ``align3d-cryosparc`` console command."""
    exit_process(main())


if __name__ == "__main__":
    console()
