"""Run a validated workflow: every input checked first, then jobs in topological order
(independent ones side by side), each into a folder that appears whole.

Before any work, every job whose inputs are known (files named in the spec, or the outputs of
import jobs, which are known before they run) has its input files checked, and every problem of
every job is reported at once. A completed job folder is reused only when nothing it depends on
has changed (:mod:`align3d.engine.store`); a changed input recomputes its job and every job downstream,
and the log says why. Inputs are never modified: jobs read them and write only inside their
own folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from align3d.engine.inputs import Done, job_inputs, literal_input_files
from align3d.engine.issues import InvalidSpec, Issue
from align3d.engine.jobdef import JobDefinition, JobOutcome, RunContext
from align3d.engine.locations import file_location
from align3d.engine.logs import JOB_LOG, RUN_LOGGER, job_logger
from align3d.engine.outputs import check_job_folder
from align3d.engine.parallel.backend import Backend
from align3d.engine.parallel.local import warm_workers
from align3d.engine.resolver import Resolution, ResolvedJob, as_list, document_issues, resolve
from align3d.engine.store import (
    OutputExists,
    changes,
    check_free_space,
    content_fingerprint,
    digest,
    fingerprint_files,
    job_folder,
    old_job_of,
    output_lock,
    read_manifest,
    storage_error,
    unchanged,
)
from align3d.engine.version import align3d_version
from align3d.schemas.documents import FromRef, ResultManifest
from align3d.slots.atomic import atomic_write

MAX_CONCURRENT_JOBS = 4
"""Independent jobs of a workflow run side by side, at most this many at once."""

logger = logging.getLogger(RUN_LOGGER)


def validate_document(data: Any, registry: Mapping[str, JobDefinition]) -> Resolution | list[Issue]:
    """The resolution of a document, or the document's structural issues."""
    workflow, issues = document_issues(data)
    if workflow is None:
        return issues
    return resolve(workflow, registry)


def spec_fingerprint(job: ResolvedJob) -> str:
    """What was asked of a job: its name, type, parameters and input references."""
    assert job.params is not None
    inputs = {
        name: [item.model_dump(mode="json", by_alias=True) for item in as_list(value)]
        for name, value in job.spec.inputs.items()
    }
    return digest(
        {
            "job": job.name,
            "type": job.spec.job,
            "params": job.params.model_dump(mode="json"),
            "inputs": inputs,
        }
    )


def _upstream(job: ResolvedJob, done: Done) -> dict[str, str]:
    names = {
        item.job
        for value in job.spec.inputs.values()
        for item in as_list(value)
        if isinstance(item, FromRef)
    }
    return {name: done[name][1].fingerprint for name in sorted(names) if name in done}


def input_files(job: ResolvedJob, inputs: Mapping[str, Any], base: Path) -> list[Path]:
    """The files a job's result depends on, besides the outputs of earlier jobs: the job's own
    list (``input_files``, e.g. an import's files) or the files its spec names."""
    assert job.definition is not None and job.params is not None
    own = job.definition.input_files(job.params, inputs, base)
    return list(own) if own is not None else literal_input_files(job, inputs)


def preflight(job: ResolvedJob, inputs: Mapping[str, Any], base: Path) -> list[Issue]:
    """The job's own check of its input files (every problem at once)."""
    assert job.definition is not None and job.params is not None
    return [
        problem.issue(job.name, file_location(job.spec, base, problem.file, problem.slot))
        for problem in job.definition.preflight(job.params, inputs, base)
    ]


