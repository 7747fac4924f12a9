"""Run a validated workflow: jobs in topological order (independent ones side by side), each
into a folder that appears whole.

Each job works in a temporary sibling folder (``.NAME.tmp-PID``) and is renamed into place
with its ``result.json`` once complete, so a job folder is complete or absent. Inputs are never
modified: jobs read them and write only inside their own folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.issues import Issue
from engine.jobdef import JobDefinition, RunContext, SlotSpec
from engine.parallel.backend import Backend
from engine.parallel.local import warm_workers
from engine.resolver import Resolution, ResolvedJob, as_list, document_issues, item_index, resolve
from schemas.documents import FromRef, GroupRef, PathRef, ResultManifest, SingleInput, VolumeRef
from slots.payloads import (
    PAYLOAD_OF_KIND,
    MaskPayload,
    ParticlesPayload,
    SlotKind,
    VolumePayload,
    VolumesGroupPayload,
)

MAX_CONCURRENT_JOBS = 4
"""Independent jobs of a workflow run side by side, at most this many at once."""


class InvalidSpec(Exception):
    """The document or graph has errors; ``issues`` lists them all."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


class JobError(Exception):
    """A job failed on its input (a user-fixable problem); the message says which job."""


class OutputExists(Exception):
    """A completed job folder is already there and ``force`` was not given."""


