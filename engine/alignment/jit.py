"""How the numerical core compiles and runs its kernels: one place for numba's settings, the
on-disk cache, and the threads the kernels run on.

* **Kernels** are plain ``numba.njit(cache=True, nogil=True)`` functions, each compiled for one
  signature (the arrays its wrapper passes: float32 maps, complex64 spectra, float64 points and
  matrices). numba's parallel loops are not used: they compile three times slower, and their
  OpenMP runtime makes a process unsafe to fork. A kernel works on a range of its outer axis;
  :func:`run_ranges` splits the axis into a fixed number of blocks and runs them on this
  process's threads (the kernels release the GIL), then the caller adds the blocks' partial
  results in block order, so every number is the same whatever the thread count.
* **Threads**: :func:`set_threads` (a worker process's share of the cores; FFTs use the same
  count) and :func:`threads`.
* **Cache**: compiled kernels are kept on disk (once per install). Where the package's own
  folder is read-only (a shared cluster install), numba keeps them in the user's cache folder;
  where that is not writable either, in a folder under the system's temporary directory.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from align3d.engine.alignment.folders import writable


def _configure_cache() -> None:
    """Give numba a writable cache folder when neither the package's folder nor the user's
    cache folder is (before numba is imported)."""
    if "NUMBA_CACHE_DIR" in os.environ or "numba" in sys.modules:
        return
    here = Path(__file__).absolute().parent / "__pycache__"  # as numba sees it: links kept
    user = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "numba"
    if writable(here) or writable(user):
        return
    os.environ["NUMBA_CACHE_DIR"] = str(
        Path(tempfile.gettempdir()) / f"align3d-numba-{os.getuid()}"
    )


_configure_cache()

import numba  # noqa: E402  (after the cache folder is settled)

FREE_SUMS = frozenset({"reassoc", "contract"})
"""Floating-point licence for a kernel whose sums may be reordered and fused (vectorised):
no change to NaN, infinity or signed-zero handling, so a result moves by rounding only."""


def kernel(
    signature: str, fastmath: frozenset[str] = frozenset()
) -> Callable[[Callable[..., Any]], Any]:
    """A compiled kernel of one signature (compiled, or loaded from the cache, at import);
    ``fastmath``: LLVM's floating-point flags for it (:data:`FREE_SUMS`, or none)."""
    compile_or_load = numba.njit(signature, cache=True, nogil=True, fastmath=set(fastmath) or False)
    return lambda function: _without_lowering_registries(lambda: compile_or_load(function))


def _without_lowering_registries(compile_or_load: Callable[[], Any]) -> Any:
    """``compile_or_load()``, with numba's refresh before its cache lookup cut to the runtime.

    numba refreshes its CPU target before every cache lookup, and the first refresh imports and
    registers every lowering and typing implementation it has (about 0.25 s here, a tenth of a
    whole 256^3 job), which a kernel loaded from the cache never uses: its machine code is
    built. Loading needs only the runtime (NRT: arrays made inside a kernel). So that one
    refresh initialises the runtime alone; it is a one-shot, and a cache miss compiles with the
    full refresh (numba's compiler refreshes the target itself). Where this numba is laid out
    otherwise, kernels load as numba does it."""
    try:
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target
        from numba.core.runtime import rtsys

        context = cpu_target.target_context
        type(context).refresh  # noqa: B018  (the method this replaces for one call)
    except (ImportError, AttributeError):
        return compile_or_load()

    def runtime_only() -> None:
        del context.refresh  # one shot: the next refresh (a compile's) is numba's own
        rtsys.initialize(context)

    with global_compiler_lock:
        context.refresh = runtime_only
        try:
            return compile_or_load()
        finally:
            context.__dict__.pop("refresh", None)


def inline(function: Callable[..., Any]) -> Any:
    """A helper inlined into the kernels that call it (compiled with them)."""
    return numba.njit(cache=True, inline="always")(function)


def as_kernel_array(value: Any, dtype: Any) -> Any:
    """``value`` as the kind of array the kernels are compiled for: C-contiguous, writeable, of
    ``dtype`` (a copy only when it is not one already)."""
    import numpy as np

    array = np.ascontiguousarray(value, dtype=dtype)
    return array if array.flags.writeable else array.copy()


BLOCKS = 32
"""The outer axis of a kernel's work is cut into this many blocks (at most), whatever the
thread count: partial sums are then always the same 32, added in the same order."""

_THREADS = [max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)]
_POOLS: dict[int, ThreadPoolExecutor] = {}
"""This process's kernel threads, by count (a forked child starts with none: threads do not
survive a fork)."""
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOLS.clear)


def set_threads(count: int) -> None:
    """The threads this process's kernels and FFTs use from now on."""
    _THREADS[0] = max(1, int(count))


def threads() -> int:
    return _THREADS[0]


def blocks(length: int, count: int = BLOCKS) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges cutting ``range(length)`` into at most ``count`` blocks."""
    count = max(1, min(count, length))
    edges = [length * k // count for k in range(count + 1)]
    return [(edges[k], edges[k + 1]) for k in range(count) if edges[k + 1] > edges[k]]


def run_ranges(work: Callable[[int, int, int], None], length: int) -> int:
    """Run ``work(block, lo, hi)`` for every block of ``range(length)`` on this process's
    threads; returns the number of blocks (each ``work`` writes its own block's results).

    The calling thread takes blocks too, and each thread takes the next block left as it
    finishes one (balanced when a thread is slowed); a call hands work to the other threads
    once, not once per block, which keeps small kernels (a 40^3 search map) cheap."""
    ranges = blocks(length)
    count = min(threads(), len(ranges))
    if count <= 1:
        for k, (lo, hi) in enumerate(ranges):
            work(k, lo, hi)
        return len(ranges)
    pool = _POOLS.get(count)
    if pool is None:
        pool = _POOLS[count] = ThreadPoolExecutor(
            max_workers=count - 1, thread_name_prefix="kernel"
        )
    queue = iter(list(enumerate(ranges)))  # next() on a list iterator is atomic under the GIL

    def drain() -> None:
        for k, (lo, hi) in queue:
            work(k, lo, hi)

    futures = [pool.submit(drain) for _ in range(count - 1)]
    try:
        drain()
    finally:  # every block is done (or failed) before the caller sees the output
        # a helper that has not started has nothing left to take: cancelling it also keeps a
        # call made from a kernel thread (a nested one) from waiting on its own thread
        errors = [None if f.cancel() else f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return len(ranges)


def parallel(fn: Callable[..., None], length: int, *args: Any) -> None:
    """Run a kernel ``fn(*args, lo, hi)`` over ``range(length)`` in blocks, on the threads."""
    run_ranges(lambda _k, lo, hi: fn(*args, lo, hi), length)


def sum_blocks(fn: Callable[..., None], length: int, partial: Any, *args: Any) -> Any:
    """Run ``fn(*args, partial[k], lo, hi)`` over the blocks (each adding into its own slot of
    ``partial``) and add the slots in block order: the same result for any thread count."""
    count = len(blocks(length))
    run_ranges(lambda k, lo, hi: fn(*args, partial[k], lo, hi), length)
    total = partial[0].copy()
    for k in range(1, count):
        total += partial[k]
    return total


__all__: Sequence[str] = ["inline", "kernel", "parallel", "set_threads", "sum_blocks", "threads"]
