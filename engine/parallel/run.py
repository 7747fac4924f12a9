"""Run independent tasks on a backend: the one entry point of :mod:`align3d.engine.parallel`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from align3d.engine.parallel.backend import Backend
from align3d.engine.parallel.dask_backend import run_dask
from align3d.engine.parallel.local import LocalPool, run_in_pool
from align3d.engine.parallel.plan import MIN_TASKS_PER_WORKER, cpu_count, plan_workers

T = TypeVar("T")
R = TypeVar("R")


def run_tasks(
    function: Callable[[T], R],
    tasks: Sequence[T],
    backend: Backend,
    memory_per_task: int,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[function(t) for t in tasks]`` on ``backend``; ``on_result(i, result)`` is called as
    each task finishes (in completion order); the returned list is in task order."""
    notify = on_result or (lambda i, r: None)
    if backend.kind == "dask":
        return run_dask(function, tasks, backend, notify)
    workers, threads = plan_workers(len(tasks), memory_per_task, backend.workers)
    pool = backend.pool if backend.pool is not None and backend.pool.usable else None
    if pool is not None:
        workers = min(workers, pool.size + 1)
        threads = max(1, cpu_count() // workers)
    # a spawned worker needs ~2-3 s to start (about one task at 128^3): with few tasks per
    # worker it would compete for the cores rather than help
    few = pool is None and backend.workers is None and len(tasks) < MIN_TASKS_PER_WORKER * workers
    if backend.kind == "serial" or workers == 1 or few:
        results = []
        for i, task in enumerate(tasks):
            results.append(function(task))
            notify(i, results[-1])
        return results
    if pool is not None:
        return run_in_pool(function, tasks, pool, workers - 1, threads, notify)
    pool = LocalPool(workers - 1, "spawn")
    try:
        return run_in_pool(function, tasks, pool, workers - 1, threads, notify)
    finally:
        pool.close()
