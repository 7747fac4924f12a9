"""Where a host's job runs align3d: a job spec written into the host's job folder
(``align3d_job.json``, absolute paths) and ``align3d run`` into its ``align3d/`` subfolder (the
host's own files, such as RELION's ``run.out`` or the pipeliner's ``job.star``, stay beside
it). A host reruns a job in the same folder: a changed request replaces the old results, an
unchanged one with unchanged inputs reuses them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from align3d.schemas.documents import JobSpec
from align3d.slots.atomic import atomic_write

SPEC_NAME = "align3d_job.json"
RUN_FOLDER = "align3d"


def write_spec(job_dir: Path, spec: JobSpec) -> bool:
    """Write the job spec into ``job_dir``; True when it differs from the one an earlier run
    left there (so that its results are replaced, not reused)."""
    target = job_dir / SPEC_NAME
    document = spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    text = json.dumps(document, indent=2) + "\n"
    changed = not target.is_file() or _read_json(target) != document
    atomic_write(target, lambda tmp: tmp.write_text(text))
    return changed


def run_arguments(job_dir: Path, replace: bool, workers: int | None = None) -> list[str]:
    """The arguments of ``align3d`` that run the spec of ``job_dir``."""
    arguments = ["run", str(job_dir / SPEC_NAME), "--out", str(job_dir / RUN_FOLDER)]
    if workers is not None:
        arguments += ["--workers", str(workers)]
    return [*arguments, "--force"] if replace else arguments


def _read_json(path: Path) -> Any:
    """The JSON document in ``path``; None when it is not JSON (an earlier spec cut short)."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
