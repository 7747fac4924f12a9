"""A GUI's abort request reaches the job even when it lands where Python would lose an
interrupt (a finaliser, a callback from C such as llvmlite's while numba loads kernels)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from align3d.jobs.align_3d_maps.hosts.abort import AbortWatch


def _wait(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


def test_an_abort_that_lands_in_a_finaliser_is_raised_after_it(tmp_path: Path) -> None:
    finished: list[bool] = []

    class Finaliser:
        def __del__(self) -> None:
            (tmp_path / "ABORT").touch()  # the request comes while this runs
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:  # Python code: the signal is handled here
                pass
            finished.append(True)

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="ABORT"):
        with AbortWatch(tmp_path, "ABORT", period_s=0.05):
            item = Finaliser()
            del item  # an interrupt raised in __del__ is printed and lost
            _wait(10.0)
    assert finished == [True]  # the finaliser was not cut short
    assert time.monotonic() - started < 5.0  # the abort came soon after it, not at the end


def test_a_plain_ctrl_c_still_interrupts_and_no_file_means_no_abort(tmp_path: Path) -> None:
    import os
    import signal

    with AbortWatch(tmp_path, "ABORT", period_s=0.05):
        _wait(0.3)  # no file: nothing happens
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        with AbortWatch(tmp_path, "ABORT", period_s=0.05):
            os.kill(os.getpid(), signal.SIGINT)
            _wait(5.0)