def known_before_run(resolution: Resolution, base: Path) -> dict[str, tuple[Path, ResultManifest]]:
    """Outputs that jobs know before they run (imports), as stand-in manifests, so that the jobs
    reading them can be checked before any work."""
    known: dict[str, tuple[Path, ResultManifest]] = {}
    for name, job in resolution.jobs.items():
        if job.definition is None or job.params is None:
            continue
        outputs = job.definition.outputs_before_run(job.params, base)
        if outputs is None:
            continue
        manifest = ResultManifest(
            job=name,
            job_type=job.definition.name,
            align3d_version=align3d_version(),
            spec_fingerprint="",
            fingerprint="",
            params=job.params.model_dump(mode="json"),
            outputs={k: v.model_dump(mode="json", exclude_none=True) for k, v in outputs.items()},
        )
        known[name] = (base, manifest)
    return known


def preflight_document(
    resolution: Resolution, base: Path, skip: set[str] | frozenset[str] = frozenset()
) -> tuple[list[Issue], set[str], int]:
    """Every problem of the input files of every job whose inputs are known before the run
    (but the jobs in ``skip``), the jobs that were checked, and an estimate of the bytes those
    jobs will write."""
    known = known_before_run(resolution, base)
    issues: list[Issue] = []
    checked: set[str] = set()
    output_bytes = 0
    for name in resolution.order():
        job = resolution.jobs[name]
        if name in skip or job.params is None or job.definition is None:
            continue
        upstream = {
            i.job for v in job.spec.inputs.values() for i in as_list(v) if isinstance(i, FromRef)
        }
        if upstream <= known.keys():
            inputs = job_inputs(job, base, known)
            found = preflight(job, inputs, base)
            issues.extend(found)
            checked.add(name)
            if not any(i.level == "error" for i in found):
                output_bytes += int(job.definition.output_bytes(job.params, inputs, base))
    return issues, checked, output_bytes


def likely_reused(resolution: Resolution, folder: Callable[[str], Path]) -> set[str]:
    """The jobs whose completed folders will be reused, as far as a ``stat`` of their recorded
    input files can tell (their checks need not run again)."""
    version = align3d_version()
    reused: set[str] = set()
    for name in resolution.order():
        job = resolution.jobs[name]
        old = read_manifest(folder(name), earlier_versions=False)
        if (
            old is not None
            and old.spec_fingerprint == spec_fingerprint(job)
            and old.align3d_version == version
            and set(resolution.graph.predecessors(name)) <= reused
            and all(unchanged(f) for f in old.inputs)
        ):
            reused.add(name)
    return reused


def _decide_reuse(
    job: ResolvedJob, job_dir: Path, spec_fp: str, force: bool
) -> ResultManifest | None:
    """The completed manifest in ``job_dir`` if it answers the same request, None if the folder
    is free (or ``force``); raises :class:`OutputExists` when it holds another job."""
    if force:
        return None
    old = read_manifest(job_dir, earlier_versions=False)
    if old is not None and old.spec_fingerprint == spec_fp:
        return old
    if old is None and old_job_of(job_dir) == (job.name, job.spec.job):
        logger.info("[%s] %s was made by an earlier align3d; recomputing", job.name, job_dir)
        return None
    if (job_dir / "result.json").exists():
        raise OutputExists(
            f"{job_dir} holds a completed job with other parameters or inputs; use --force to "
            "replace it, or choose another --out"
        )
    if job_dir.exists() and any(job_dir.iterdir()):
        raise OutputExists(
            f"{job_dir} exists and is not empty; choose another --out or use --force"
        )
    return None


