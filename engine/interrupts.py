"""Interrupts that always stop a command: Ctrl-C (SIGINT) and SIGTERM (a scheduler, a manager
ending the job) raise ``KeyboardInterrupt`` in the main thread wherever it is.

Where that is a finaliser (``__del__``: llvmlite's, while numba loads the compiled kernels) or a
callback from C (ctypes: threadpoolctl's scan of the loaded libraries), the exception cannot
propagate: Python reports it as "Exception ignored" and goes on, and the command would run to
its end as if nothing had been asked. Such a lost interrupt reaches ``sys.unraisablehook``;
:func:`lost_interrupts_resent` makes that hook send the same signal again, which lands anew at
the next line the main thread runs (soon outside the callback) and stops the command.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

RESEND_S = 0.02
"""How long after an interrupt was lost it is sent again (the hook has returned by then; if the
main thread is still in the callback, it is lost and sent again once more)."""


def signal_of(interrupt: BaseException) -> signal.Signals:
    """The signal that raised ``interrupt``: SIGTERM when it says so (the command's SIGTERM
    handler names it), else SIGINT."""
    return signal.SIGTERM if str(interrupt) == "SIGTERM" else signal.SIGINT


@contextmanager
def lost_interrupts_resent() -> Iterator[None]:
    """Within this block, an interrupt lost in a finaliser or a callback from C is sent again
    (and not reported as ignored). Other unraisable exceptions are reported as before."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        lost = unraisable.exc_value
        if isinstance(lost, KeyboardInterrupt) and threading.current_thread() is (
            threading.main_thread()
        ):
            # sent from another thread a moment later: sent from here, its handler would run
            # (and raise) inside this hook, where it would be lost for good
            resend = threading.Timer(RESEND_S, os.kill, (os.getpid(), signal_of(lost)))
            resend.daemon = True
            resend.start()
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
