"""Ending a command's process quickly once its work is done.

A process that has loaded numba, llvmlite and scipy spends 0.15-0.4 s (measured on a 2-core
machine, ``benchmarks/run.py``'s 128^3 case) in the interpreter's teardown: freeing every
module, one object at a time. Nothing is left to do by then, so a console command ends with
:func:`exit_process`: everything a normal exit does that can matter (non-daemon threads joined,
thread pools shut down, ``atexit`` handlers run: worker processes ended, temporary folders
removed, log handlers flushed; unreachable objects collected, which closes any file left open;
standard streams flushed) and then ``os._exit``. Only the entry points call it; ``main()``
functions return their exit code as before (tests call them in-process).
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
import threading
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """Exit with ``code``: a normal exit's clean-up, without the interpreter's teardown. Where
    this Python lacks the hooks used here, a normal ``sys.exit``."""
    join_threads = getattr(threading, "_shutdown", None)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if join_threads is None or run_exit_handlers is None:
        sys.exit(code)
    join_threads()  # as at a normal exit: waits for non-daemon threads, shuts pools down
    run_exit_handlers()
    logging.shutdown()
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
            pass
    os._exit(code)