def run_job(
    job: ResolvedJob,
    job_dir: Path,
    base: Path,
    done: Done,
    force: bool = False,
    quiet: bool = False,
    backend: Backend | None = None,
    command: Sequence[str] = (),
    checked: bool = False,
) -> ResultManifest:
    """Run one job into ``job_dir`` (complete or absent, never half-written). A completed
    folder of the same request whose inputs are unchanged is reused; one whose inputs changed
    is recomputed (the log says why); another job's folder is not replaced without ``force``."""
    assert job.definition is not None and job.params is not None
    spec_fp = spec_fingerprint(job)
    version = align3d_version()
    inputs = job_inputs(job, base, done)
    upstream = _upstream(job, done)
    old = _decide_reuse(job, job_dir, spec_fp, force)
    files = fingerprint_files(input_files(job, inputs, base), old.inputs if old else ())
    stamp = content_fingerprint(spec_fp, version, files, upstream)
    if old is not None:
        if old.fingerprint == stamp:
            logger.info("[%s] complete already in %s; reused", job.name, job_dir)
            return old
        for reason in changes(old, version, files, upstream):
            logger.info("[%s] %s: recomputing", job.name, reason)
    problems = [] if checked else preflight(job, inputs, base)
    if problems:
        raise InvalidSpec(problems)
    try:
        with (
            job_folder(job_dir, replace=True) as tmp,
            job_logger(job.name, tmp / JOB_LOG, quiet) as log,
        ):
            context = RunContext(tmp, base, log.info, quiet, backend or Backend(), tuple(command))
            outcome = job.definition.run(job.params, inputs, context)
            declared = {s.name for s in job.outputs}
            if set(outcome.outputs) != declared:
                raise RuntimeError(
                    f"job {job.name} produced outputs {sorted(outcome.outputs)}, declared "
                    f"{sorted(declared)}"
                )
            manifest = _manifest(job, outcome, spec_fp, stamp).model_copy(
                update={"inputs": files, "upstream": upstream, "command": list(command)}
            )
            text = manifest.model_dump_json(indent=2) + "\n"
            atomic_write(tmp / "result.json", lambda path: path.write_text(text))
    except OSError as exc:
        storage = storage_error(exc, job_dir.parent)
        if storage is None:
            raise
        raise storage from exc
    return manifest


def _details(job: ResolvedJob, outcome: JobOutcome) -> dict[str, Any] | None:
    """The job's own document for the manifest, checked against the model the job declares."""
    assert job.definition is not None
    model, details = job.definition.details_model, outcome.details
    if model is None and details is None:
        return None
    if model is None or not isinstance(details, model):
        raise RuntimeError(
            f"job {job.name} returned details of type {type(details).__name__}, declared "
            f"{model.__name__ if model is not None else 'none'} (its details_model)"
        )
    return details.model_dump(mode="json")


def _manifest(job: ResolvedJob, outcome: JobOutcome, spec_fp: str, stamp: str) -> ResultManifest:
    assert job.definition is not None and job.params is not None
    return ResultManifest(
        job=job.name,
        job_type=job.definition.name,
        align3d_version=align3d_version(),
        spec_fingerprint=spec_fp,
        fingerprint=stamp,
        params=job.params.model_dump(mode="json"),
        outputs={
            k: v.model_dump(mode="json", exclude_none=True) for k, v in outcome.outputs.items()
        },
        warnings=outcome.warnings,
        details=_details(job, outcome),
    )


def run_document(
    data: Any,
    base: Path,
    out_dir: Path,
    registry: Mapping[str, JobDefinition],
    force: bool = False,
    quiet: bool = False,
    backend: Backend | None = None,
    command: Sequence[str] = (),
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
    depends = {name: set(resolution.graph.predecessors(name)) for name in order}

    def folder(name: str) -> Path:
        return (out_dir if single else out_dir / name).absolute()

    for name in order:  # every output folder is checked before any work (engine/outputs.py)
        check_job_folder(folder(name))
        _decide_reuse(
            resolution.jobs[name], folder(name), spec_fingerprint(resolution.jobs[name]), force
        )
    # every input file that can be checked now is checked before anything is written (but
    # those of jobs that will be reused as they are)
    skip = set() if force else likely_reused(resolution, folder)
    issues, checked, output_bytes = preflight_document(resolution, base, skip)
    problems = [i for i in issues if i.level == "error"]
    if problems:
        raise InvalidSpec(problems)
    check_free_space(out_dir, output_bytes)

    def run(name: str) -> ResultManifest:
        return run_job(
            resolution.jobs[name],
            folder(name),
            base,
            done,
            force,
            quiet,
            backend,
            command,
            checked=name in checked,
        )

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
