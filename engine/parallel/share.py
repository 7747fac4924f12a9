"""The cores of a run shared among its busy processes, rebalanced as tasks finish.

A run's local processes (the main one and its workers) count, in one shared integer, how many
of them are working on a task. A task asks :func:`rebalance` for its share at the start of each
heavy stage: ``cores // busy``. So when the last volumes of a job run on fewer processes than
there are cores, they take the idle cores for their remaining stages instead of leaving them
unused. The compiled kernels sum in a fixed order whatever their thread count, so the numbers
do not change with the share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CoreShare:
    """The shared count of busy processes (a ``multiprocessing.Value``) and the cores."""

    busy: Any
    cores: int

    def threads(self) -> int:
        with self.busy.get_lock():
            busy = max(1, int(self.busy.value))
        return max(1, self.cores // busy)


_SHARE: list[CoreShare] = []
"""This process's share, when it belongs to a run's local processes (set once per process)."""


def join(share: CoreShare) -> None:
    """Make this process count in ``share`` (a worker at its start, the main process before it
    works on tasks itself)."""
    _SHARE[:] = [share]


@contextmanager
def busy() -> Iterator[None]:
    """Count this process as busy for the duration of a task."""
    share = _SHARE[0] if _SHARE else None
    if share is None:
        yield
        return
    with share.busy.get_lock():
        share.busy.value += 1
    try:
        yield
    finally:
        with share.busy.get_lock():
            share.busy.value -= 1


def rebalance() -> int | None:
    """Set the kernels' threads to this process's current share of the cores; returns it (None
    outside a run's local processes, where the thread count stays as it is)."""
    if not _SHARE:
        return None
    from align3d.engine.alignment.jit import set_threads

    count = _SHARE[0].threads()
    set_threads(count)
    return count
