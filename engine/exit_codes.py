"""Exit codes of the ``align3d`` commands (the README's table is generated from this list)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    INTERNAL_ERROR = 1
    INVALID_INPUT = 2
    BUSY = 3
    TASK_FAILED = 4
    SCHEDULER_UNREACHABLE = 5
    CANNOT_WRITE = 6
    INTERRUPTED = 130


MEANING = {
    Exit.OK: "success (completed job folders whose inputs are unchanged are reused)",
    Exit.INVALID_INPUT: "invalid input, every problem listed with its file, slot or parameter "
    "and what to do (see the error codes), or an output that is there already (output_exists: "
    "checked before any work; --force replaces it); nothing is written",
    Exit.BUSY: "the output folder is being written by another align3d run (a lock beside it)",
    Exit.TASK_FAILED: "a task failed on its worker (a worker died and the retries ran out); "
    "nothing partial is kept",
    Exit.SCHEDULER_UNREACHABLE: "the Dask scheduler given by --scheduler (or $ALIGN3D_SCHEDULER) "
    "did not answer within --scheduler-timeout seconds; nothing was written",
    Exit.CANNOT_WRITE: "the outputs cannot be written: too little free space for the estimated "
    "output (checked before any work), or a write failed (disk full, quota exceeded, read-only "
    "file system, permission denied); the folder and the cause are named, nothing partial is kept",
    Exit.INTERRUPTED: "interrupted (SIGINT or SIGTERM, or the reader of the output went away, "
    "as in `align3d describe | head`): unfinished job folders are removed, "
    "completed ones kept; the same command finishes the work",
    Exit.INTERNAL_ERROR: "internal error (a bug): the traceback is printed; please report it",
}
