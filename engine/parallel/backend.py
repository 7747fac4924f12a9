"""Where the tasks of a job run: serially, in local processes, or on a Dask cluster."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

SCHEDULER_ENV = "ALIGN3D_SCHEDULER"
T = TypeVar("T")
R = TypeVar("R")


class TaskFailed(RuntimeError):
    """A task could not be completed: its local worker process died, or its Dask worker died
    and the retries ran out."""


class SchedulerUnreachable(RuntimeError):
    """The Dask scheduler did not answer in time (the message names its address)."""


class WorkerPool(Protocol):
    """Warm local workers shared by the jobs of a run (:class:`align3d.engine.parallel.local.LocalPool`)."""

    size: int
    usable: bool
    share: Any
    """The run's :class:`align3d.engine.parallel.share.CoreShare`."""

    def submit(self, function: Callable[[T], R], task: T, threads: int) -> Future[R]: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Backend:
    """Where tasks run. ``workers``: upper bound on local processes (None: automatic)."""

    kind: Literal["serial", "processes", "dask"] = "processes"
    workers: int | None = None
    scheduler: str | None = None
    scheduler_timeout_s: float = 10.0
    """How long to wait for a Dask scheduler to answer."""
    pool: WorkerPool | None = field(default=None, compare=False, repr=False)
    """Warm local workers shared by the jobs of a run (see :func:`align3d.engine.parallel.local.warm_workers`)."""

    @classmethod
    def from_options(
        cls, workers: int | None, scheduler: str | None, scheduler_timeout_s: float = 10.0
    ) -> Backend:
        """``--scheduler`` (or ``$ALIGN3D_SCHEDULER``) picks Dask; ``--workers 1`` is serial."""
        address = scheduler or os.environ.get(SCHEDULER_ENV)
        if address:
            return cls("dask", workers, address, scheduler_timeout_s)
        if workers == 1:
            return cls("serial")
        return cls("processes", workers)
