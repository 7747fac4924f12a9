"""Atomic file writes: a file appears complete or not at all.

The data go to a temporary file beside the target (``.NAME.tmp-PID-RANDOM``, the same file
system, so that the final rename is atomic) and are renamed into place. A temporary file left
by a process that was killed outright (SIGKILL, a power cut) names its process: the next write
of the same target removes the ones whose process is gone.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine) now."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def stale_temporaries(target: Path) -> list[Path]:
    """Temporary siblings of ``target`` (files or folders) whose writing process is gone."""
    prefix = temporary_prefix(target)
    pattern = re.compile(re.escape(prefix) + r"(\d+)(?:-.*)?$")
    stale = []
    if not target.parent.is_dir():
        return stale
    for entry in target.parent.iterdir():
        match = pattern.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not process_alive(int(match.group(1))):
            stale.append(entry)
    return sorted(stale)


def atomic_write(target: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then rename it to ``target``. On any error
    (or an interrupt) the temporary file is removed and ``target`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in stale_temporaries(target):
        if old.is_file():
            old.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{temporary_prefix(target)}{os.getpid()}-", dir=target.parent
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
