"""Where a host's job runs align3d: a job spec written into the host's job folder
(``align3d_job.json``, absolute paths) and ``align3d run`` into its ``align3d/`` subfolder (the
host's own files, such as RELION's ``run.out`` or the pipeliner's ``job.star``, stay beside
it). A host reruns a job in the same folder: a changed request replaces the old results, an
unchanged one with unchanged inputs reuses them. A host that runs ``align3d`` in its own
process and must report a failure in its manager gets align3d's message with the exit code
(:func:`run_align3d`)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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


@contextlib.contextmanager
def _stderr_copied() -> Iterator[io.StringIO]:
    """What is written to standard error, kept as well as shown."""
    kept = io.StringIO()
    shown = sys.stderr

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            kept.write(text)
            return shown.write(text)

        def flush(self) -> None:
            shown.flush()

    with contextlib.redirect_stderr(Tee()):  # type: ignore[type-var]
        yield kept


def _message(printed: str, code: int) -> str:
    """align3d's own report of a failed run: its error lines, else what it printed."""
    lines = [line for line in printed.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return "\n".join(errors or lines[-20:]) or f"align3d run ended with exit code {code}"


@dataclass(frozen=True)
class Align3dRun:
    """How an ``align3d`` run in this process ended: its exit ``code`` and, when it failed,
    its own ``message``."""

    code: int
    message: str = ""


def run_align3d(arguments: list[str]) -> Align3dRun:
    """Run ``align3d`` in this process (its output shown as usual); its exit code and, when it
    failed, its own message (the error lines it printed), for the host to show its user."""
    from align3d.engine.cli import main as align3d

    with _stderr_copied() as printed:
        code = align3d(arguments)
    return Align3dRun(code, "" if code == 0 else _message(printed.getvalue(), code))


def _read_json(path: Path) -> Any:
    """The JSON document in ``path``; None when it is not JSON (an earlier spec cut short)."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
