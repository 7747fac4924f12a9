"""Where a command's outputs go, checked before any work: the one overwrite rule.

**The rule** (``align --out``/``--json``/``--mask-out``/``--report``, ``apply --out``,
``run --out``, the demo's job folders): align3d never replaces an existing output unless ``--force`` is given. A
job folder that holds the same completed job, with unchanged inputs, is reused rather than
replaced (that is not an overwrite: nothing changes). Whatever ``--force`` says, align3d never
writes over one of its own input files, never puts a file where a folder is (or a folder where
a file is), and never removes a folder that is not an align3d job folder (one with
``result.json``) or report folder (one with ``report.html``).

A refusal is an :class:`~align3d.engine.store.OutputExists` (exit code 2, error code
``output_exists``) whose message names the path and the option, and says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from align3d.engine.store import OutputExists

FORCE = "--force"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _not_a_folder(path: Path, option: str, blocking: Path) -> OutputExists:
    what = (
        f"{option} {path} is a file"
        if blocking == path
        else f"{option} {path}: {blocking} is a file"
    )
    return OutputExists(f"{what}, not a folder; choose another {option}")


def _blocking_parent(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a folder (the folder cannot be
    made), or None."""
    for parent in Path(os.path.abspath(path)).parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_file(path: Path, option: str, force: bool, inputs: Iterable[Path] = ()) -> None:
    """``path``, a file the command will write (given by ``option``): refused when it is one of
    ``inputs``, a folder, below a file, or (without ``force``) an existing file."""
    for given in inputs:
        if Path(os.path.abspath(path)) == Path(os.path.abspath(given)) or _same_file(path, given):
            raise OutputExists(
                f"{option} {path} is also an input file; align3d never writes over its inputs: "
                f"choose another {option}"
            )
    if path.is_dir():
        raise OutputExists(
            f"{option} {path} is a folder; give the file to write, e.g. "
            f"{option} {path / ('aligned.mrc' if option == '--out' else 'summary.json')}"
        )
    blocking = _blocking_parent(path)
    if blocking is not None:
        raise _not_a_folder(path, option, blocking)
    if path.exists() and not force:
        raise OutputExists(
            f"{option} {path} exists; use {FORCE} to replace it, or choose another {option}"
        )


def check_folder_path(path: Path, option: str) -> None:
    """``path`` can be a folder: it is not a file, nor below one."""
    blocking = path if path.exists() and not path.is_dir() else _blocking_parent(path)
    if blocking is not None:
        raise _not_a_folder(path, option, blocking)


def check_output_folder(path: Path, option: str, force: bool, marker: str) -> None:
    """``path``, a folder the command will fill (given by ``option``): refused when it is a
    file, below a file, or not empty; with ``force``, a folder that holds ``marker`` (the file
    align3d writes into such a folder, e.g. ``report.html``) is replaced."""
    check_folder_path(path, option)
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not (path / marker).is_file():
        raise OutputExists(
            f"{option} {path} is a folder of other files (no {marker}); align3d does not replace "
            f"it, even with {FORCE}: choose another {option}"
        )
    if not force:
        raise OutputExists(
            f"{option} {path} holds earlier results; use {FORCE} to replace them, or choose "
            f"another {option}"
        )


def check_distinct(outputs: Mapping[str, Path]) -> None:
    """Two options that would write the same file (``--out`` and ``--json``, say)."""
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        key = Path(os.path.abspath(path))
        if key in seen:
            raise OutputExists(
                f"{seen[key]} and {option} name the same file, {path}; give each its own"
            )
        seen[key] = option


def check_outside(folder: Path, option: str, outputs: Mapping[str, Path]) -> None:
    """Files written beside a folder that appears whole (``option``, renamed into place at the
    end) must not lie inside it: they would be lost when it is."""
    inside = Path(os.path.abspath(folder))
    for other, path in outputs.items():
        if inside in Path(os.path.abspath(path)).parents:
            raise OutputExists(
                f"{other} {path} lies inside {option} {folder}; give them separate places"
            )


def check_job_folder(job_dir: Path) -> None:
    """A job folder of ``run --out``: a file there, or a folder of other things (no
    ``result.json``), is refused whatever ``--force`` says (``--force`` replaces completed
    job folders only; :func:`align3d.engine.executor.run_job` decides reuse)."""
    blocking = job_dir if job_dir.exists() and not job_dir.is_dir() else _blocking_parent(job_dir)
    if blocking is not None:
        raise _not_a_folder(job_dir, "--out", blocking)
    if job_dir.is_dir() and not (job_dir / "result.json").exists() and any(job_dir.iterdir()):
        raise OutputExists(
            f"{job_dir} exists, is not empty and holds no align3d job (no result.json); "
            f"align3d does not replace it, even with {FORCE}: choose another --out"
        )
