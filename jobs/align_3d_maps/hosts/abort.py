"""An abort request from a manager's GUI (RELION's ``RELION_JOB_ABORT_NOW``), delivered to the
job as Ctrl-C is (align3d then removes what it had not finished), and delivered for sure.

A ``KeyboardInterrupt`` raised while the main thread runs a callback from C (llvmlite's, while
numba loads the compiled kernels) or a finaliser is printed as "Exception ignored" and lost: the
job would run to the end. So the interrupt is raised only where it propagates, and the watcher
asks again until it has been.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

RETRY_S = 0.2
"""How soon the watcher asks again when the interrupt could not be raised where it landed."""


def _would_be_lost(frame: FrameType | None) -> bool:
    """Whether an exception raised in ``frame`` would be lost: inside a callback from C
    (llvmlite's) or a finaliser (``__del__``), somewhere on the stack."""
    marker = f"{os.sep}llvmlite{os.sep}"
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or marker in code.co_filename:
            return True
        frame = frame.f_back
    return False


class AbortWatch:
    """Watch ``job_dir`` for the file ``name``; when it appears, interrupt the main thread.

    Use as a context manager in the main thread: it installs its SIGINT handler (a plain Ctrl-C
    still interrupts at once) and polls every ``period_s`` seconds."""

    def __init__(self, job_dir: Path, name: str, period_s: float = 1.0) -> None:
        self.job_dir = job_dir
        self.name = name
        self.period_s = period_s
        self.requested = threading.Event()
        self.raised = threading.Event()
        self._stop = threading.Event()
        self._previous: Any = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set() and not self.raised.is_set() and _would_be_lost(frame):
            return  # the watcher asks again in RETRY_S
        self.raised.set()
        raise KeyboardInterrupt(self.name if self.requested.is_set() else "SIGINT")

    def _watch(self) -> None:
        while not self._stop.wait(self.period_s):
            if (self.job_dir / self.name).exists():
                self.requested.set()
                while not self.raised.is_set() and not self._stop.is_set():
                    os.kill(os.getpid(), signal.SIGINT)
                    self._stop.wait(RETRY_S)
                return

    def __enter__(self) -> AbortWatch:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        threading.Thread(target=self._watch, daemon=True, name="abort-watch").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        signal.signal(signal.SIGINT, self._previous)
