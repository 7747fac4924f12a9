"""An interrupt that lands in a finaliser or in a callback from C is not lost: it is sent again
and stops the command (:mod:`align3d.engine.interrupts`). Found by the interrupt test of ``align3d run``:
now and then a Ctrl-C landed in llvmlite's ``__del__`` while numba loaded the kernels, or in
threadpoolctl's ctypes callback, and the run went on to its end."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from align3d.engine.cli import _interrupt
from align3d.engine.interrupts import lost_interrupts_resent


def _run_for(seconds: float) -> None:
    """Python code for ``seconds``: a signal's handler runs here."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def _in_a_finaliser(sig: signal.Signals) -> None:
    class Finaliser:
        def __del__(self) -> None:
            os.kill(os.getpid(), sig)
            _run_for(0.2)  # the handler raises here, inside __del__: Python ignores it

    item = Finaliser()
    del item


def _in_a_c_callback(sig: signal.Signals) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    compare_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)
    )
    sent: list[bool] = []

    def compare(a: Any, b: Any) -> int:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), sig)
            _run_for(0.2)  # raised inside a ctypes callback: Python ignores it
        return a[0] - b[0]

    values = (ctypes.c_int * 4)(3, 1, 2, 0)
    libc.qsort(values, len(values), ctypes.sizeof(ctypes.c_int), compare_type(compare))


@pytest.mark.parametrize("lands_in", [_in_a_finaliser, _in_a_c_callback])
def test_a_lost_ctrl_c_is_sent_again(lands_in: Callable[[signal.Signals], None]) -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with lost_interrupts_resent():
            lands_in(signal.SIGINT)
            _run_for(5.0)  # the command goes on: the interrupt must stop it here
    assert time.monotonic() - started < 4.0


@pytest.mark.parametrize("lands_in", [_in_a_finaliser, _in_a_c_callback])
def test_without_it_the_interrupt_is_lost(lands_in: Callable[[signal.Signals], None]) -> None:
    """What the hook is for: Python itself drops the interrupt (hands it to the unraisable
    hook) and goes on."""
    dropped: list[BaseException] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: dropped.append(unraisable.exc_value)
    try:
        lands_in(signal.SIGINT)
        _run_for(0.3)  # reached: nothing stopped the code
    finally:
        sys.unraisablehook = previous
    assert [type(e) for e in dropped] == [KeyboardInterrupt]


def test_a_lost_sigterm_is_sent_again_as_sigterm() -> None:
    previous = signal.signal(signal.SIGTERM, _interrupt)  # the command's SIGTERM handler
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            with lost_interrupts_resent():
                _in_a_finaliser(signal.SIGTERM)
                _run_for(5.0)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_other_lost_exceptions_are_reported_as_before() -> None:
    seen: list[BaseException] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: seen.append(unraisable.exc_value)
    try:

        class Broken:
            def __del__(self) -> None:
                raise ValueError("a finaliser's own error")

        with lost_interrupts_resent():
            item = Broken()
            del item
        assert sys.unraisablehook is not previous  # ours was removed, the test's is back
    finally:
        sys.unraisablehook = previous
    assert [str(e) for e in seen] == ["a finaliser's own error"]
