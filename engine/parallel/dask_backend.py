"""Tasks on a Dask ``distributed`` cluster (``tcp://HOST:PORT``, or ``local``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from align3d.engine.parallel.backend import Backend, SchedulerUnreachable, TaskFailed
from align3d.engine.parallel.local import call_with_threads
from align3d.engine.parallel.plan import cpu_count

T = TypeVar("T")
R = TypeVar("R")


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
    return call_with_threads(function, int(threads), task)


def _connect(client_type: Any, address: str, timeout_s: float) -> Any:
    """A client of the scheduler at ``address``, or :class:`SchedulerUnreachable` after
    ``timeout_s`` seconds without an answer."""
    try:
        return client_type(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerUnreachable(
            f"no Dask scheduler answered at {address} within {timeout_s:g} s ({exc}); start the "
            "scheduler (dask scheduler) and its workers, check the address and the network, or "
            "raise --scheduler-timeout"
        ) from exc


def run_dask(
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
        client = _connect(Client, address, backend.scheduler_timeout_s)
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