class OutputBusy(Exception):
    """Another align3d run is writing into the same output folder."""


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` for the whole run (``.NAME.lock`` beside it): a
    second run into the same folder refuses at once instead of mixing its files in."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    handle = lock_path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise OutputBusy(
                f"{out_dir} is being written by another align3d run ({owner}); wait for it to "
                "finish or choose another --out"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)
    finally:
        handle.close()


def fingerprint(job: ResolvedJob, done: Mapping[str, tuple[Path, ResultManifest]]) -> str:
    """What a completed job folder must match to be reused: job type, parameters, inputs, and
    the fingerprints of the jobs it reads from."""
    assert job.params is not None
    upstream = sorted(
        {
            item.job
            for value in job.spec.inputs.values()
            for item in as_list(value)
            if isinstance(item, FromRef)
        }
    )
    doc = {
        "job": job.spec.job,
        "params": job.params.model_dump(mode="json"),
        "inputs": {k: json.loads(json.dumps(v, default=_dump)) for k, v in job.spec.inputs.items()},
        "upstream": {name: done[name][1].fingerprint for name in upstream if name in done},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _dump(value: Any) -> Any:
    return (
        value.model_dump(mode="json", by_alias=True) if isinstance(value, BaseModel) else str(value)
    )


def validate_document(data: Any, registry: Mapping[str, JobDefinition]) -> Resolution | list[Issue]:
    """The resolution of a document, or the document's structural issues."""
    workflow, issues = document_issues(data)
    if workflow is None:
        return issues
    return resolve(workflow, registry)


def _volume_payload(ref: VolumeRef, base: Path) -> VolumePayload:
    def path(value: str | None) -> Path | None:
        return None if value is None else base / value

    return VolumePayload(
        map=base / ref.map,
        map_sharp=path(ref.map_sharp),
        map_half_A=path(ref.map_half_A),
        map_half_B=path(ref.map_half_B),
        mask=path(ref.mask),
        voxel_size_A=ref.voxel_size_A,
    )


def _absolute_paths(payload: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Output payload paths are relative to their job folder; make them absolute."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "volumes":
            out[key] = [_absolute_paths(v, folder) for v in value]
        elif isinstance(value, str) and key not in ("kind",):
            out[key] = str(folder / value)
        else:
            out[key] = value
    return out


def _materialise(
    item: SingleInput, slot: SlotSpec, base: Path, done: Mapping[str, tuple[Path, ResultManifest]]
) -> BaseModel:
    if isinstance(item, FromRef):
        folder, manifest = done[item.job]
        payload = _absolute_paths(manifest.outputs[item.slot], folder)
        return PAYLOAD_OF_KIND[slot.kind].model_validate(payload)
    if isinstance(item, VolumeRef):
        return _volume_payload(item, base)
    if isinstance(item, GroupRef):
        return VolumesGroupPayload(volumes=[_volume_payload(v, base) for v in item.volumes])
    assert isinstance(item, PathRef)
    if slot.kind == SlotKind.PARTICLES:
        return ParticlesPayload(path=base / item.path)
    return MaskPayload(path=base / item.path, voxel_size_A=item.voxel_size_A)


def job_inputs(
    job: ResolvedJob, base: Path, done: Mapping[str, tuple[Path, ResultManifest]]
) -> dict[str, Any]:
    """The job's inputs as payloads: one per slot, or ``[(index, payload), ...]`` for a
    multiple input."""
    slots = {s.name: s for s in job.inputs}
    inputs: dict[str, Any] = {}
    for name, value in job.spec.inputs.items():
        slot = slots[name]
        items = as_list(value)
        if slot.multiple:
            inputs[name] = [
                (item_index(it, i), _materialise(it, slot, base, done))
                for i, it in enumerate(items)
            ]
        else:
            inputs[name] = _materialise(items[0], slot, base, done)
    return inputs


def _logger(folder: Path, name: str, quiet: bool) -> Callable[[str], None]:
    log_file = folder / "job.log"

    def log(line: str) -> None:
        with log_file.open("a") as fh:
            fh.write(line + "\n")
        if not quiet:
            print(f"[{name}] {line}", flush=True)

    return log


def run_job(
    job: ResolvedJob,
    job_dir: Path,
    base: Path,
    done: Mapping[str, tuple[Path, ResultManifest]],
    force: bool = False,
    quiet: bool = False,
    backend: Backend | None = None,
) -> ResultManifest:
    """Run one job into ``job_dir`` (complete or absent, never half-written). A completed folder
    of the same job (same fingerprint) is reused; another job's folder is not replaced without
    ``force``."""
    assert job.definition is not None and job.params is not None
    print_line = (lambda line: None) if quiet else (lambda line: print(f"[{job.name}] {line}"))
    stamp = fingerprint(job, done)
    previous = job_dir / "result.json"
    if previous.exists() and not force:
        try:
            old = ResultManifest.model_validate_json(previous.read_text())
        except ValueError:
            old = None
        if old is not None and old.fingerprint == stamp:
            print_line(f"complete already in {job_dir}; reused")
            return old
        raise OutputExists(
            f"{job_dir} holds a completed job with other parameters or inputs; use --force to "
            "replace it, or choose another --out"
        )
    if job_dir.exists() and not force and any(job_dir.iterdir()):
        raise OutputExists(
            f"{job_dir} exists and is not empty; choose another --out or use --force"
        )
    inputs = job_inputs(job, base, done)
    check_inputs(job, inputs)
    job_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = job_dir.parent / f".{job_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        context = RunContext(
            workdir=tmp,
            base_dir=base,
            log=_logger(tmp, job.name, quiet),
            quiet=quiet,
            backend=backend or Backend(),
        )
        outcome = job.definition.run(job.params, inputs, context)
        declared = {s.name for s in job.outputs}
        if set(outcome.outputs) != declared:
            raise RuntimeError(
                f"job {job.name} produced outputs {sorted(outcome.outputs)}, declared {sorted(declared)}"
            )
        details = outcome.details.model_dump(mode="json") if outcome.details else {}
        manifest = ResultManifest(
            fingerprint=stamp,
            job=job.name,
            job_type=job.definition.name,
            params=job.params.model_dump(mode="json"),
            outputs={
                k: v.model_dump(mode="json", exclude_none=True) for k, v in outcome.outputs.items()
            },
            warnings=outcome.warnings,
            **details,
        )
        (tmp / "result.json").write_text(manifest.model_dump_json(indent=2) + "\n")
        if job_dir.exists():
            shutil.rmtree(job_dir)  # force, or an empty folder
        os.replace(tmp, job_dir)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_inputs(job: ResolvedJob, inputs: Mapping[str, Any]) -> None:
    """The job's own check of its input files (every problem at once), before any work."""
    preflight = getattr(job.definition, "preflight", None)
    if preflight is None:
        return
    problems = preflight(job.params, inputs)
    if problems:
        raise InvalidSpec([problem.issue(job.name) for problem in problems])


def run_document(
    data: Any,
    base: Path,
    out_dir: Path,
    registry: Mapping[str, JobDefinition],
    force: bool = False,
    quiet: bool = False,
    backend: Backend | None = None,
) -> dict[str, ResultManifest]:
    """Validate and run a job spec (into ``out_dir``) or a workflow (``out_dir/<job>``)."""
    resolution = validate_document(data, registry)
    if isinstance(resolution, list):
        raise InvalidSpec(resolution)
    if not resolution.ok:
        raise InvalidSpec([i for i in resolution.issues if i.level == "error"])
    single = not (isinstance(data, dict) and "jobs" in data)
    done: dict[str, tuple[Path, ResultManifest]] = {}
    order = resolution.order()
    # the jobs that read only files are checked before anything is written
    for name in order:
        job = resolution.jobs[name]
        if not any(isinstance(i, FromRef) for v in job.spec.inputs.values() for i in as_list(v)):
            check_inputs(job, job_inputs(job, base, done))
    depends = {name: set(resolution.graph.predecessors(name)) for name in order}

    def run(name: str) -> ResultManifest:
        job_dir = out_dir if single else out_dir / name
        return run_job(resolution.jobs[name], job_dir, base, done, force, quiet, backend)

    def folder(name: str) -> Path:
        return (out_dir if single else out_dir / name).resolve()

    # workers are forked before the lock is taken (so that they do not hold it) and before any
    # job starts numba's threads (after which a fork is unsafe)
    with (
        warm_workers(backend or Backend()) as backend,
        output_lock(out_dir),
        ThreadPoolExecutor(max_workers=MAX_CONCURRENT_JOBS) as pool,
    ):
        remaining = list(order)
        running: dict[Future[ResultManifest], str] = {}
        while remaining or running:
            ready = [n for n in remaining if depends[n] <= done.keys()]
            if len(ready) == 1 and not running:
                # one job at a time (the usual case) runs here, where a signal can stop it
                remaining.remove(ready[0])
                done[ready[0]] = (folder(ready[0]), run(ready[0]))
                continue
            for name in ready:  # independent jobs run side by side
                remaining.remove(name)
                running[pool.submit(run, name)] = name
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                done[name] = (folder(name), future.result())
    return {name: done[name][1] for name in order}


def load_document(path: Path) -> Any:
    """Read a JSON document; a parse error is an :class:`InvalidSpec` with the position."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidSpec(
            [Issue(code="invalid_document", message=f"{path}: file not found")]
        ) from exc
    except json.JSONDecodeError as exc:
        raise InvalidSpec(
            [
                Issue(
                    code="invalid_document",
                    message=f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno}",
                )
            ]
        ) from exc
