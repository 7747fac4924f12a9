"""Run independent tasks (one per volume) serially, in local processes, or on a Dask cluster.

Results come back in task order and are the same numbers whatever the backend: every task is
deterministic, and the compiled kernels sum in a fixed order whatever their thread count.

* ``processes`` (the default): the main process and spawned processes, as many in all as the
  cores allow and as fit in the available memory (an estimate of each task's peak from its box
  sizes); each gets ``cores // workers`` threads for numba, FFTs and BLAS, so the cores are not
  oversubscribed.
* ``dask``: tasks go to a Dask ``distributed`` scheduler (``tcp://HOST:PORT``, or ``local`` for
  a local cluster); files are read on the workers, so paths must be on a shared filesystem. A
  task whose worker dies is retried (twice), then the job fails with :class:`TaskFailed`.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Literal, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BASE_PROCESS_BYTES = 350 * 2**20  # interpreter, numpy, scipy, numba, compiled kernels
BYTES_PER_VOXEL = 40  # float32 map, spectra, spline coefficients, outputs, FSC temporaries
SCHEDULER_ENV = "ALIGN3D_SCHEDULER"
MIN_TASKS_PER_WORKER = 3
"""Below this many tasks per worker, an automatic plan runs them in the main process."""


class TaskFailed(RuntimeError):
    """A task could not be completed (its worker died and the retries ran out)."""


@dataclass(frozen=True)
class Backend:
    """Where tasks run. ``workers``: upper bound on local processes (None: automatic)."""

    kind: Literal["serial", "processes", "dask"] = "processes"
    workers: int | None = None
    scheduler: str | None = None

    @classmethod
    def from_options(cls, workers: int | None, scheduler: str | None) -> Backend:
        """``--scheduler`` (or ``$ALIGN3D_SCHEDULER``) picks Dask; ``--workers 1`` is serial."""
        address = scheduler or os.environ.get(SCHEDULER_ENV)
        if address:
            return cls("dask", workers, address)
        if workers == 1:
            return cls("serial")
        return cls("processes", workers)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_memory_bytes() -> int:
    """``MemAvailable`` from ``/proc/meminfo`` (Linux), else a conservative 4 GiB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30


def task_memory_bytes(voxels: int) -> int:
    """Estimated peak memory of one alignment task whose maps hold ``voxels`` voxels in all."""
    return BASE_PROCESS_BYTES + BYTES_PER_VOXEL * voxels


def plan_workers(tasks: int, memory_per_task: int, limit: int | None = None) -> tuple[int, int]:
    """``(workers, threads per worker)`` within the cores, the memory and ``limit``."""
    cores = cpu_count()
    by_memory = max(1, available_memory_bytes() // max(memory_per_task, 1))
    workers = max(1, min(cores, tasks, by_memory, limit or cores))
    return workers, max(1, cores // workers)


def limit_threads(threads: int) -> None:
    """Keep numba, FFTs and BLAS of this process to ``threads`` threads."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # FFTs follow it
    threadpool_limits(threads)


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
        return _run_dask(function, tasks, backend, notify)
    workers, threads = plan_workers(len(tasks), memory_per_task, backend.workers)
    # a spawned worker needs ~2-3 s to start (about one task at 128^3): with few tasks per
    # worker it would compete for the cores rather than help
    few = backend.workers is None and len(tasks) < MIN_TASKS_PER_WORKER * workers
    if backend.kind == "serial" or workers == 1 or few:
        results = []
        for i, task in enumerate(tasks):
            results.append(function(task))
            notify(i, results[-1])
        return results
    return _run_processes(function, tasks, workers, threads, notify)


def _run_processes(
    function: Callable[[T], R],
    tasks: Sequence[T],
    workers: int,
    threads: int,
    notify: Callable[[int, R], None],
) -> list[R]:
    """The main process works too, beside ``workers - 1`` spawned processes: it is already
    warm (numba kernels loaded), so the cores are busy while the others start. Tasks are handed
    out one at a time to whoever is free first, so no one waits at the end for a queue."""
    import numba

    out: list[Any] = [None] * len(tasks)
    pending = deque(enumerate(tasks))
    futures: dict[Future[R], int] = {}
    collected: set[Future[R]] = set()
    lock = threading.Lock()
    main_threads = numba.get_num_threads()

    def take() -> tuple[int, T] | None:
        with lock:
            return pending.popleft() if pending else None

    with ProcessPoolExecutor(
        max_workers=workers - 1,
        mp_context=get_context("spawn"),  # no fork of a process with numba threads running
        initializer=limit_threads,
        initargs=(threads,),
    ) as pool:

        def feed() -> None:
            """Give a worker its next task as soon as it is free (called when one finishes)."""
            item = take()
            if item is None:
                return
            try:
                future = pool.submit(function, item[1])
            except RuntimeError:  # the pool is shutting down (an error or an interrupt)
                return
            with lock:
                futures[future] = item[0]
            future.add_done_callback(lambda _: feed())

        def collect(block: bool) -> None:
            with lock:
                open_ = [f for f in futures if f not in collected]
            done = (
                wait(open_, return_when=FIRST_COMPLETED).done
                if block and open_
                else [f for f in open_ if f.done()]
            )
            for future in done:
                collected.add(future)
                out[futures[future]] = future.result()
                notify(futures[future], out[futures[future]])

        for _ in range(workers - 1):
            feed()
        try:
            numba.set_num_threads(threads)
            while (item := take()) is not None:
                out[item[0]] = function(item[1])
                notify(item[0], out[item[0]])
                collect(block=False)
        finally:
            numba.set_num_threads(main_threads)
        while len(collected) < len(futures) or pending:
            collect(block=True)
    return out


def _run_dask(
    function: Callable[[T], R],
    tasks: Sequence[T],
    backend: Backend,
    notify: Callable[[int, R], None],
) -> list[R]:
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError as exc:  # the optional extra is not installed
        raise TaskFailed(
            "the Dask backend needs the optional extra: pip install 'align3d[dask]'"
        ) from exc
    cluster = None
    address = backend.scheduler or "local"
    if address.startswith("local"):
        n = int(address.split(":", 1)[1]) if ":" in address else cpu_count()
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        client = Client(address, timeout="30s")
    try:
        futures = client.map(function, list(tasks), pure=False, retries=2)
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(tasks)
        for future in dask_completed(futures):
            i = index[future.key]
            try:
                out[i] = future.result()
            except Exception as exc:
                if type(exc).__name__ in ("KilledWorker", "CommClosedError"):
                    raise TaskFailed(
                        f"task {i + 1} failed: its Dask worker died repeatedly ({exc}); "
                        "no output was kept"
                    ) from exc
                raise
            notify(i, out[i])
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
