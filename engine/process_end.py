"""Ending a command's process quickly once its work is done, and for sure.

A process that has loaded numba, llvmlite and scipy spends 0.15-0.4 s (measured on a 2-core
machine, ``benchmarks/run.py``'s 128^3 case) in the interpreter's teardown: freeing every
module, one object at a time. Nothing is left to do by then, so a console command ends with
:func:`exit_process`: everything a normal exit does that can matter (non-daemon threads joined,
thread pools shut down, ``atexit`` handlers run: worker processes ended, temporary folders
removed, log handlers flushed; standard streams flushed) and then ``os._exit``. A normal exit
also collects the unreachable objects, running their finalisers (an unclosed file in a reference
cycle). That walks every object the process holds: tens of milliseconds once numba and scipy
are loaded, a few per cent of a 256^3 alignment. So it is done only where a finaliser could
still write something: while a file other than the standard streams is open for writing
(Linux's ``/proc/self/fdinfo``; elsewhere always). Only the entry points call it; ``main()``
functions return their exit code as before (tests call them in-process).

That clean-up is bounded: a workflow manager (RELION, the pipeliner) waits for the process to
end before it reads the job's exit marker, so a clean-up step that never returns (a thread or a
worker process's pool machinery left waiting by an interrupt) must not hang the job. After
:data:`CLEANUP_LIMIT_S` the process says so on stderr, with every thread's stack (what it was
waiting for), and ends with its exit code.
"""

from __future__ import annotations

import atexit
import faulthandler
import gc
import logging
import os
import sys
import threading
from typing import NoReturn

CLEANUP_LIMIT_S = 30.0
"""Seconds the clean-up at exit may take before the process ends without it (it takes
milliseconds when nothing is stuck)."""


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
            pass


def _end_if_stuck(code: int, limit_s: float, finished: threading.Event) -> None:
    """Watchdog: end the process with ``code`` if the clean-up has not finished in time."""
    if finished.wait(limit_s):
        return
    try:
        sys.stderr.write(
            f"align3d: the clean-up at exit did not finish in {limit_s:g} s; ending the process "
            f"anyway (its work is done, exit code {code}). Where each thread was waiting:\n"
        )
        sys.stderr.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    except (OSError, ValueError):
        pass
    _flush_standard_streams()
    os._exit(code)


def files_open_for_writing() -> bool:
    """Whether a file descriptor other than stdin, stdout and stderr is open for writing (one
    that a finaliser could still write to); True where that cannot be told."""
    try:
        descriptors = os.listdir("/proc/self/fdinfo")
    except OSError:
        return True
    for name in descriptors:
        if not name.isdigit() or int(name) <= 2:
            continue
        try:
            with open(f"/proc/self/fdinfo/{name}", encoding="ascii") as info:
                fields = dict(line.split(":", 1) for line in info if ":" in line)
        except OSError:  # closed since the listing (the listing's own descriptor)
            continue
        try:
            flags = int(fields["flags"].strip(), 8)
        except (KeyError, ValueError):
            return True
        if flags & (os.O_WRONLY | os.O_RDWR):
            return True
    return False


def exit_process(code: int, cleanup_limit_s: float = CLEANUP_LIMIT_S) -> NoReturn:
    """Exit with ``code``: a normal exit's clean-up, without the interpreter's teardown, within
    ``cleanup_limit_s`` seconds. Where this Python lacks the hooks used here, a normal
    ``sys.exit``."""
    join_threads = getattr(threading, "_shutdown", None)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if join_threads is None or run_exit_handlers is None:
        sys.exit(code)
    finished = threading.Event()
    threading.Thread(
        target=_end_if_stuck,
        args=(code, cleanup_limit_s, finished),
        daemon=True,  # not joined by the clean-up it watches
        name="exit-watchdog",
    ).start()
    join_threads()  # as at a normal exit: waits for non-daemon threads, shuts pools down
    run_exit_handlers()
    logging.shutdown()
    if files_open_for_writing():
        gc.collect()
    finished.set()
    _flush_standard_streams()
    os._exit(code)
