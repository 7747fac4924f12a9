"""Local worker processes: forked once per run (or spawned), each kept to its share of the
cores, stopped and waited for on an error or an interrupt."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing import get_context
from multiprocessing.process import BaseProcess
from typing import Any, Literal, TypeVar

from align3d.engine.parallel.backend import Backend, TaskFailed, WorkerPool
from align3d.engine.parallel.plan import cpu_count
from align3d.engine.parallel.share import CoreShare, busy, join, rebalance

T = TypeVar("T")
R = TypeVar("R")


def limit_threads(threads: int) -> None:
    """Keep the compiled kernels, FFTs and BLAS of this process to ``threads`` threads."""
    from threadpoolctl import threadpool_limits

    from align3d.engine.alignment.jit import set_threads

    set_threads(threads)  # FFTs follow it
    threadpool_limits(threads)


def fork_is_safe() -> bool:
    """Whether worker processes may be forked from this one: on Linux, and only while numba's
    threading layer has not started (align3d's kernels never start it; other numba code in the
    same process might, and GNU OpenMP does not survive a fork once it runs)."""
    if sys.platform != "linux":
        return False
    import numba

    try:
        numba.threading_layer()
    except ValueError:  # "Threading layer is not initialized": nothing started yet
        return True
    return False


def _worker_setup(parent: int, share: CoreShare) -> None:
    """A worker leaves interrupts to the main process, which stops the workers itself, and
    dies with it even when it is killed outright (Linux: ``PR_SET_PDEATHSIG``). It counts in
    the run's share of the cores."""
    join(share)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # the main process died before the line above
            os._exit(1)


def call_with_threads(function: Callable[[T], R], threads: int, task: T) -> R:
    limit_threads(threads)
    with busy():
        rebalance()
        return function(task)


TERMINATE_GRACE_S = 5.0
"""How long :meth:`LocalPool.stop` waits for a worker to end on SIGTERM before it kills it. A
worker forked a moment before still has the main process's SIGTERM handler (which raises
KeyboardInterrupt) until its set-up restores the default; a SIGTERM landing then can be spent on
an interrupt that the worker drops (CI's lowest tier: a run refused as busy waited for its
worker forever), and the worker goes on waiting for tasks."""


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
        context = get_context(method)
        self.share = CoreShare(context.Value("i", 0), cpu_count())
        self._executor = ProcessPoolExecutor(
            max_workers=size,
            mp_context=context,
            initializer=_worker_setup,
            initargs=(os.getpid(), self.share),
        )
        self._executor.submit(int)  # a fork pool forks every worker here, at its first task

    def submit(self, function: Callable[[T], R], task: T, threads: int) -> Future[R]:
        return self._executor.submit(call_with_threads, function, threads, task)

    def stop(self) -> None:
        """End every worker now (their unfinished tasks are dropped) and wait until they are
        gone, so that none writes anything after the caller cleans up."""
        self.usable = False
        processes = list((self._executor._processes or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(TERMINATE_GRACE_S)
            if process.exitcode is None:  # SIGTERM did not end it: see TERMINATE_GRACE_S
                process.kill()
                process.join()
            _reaped(process)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.usable = False
        self._executor.shutdown(wait=True, cancel_futures=True)


def _reaped(process: BaseProcess, limit_s: float = 5.0) -> None:
    """Wait until ``process`` is known to be gone in this process too. The pool's own manager
    thread reaps a worker that died (it joins the workers of a broken pool), and when it wins
    that race our ``join`` returns before it has recorded the exit code: the process is dead
    but still counted among this process's children until the other thread records it. Bounded
    (``limit_s``): a dead process is recorded within microseconds."""
    deadline = time.monotonic() + limit_s
    while process.is_alive() and time.monotonic() < deadline:  # is_alive drops it once gone
        time.sleep(0.005)


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
    ``backend`` unchanged where that is not useful (one core, serial, Dask) or not safe. The
    workers are waited for when the run ends, and ended at once when it fails or is
    interrupted (waiting for them then could outlast the run: a worker still starting, or a
    task left running)."""
    size = min(cpu_count(), backend.workers or cpu_count()) - 1
    if backend.kind != "processes" or size < 1 or not fork_is_safe():
        yield backend
        return
    _load_numba_registries()
    pool = LocalPool(size, "fork")
    try:
        yield replace(backend, pool=pool)
    except BaseException:  # an error or an interrupt: nothing a worker does is wanted now
        pool.stop()
        raise
    pool.close()


def run_in_pool(
    function: Callable[[T], R],
    tasks: Sequence[T],
    pool: WorkerPool,
    in_flight: int,
    threads: int,
    notify: Callable[[int, R], None],
) -> list[R]:
    """The main process works too, beside ``in_flight`` tasks in ``pool``: it is already warm
    (numba kernels loaded), so the cores are busy while the workers start. Tasks are handed out
    one at a time to whoever is free first, so no one waits at the end for a queue. On an error
    or an interrupt the pool's workers are stopped before this returns."""
    from threadpoolctl import threadpool_limits

    from align3d.engine.alignment.jit import set_threads
    from align3d.engine.alignment.jit import threads as current_threads

    join(pool.share)  # the main process counts in the run's share of the cores too
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
        main_threads = current_threads()
        try:
            set_threads(threads)
            with threadpool_limits(threads):  # BLAS too, or it spins on the workers' cores
                while unfinished():
                    item = take()
                    if item is None:  # nothing left to start: wait for the workers
                        collect(block=True)
                        continue
                    with busy():
                        rebalance()
                        out[item[0]] = function(item[1])
                    notify(item[0], out[item[0]])
                    collect(block=False)
        finally:
            set_threads(main_threads)
    except BaseException:
        with lock:
            pending.clear()
        pool.stop()
        raise
    return out
