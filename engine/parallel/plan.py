"""How many worker processes, and how many threads each: within the cores and the memory this
process may use."""

from __future__ import annotations

import math
import os
from pathlib import Path

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


NO_LIMIT = 2**60
"""cgroup v1 writes a huge number (about 2^63) for "no limit"; anything above this is none."""


def _cgroup_paths(root: Path) -> dict[str, str]:
    """This process's cgroup path per controller (``""`` for cgroup v2), from
    ``/proc/self/cgroup``."""
    try:
        text = (root / "proc/self/cgroup").read_text()
    except OSError:
        return {}
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _cgroup_dirs(root: Path, mounts: list[str], path: str) -> list[Path]:
    """The cgroup folders that hold this process, innermost first: each level of its path up
    to the mount, under the first mount that exists (inside a container the path may not exist
    under the mount: then the mount itself is the process's cgroup)."""
    for mount in mounts:
        base = root / mount
        if not base.is_dir():
            continue
        parts = [p for p in path.strip("/").split("/") if p]
        dirs = [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
        return [d for d in dirs if d.is_dir()]
    return []


def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    return None if text == "max" else int(text)


def cgroup_cpu_limit(root: Path = Path("/")) -> float | None:
    """The cores a cgroup quota allows this process (cgroup v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; the tightest level), or None."""
    paths = _cgroup_paths(root)
    limits = []
    if "" in paths:
        for folder in _cgroup_dirs(root, ["sys/fs/cgroup"], paths[""]):
            try:
                quota, period = (folder / "cpu.max").read_text().split()[:2]
            except (OSError, ValueError):
                continue
            if quota != "max" and int(period) > 0:
                limits.append(int(quota) / int(period))
    if "cpu" in paths:
        mounts = ["sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpuacct,cpu"]
        for folder in _cgroup_dirs(root, mounts, paths["cpu"]):
            quota = _read_number(folder / "cpu.cfs_quota_us")
            period = _read_number(folder / "cpu.cfs_period_us")
            if quota is not None and quota > 0 and period:
                limits.append(quota / period)
    return min(limits) if limits else None


def cgroup_memory_available(root: Path = Path("/")) -> int | None:
    """Bytes this process's cgroup may still use (limit minus usage, the tightest level:
    cgroup v2 ``memory.max`` / ``memory.current``, v1 ``memory.limit_in_bytes`` /
    ``memory.usage_in_bytes``), or None when no limit is set."""
    paths = _cgroup_paths(root)
    room = []
    for key, mounts, limit_name, usage_name in (
        ("", ["sys/fs/cgroup"], "memory.max", "memory.current"),
        ("memory", ["sys/fs/cgroup/memory"], "memory.limit_in_bytes", "memory.usage_in_bytes"),
    ):
        if key not in paths:
            continue
        for folder in _cgroup_dirs(root, mounts, paths[key]):
            limit = _read_number(folder / limit_name)
            if limit is None or limit >= NO_LIMIT:
                continue
            usage = _read_number(folder / usage_name) or 0
            room.append(max(limit - usage, 0))
    return min(room) if room else None


def cpu_count(root: Path = Path("/")) -> int:
    """The cores this process may use: its CPU affinity (``os.sched_getaffinity``: taskset,
    SLURM's cgroup cpuset), within any cgroup CPU quota (Docker ``--cpus``, Kubernetes limits)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit(root)
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota + 1e-9)))
    return max(1, cores)


def available_memory_bytes(root: Path = Path("/")) -> int:
    """The memory this process may still use: ``MemAvailable`` of ``/proc/meminfo``, within
    any cgroup memory limit (SLURM, Kubernetes, Docker); a conservative 4 GiB off Linux."""
    host: int | None = None
    try:
        with (root / "proc/meminfo").open() as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    host = int(line.split()[1]) * 1024
    except OSError:
        pass
    limit = cgroup_memory_available(root)
    known = [m for m in (host, limit) if m is not None]
    return min(known) if known else 4 * 2**30


def task_memory_bytes(voxels: int) -> int:
    """Estimated peak memory of one alignment task whose maps hold ``voxels`` voxels in all."""
    return BASE_PROCESS_BYTES + BYTES_PER_VOXEL * voxels


def plan_workers(tasks: int, memory_per_task: int, limit: int | None = None) -> tuple[int, int]:
    """``(workers, threads per worker)`` within the cores, the memory and ``limit``."""
    cores = cpu_count()
    by_memory = max(1, available_memory_bytes() // max(memory_per_task, 1))
    workers = max(1, min(cores, tasks, by_memory, limit or cores))
    return workers, max(1, cores // workers)
