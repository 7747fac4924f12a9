"""Run independent tasks (one per volume) serially, in local processes, or on a Dask cluster.

Results come back in task order and are the same numbers whatever the backend: every task is
deterministic, and the compiled kernels sum in a fixed order whatever their thread count.

* ``processes`` (the default): the main process and worker processes, as many in all as the
  cores allow and as fit in the available memory (an estimate of each task's peak from its box
  sizes); each gets ``cores // workers`` threads for numba, FFTs and BLAS, so the cores are not
  oversubscribed. A run forks its workers once, at its start (:func:`warm_workers`), and every
  job of the run reuses them; where a fork is not safe, a job spawns its own workers.
* ``dask``: tasks go to a Dask ``distributed`` scheduler (``tcp://HOST:PORT``, or ``local`` for
  a local cluster); files are read on the workers, so paths must be on a shared filesystem. A
  task whose worker dies is retried (twice), then the job fails with :class:`TaskFailed`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from multiprocessing import get_context
from typing import Any, Literal, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Peak RSS of one volume's task, measured with diagnostics on (benchmark cases at 128^3, 256^3
# and 512^3: 0.47, 0.77 and 3.5 GB; tests/test_parallel.py checks a 160^3 job): ~0.4 GB of
# interpreter, numpy, scipy, numba and kernels, plus 12 bytes per voxel of the reference and
# the volume together (maps, spectra, spline coefficients, outputs, FSC temporaries). The
# estimate keeps a margin on both, for the half maps and sharpened map that a volume may
# carry. (The first run on a machine also compiles the kernels, once, at a higher peak.)
BASE_PROCESS_BYTES = 450 * 2**20
BYTES_PER_VOXEL = 16
SCHEDULER_ENV = "ALIGN3D_SCHEDULER"
MIN_TASKS_PER_WORKER = 3
"""Below this many tasks per worker, an automatic plan runs them in the main process."""


class TaskFailed(RuntimeError):
    """A task could not be completed: its local worker process died, or its Dask worker died
    and the retries ran out."""


@dataclass(frozen=True)
class Backend:
    """Where tasks run. ``workers``: upper bound on local processes (None: automatic)."""

    kind: Literal["serial", "processes", "dask"] = "processes"
    workers: int | None = None
    scheduler: str | None = None
    pool: LocalPool | None = field(default=None, compare=False, repr=False)
    """Warm local workers shared by the jobs of a run (see :func:`warm_workers`)."""

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


def fork_is_safe() -> bool:
    """Whether worker processes may be forked from this one: on Linux, and only before this
    process has started numba's threading layer (GNU OpenMP does not survive a fork once it is
    running; even ``numba.get_num_threads()`` starts it)."""
    if sys.platform != "linux":
        return False
    import numba

    try:
        numba.threading_layer()
    except ValueError:  # "Threading layer is not initialized": nothing started yet
        return True
    return False


def _worker_setup(parent: int) -> None:
    """A worker leaves interrupts to the main process, which stops the workers itself, and
    dies with it even when it is killed outright (Linux: ``PR_SET_PDEATHSIG``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # the main process died before the line above
            os._exit(1)


def _call_with_threads(function: Callable[[T], R], threads: int, task: T) -> R:
    limit_threads(threads)
    return function(task)


class LocalPool:
    """Worker processes on this machine, started at once.

    ``fork`` (Linux, before numba's threads start; see :func:`fork_is_safe`) starts a worker in
    milliseconds, with every module already imported; ``spawn`` costs each worker a fresh
    interpreter and its imports (2-3 s). A pool is reused by every job of a run until
    :meth:`stop` (an interrupt or a failed task), after which it is not used again.
    """

    def __init__(self, size: int, method: Literal["fork", "spawn"]) -> None:
        self.size = size
        self.method = method
        self.usable = True
        self._executor = ProcessPoolExecutor(
            max_workers=size,
            mp_context=get_context(method),
            initializer=_worker_setup,
            initargs=(os.getpid(),),
        )
        self._executor.submit(int)  # a fork pool forks every worker here, at its first task

    def submit(self, function: Callable[[T], R], task: T, threads: int) -> Future[R]:
        return self._executor.submit(_call_with_threads, function, threads, task)

    def stop(self) -> None:
        """End every worker now (their unfinished tasks are dropped) and wait until they are
        gone, so that none writes anything after the caller cleans up."""
        self.usable = False
        processes = list((self._executor._processes or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.usable = False
        self._executor.shutdown(wait=True, cancel_futures=True)


def _load_numba_registries() -> None:
    """Import what numba's CPU target needs before it loads any compiled kernel (~0.4 s, once
    per process), so that forked workers inherit it. This starts no threads."""
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    except (ImportError, AttributeError):  # another numba layout: each worker pays it
        pass


@contextmanager
def warm_workers(backend: Backend) -> Iterator[Backend]:
    """``backend`` with a pool of worker processes forked now, for every job of a run; or
    ``backend`` unchanged where that is not useful (one core, serial, Dask) or not safe."""
    size = min(cpu_count(), backend.workers or cpu_count()) - 1
    if backend.kind != "processes" or size < 1 or not fork_is_safe():
        yield backend
        return
    _load_numba_registries()
    pool = LocalPool(size, "fork")
    try:
        yield replace(backend, pool=pool)
    finally:
        pool.close()


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
        return _run_in_pool(function, tasks, pool, workers - 1, threads, notify)
    pool = LocalPool(workers - 1, "spawn")
    try:
        return _run_in_pool(function, tasks, pool, workers - 1, threads, notify)
    finally:
        pool.close()


def _run_in_pool(
    function: Callable[[T], R],
    tasks: Sequence[T],
    pool: LocalPool,
    in_flight: int,
    threads: int,
    notify: Callable[[int, R], None],
) -> list[R]:
    """The main process works too, beside ``in_flight`` tasks in ``pool``: it is already warm
    (numba kernels loaded), so the cores are busy while the workers start. Tasks are handed out
    one at a time to whoever is free first, so no one waits at the end for a queue. On an error
    or an interrupt the pool's workers are stopped before this returns."""
    import numba
    from threadpoolctl import threadpool_limits

    out: list[Any] = [None] * len(tasks)
    pending = deque(enumerate(tasks))
    futures: dict[Future[R], int] = {}
    collected: set[Future[R]] = set()
    lock = threading.Lock()

    def take() -> tuple[int, T] | None:
        with lock:
            return pending.popleft() if pending else None

    def feed() -> None:
        """Give a worker its next task as soon as one is free (called when one finishes).
        Taking the task and recording its future happen under one lock, so the main process
        never sees a task that is neither pending nor in flight."""
        with lock:
            if not pending:
                return
            index, task = pending.popleft()
            try:
                future = pool.submit(function, task, threads)
            except RuntimeError:  # the pool broke or shut down: the main process runs it
                pending.appendleft((index, task))
                return
            futures[future] = index
        future.add_done_callback(lambda _: feed())

    def unfinished() -> bool:
        with lock:
            return bool(pending) or len(collected) < len(futures)

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
            i = futures[future]
            try:
                out[i] = future.result()
            except BrokenProcessPool as exc:
                raise TaskFailed(
                    f"task {i + 1}: its worker process died (killed by the system, perhaps "
                    "for lack of memory; --workers 1 aligns one volume at a time); no output "
                    "was kept"
                ) from exc
            notify(i, out[i])

    try:
        for _ in range(in_flight):
            feed()
        main_threads = numba.get_num_threads()  # after the fork: this starts numba's threads
        try:
            numba.set_num_threads(threads)
            with threadpool_limits(threads):  # BLAS too, or it spins on the workers' cores
                while unfinished():
                    item = take()
                    if item is None:  # nothing left to start: wait for the workers
                        collect(block=True)
                        continue
                    out[item[0]] = function(item[1])
                    notify(item[0], out[item[0]])
                    collect(block=False)
        finally:
            numba.set_num_threads(main_threads)
    except BaseException:
        with lock:
            pending.clear()
        pool.stop()
        raise
    return out


def _on_dask_worker(function: Callable[[T], R], task: T) -> R:
    """Run ``task`` on a Dask worker with its share of the cores: ``OMP_NUM_THREADS`` where set
    (Dask's nanny sets 1, as its task threads share the cores), else the cores over the
    worker's task threads. numba would otherwise use every core in each task thread."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if not (threads.isdigit() and int(threads) > 0):
        try:
            from distributed import get_worker

            threads = str(max(1, cpu_count() // get_worker().state.nthreads))
        except (ImportError, ValueError, AttributeError):  # not on a worker after all
            threads = str(cpu_count())
    return _call_with_threads(function, int(threads), task)


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
        futures = client.map(partial(_on_dask_worker, function), list(tasks), pure=False, retries=2)
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
