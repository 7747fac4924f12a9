"""Worker planning follows what the process may use, not what the host has: CPU affinity,
cgroup v1 and v2 CPU quotas and memory limits, read from a faked /proc and /sys/fs/cgroup."""

from __future__ import annotations

from pathlib import Path

import pytest

import align3d.engine.parallel.plan as plan

GiB = 2**30


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


MEMINFO = {"proc/meminfo": f"MemTotal: {24 * 2**20} kB\nMemAvailable: {20 * 2**20} kB\n"}


def test_cgroup_v2_quota_and_memory_limit(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            **MEMINFO,
            "proc/self/cgroup": "0::/job/step\n",
            "sys/fs/cgroup/job/cpu.max": "max 100000\n",
            "sys/fs/cgroup/job/step/cpu.max": "150000 100000\n",  # 1.5 cores
            "sys/fs/cgroup/job/memory.max": f"{4 * GiB}\n",  # a 4 GB job on a 24 GB host
            "sys/fs/cgroup/job/memory.current": f"{1 * GiB}\n",
            "sys/fs/cgroup/job/step/memory.max": "max\n",
        },
    )
    assert plan.cgroup_cpu_limit(root) == pytest.approx(1.5)
    assert plan.available_memory_bytes(root) == 3 * GiB  # not the host's 20 GB
    assert plan.cpu_count(root) == 1


def test_cgroup_v1_limits(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            **MEMINFO,
            "proc/self/cgroup": "4:memory:/slurm/uid_0/job_7\n2:cpu,cpuacct:/slurm/uid_0/job_7\n",
            "sys/fs/cgroup/memory/slurm/uid_0/job_7/memory.limit_in_bytes": f"{4 * GiB}\n",
            "sys/fs/cgroup/memory/slurm/uid_0/job_7/memory.usage_in_bytes": f"{GiB // 2}\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",  # no limit
            "sys/fs/cgroup/cpu,cpuacct/slurm/uid_0/job_7/cpu.cfs_quota_us": "100000\n",
            "sys/fs/cgroup/cpu,cpuacct/slurm/uid_0/job_7/cpu.cfs_period_us": "100000\n",
        },
    )
    assert plan.available_memory_bytes(root) == int(3.5 * GiB)
    assert plan.cgroup_cpu_limit(root) == pytest.approx(1.0)
    assert plan.cpu_count(root) == 1


def test_container_whose_cgroup_path_is_its_mount_root(tmp_path: Path) -> None:
    # inside a container /proc/self/cgroup names the host's path, which the mount lacks
    root = _tree(
        tmp_path,
        {
            **MEMINFO,
            "proc/self/cgroup": "0::/kubepods/pod12/abc\n",
            "sys/fs/cgroup/memory.max": f"{2 * GiB}\n",
            "sys/fs/cgroup/memory.current": "0\n",
        },
    )
    assert plan.available_memory_bytes(root) == 2 * GiB


def test_no_limits_leaves_the_host_figures(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**MEMINFO, "proc/self/cgroup": "0::/\n"})
    assert plan.cgroup_cpu_limit(root) is None and plan.cgroup_memory_available(root) is None
    assert plan.available_memory_bytes(root) == 20 * GiB


def test_the_planner_uses_the_cgroup_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _tree(
        tmp_path,
        {
            **MEMINFO,
            "proc/self/cgroup": "0::/\n",
            "sys/fs/cgroup/memory.max": f"{4 * GiB}\n",
            "sys/fs/cgroup/memory.current": "0\n",
        },
    )
    monkeypatch.setattr(plan, "cpu_count", lambda: 8)
    monkeypatch.setattr(plan, "available_memory_bytes", lambda: plan.cgroup_memory_available(root))
    assert plan.plan_workers(8, 3 * GiB // 2) == (2, 4)  # two 1.5 GB tasks fit in 4 GB, not 13
