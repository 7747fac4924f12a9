"""How many worker processes, and how many threads each: within the cores and the memory this
process may use."""

from __future__ import annotations

import os

# Peak RSS of one volume's task, measured with diagnostics on (benchmark cases at 128^3, 256^3
# and 512^3: 0.47, 0.77 and 3.5 GB; tests/test_parallel.py checks a 160^3 job): ~0.4 GB of
# interpreter, numpy, scipy, numba and kernels, plus 12 bytes per voxel of the reference and
# the volume together (maps, spectra, spline coefficients, outputs, FSC temporaries). The
# estimate keeps a margin on both, for the half maps and sharpened map that a volume may
# carry. (The first run on a machine also compiles the kernels, once, at a higher peak.)
BASE_PROCESS_BYTES = 450 * 2**20
BYTES_PER_VOXEL = 16
MIN_TASKS_PER_WORKER = 3
"""Below this many tasks per worker, an automatic plan runs them in the main process."""


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
