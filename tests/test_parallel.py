"""Parallel runs give the same numbers as a serial run: local processes and a Dask LocalCluster
(2 worker processes, started and stopped here), for a job of 6 volumes; a dying worker is
retried, and a task that keeps killing its worker fails the job cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.executor import run_document
from align3d.engine.jobdef import discover_jobs
from align3d.engine.parallel.backend import Backend, TaskFailed
from align3d.engine.parallel.plan import plan_workers
from align3d.engine.parallel.run import run_tasks
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REGISTRY = discover_jobs()


def six_volumes() -> dict:
    maps = [
        {"map": str(FIXTURES / ("small_moving.mrc" if i % 2 else "small_reference.mrc"))}
        for i in range(6)
    ]
    return {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 15, "log_diagnostics": False},
        "inputs": {
            "reference_map": {"map": str(FIXTURES / "small_reference.mrc")},
            "maps_to_align": maps,
        },
    }


def numbers(manifest: ResultManifest) -> list[dict]:
    return [
        r.model_dump(exclude={"seconds"}) for r in manifest.details_as(AlignmentDetails).alignments
    ]


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> ResultManifest:
    out = tmp_path_factory.mktemp("serial") / "job"
    return run_document(
        six_volumes(), FIXTURES, out, REGISTRY, quiet=True, backend=Backend("serial")
    )["J1"]


def test_process_pool_gives_the_serial_numbers(serial: ResultManifest, tmp_path: Path) -> None:
    out = tmp_path / "job"
    parallel = run_document(
        six_volumes(), FIXTURES, out, REGISTRY, quiet=True, backend=Backend("processes", workers=2)
    )["J1"]
    assert numbers(parallel) == numbers(serial)
    assert [r.index for r in parallel.details_as(AlignmentDetails).alignments] == [1, 2, 3, 4, 5, 6]


def test_dask_local_cluster_gives_the_serial_numbers(
    serial: ResultManifest, tmp_path: Path
) -> None:
    pytest.importorskip("distributed", reason="the optional dask extra is not installed")
    out = tmp_path / "job"
    dask = run_document(
        six_volumes(),
        FIXTURES,
        out,
        REGISTRY,
        quiet=True,
        backend=Backend("dask", scheduler="local:2"),
    )["J1"]
    assert numbers(dask) == numbers(serial)


def test_the_readme_sixteen_volume_job_runs_on_a_local_dask_cluster(tmp_path: Path) -> None:
    """The README's one command for 16 volumes on a local Dask cluster, as written; every
    volume recovers the fixture's known transform."""
    import shlex

    from align3d.engine.alignment.geometry import RigidTransform
    from align3d.jobs.align_3d_maps.demo import FIXTURE_TRUTH

    pytest.importorskip("distributed", reason="the optional dask extra is not installed")
    readme = (FIXTURES.parent / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "sixteen_volumes.json" in x and "local" in x)
    args = shlex.split(line)[1:]  # without .venv/bin/align3d
    args[args.index("--out") + 1] = str(tmp_path / "out")
    proc = cli(*args, "--quiet")
    assert proc.returncode == 0, proc.stderr
    manifest = ResultManifest.model_validate_json((tmp_path / "out" / "result.json").read_text())
    assert [r.index for r in manifest.details_as(AlignmentDetails).alignments] == list(range(1, 17))
    for record in manifest.details_as(AlignmentDetails).alignments:
        found = RigidTransform.from_matrix(record.matrix)
        assert found.flip == FIXTURE_TRUTH.flip
        assert found.rotation_error_deg(FIXTURE_TRUTH) <= 0.25
        assert found.shift_error_A(FIXTURE_TRUTH) <= 0.25 * 3.0


def _die_once(marker: str) -> int:
    """Kill the worker process the first time it runs; succeed when retried."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(1)
    return 42


def _always_die(_: object) -> int:
    os._exit(1)


def test_a_dying_dask_worker_is_retried(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the optional dask extra is not installed")
    results = run_tasks(
        _die_once, [str(tmp_path / "marker")], Backend("dask", scheduler="local:2"), 10**8
    )
    assert results == [42]


def test_a_task_that_keeps_killing_workers_fails_clearly() -> None:
    pytest.importorskip("distributed", reason="the optional dask extra is not installed")
    with pytest.raises(TaskFailed, match="died"):
        run_tasks(_always_die, [0], Backend("dask", scheduler="local:2"), 10**8)


def _threads_in_task(_: object) -> tuple[int, int]:
    from threadpoolctl import threadpool_info

    from align3d.engine.alignment.jit import threads

    return threads(), max(i["num_threads"] for i in threadpool_info())


def test_dask_tasks_keep_to_their_share_of_the_cores() -> None:
    """A LocalCluster worker has one task thread, so each task gets one thread for numba,
    FFTs and BLAS (numba alone would take every core in each worker: 2x oversubscribed)."""
    pytest.importorskip("distributed", reason="the optional dask extra is not installed")
    threads = run_tasks(_threads_in_task, [0, 1], Backend("dask", scheduler="local:2"), 10**6)
    assert threads == [(1, 1), (1, 1)]


def test_workers_are_capped_by_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import align3d.engine.parallel.plan as parallel

    monkeypatch.setattr(parallel, "cpu_count", lambda: 8)
    monkeypatch.setattr(parallel, "available_memory_bytes", lambda: 3 * 2**30)
    assert plan_workers(16, 2**30) == (3, 2)  # 3 GiB hold three 1 GiB tasks, 8 cores / 3
    assert plan_workers(2, 2**20) == (2, 4)  # never more workers than tasks
    assert plan_workers(16, 10 * 2**30) == (1, 8)  # one task at a time when memory is short
    assert plan_workers(16, 2**20, limit=4) == (4, 2)


def test_backend_from_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALIGN3D_SCHEDULER", raising=False)
    assert Backend.from_options(None, None) == Backend("processes")
    assert Backend.from_options(1, None).kind == "serial"
    assert Backend.from_options(None, "tcp://h:8786") == Backend("dask", None, "tcp://h:8786")
    monkeypatch.setenv("ALIGN3D_SCHEDULER", "tcp://x:1")
    assert Backend.from_options(None, None).scheduler == "tcp://x:1"


def test_result_order_does_not_depend_on_completion_order() -> None:
    out = run_tasks(np.sqrt, [16.0, 9.0, 4.0], Backend("processes", workers=2), 10**6)
    assert out == [4.0, 3.0, 2.0]
    assert json.dumps(out)


def test_independent_workflow_jobs_run_side_by_side(tmp_path: Path) -> None:
    """Two independent jobs run at the same time (their spans overlap); the job reading both
    starts after both have finished."""
    import time

    from pydantic import BaseModel, ConfigDict

    from align3d.engine.jobdef import Connected, DeclaredJob, JobOutcome, RunContext, SlotSpec
    from align3d.slots.payloads import MaskPayload, SlotKind

    spans: dict[str, tuple[float, float]] = {}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        seconds: float = 0.5

    class Wait(DeclaredJob):
        def input_slots(self, params: Params, connected: Connected) -> list[SlotSpec]:
            return [SlotSpec("after", SlotKind.MASK, multiple=True)]

        def output_slots(self, params: Params, connected: Connected) -> list[SlotSpec]:
            return [SlotSpec("mask", SlotKind.MASK)]

        def run(self, params: Params, inputs: dict, context: RunContext) -> JobOutcome:
            start = time.monotonic()
            time.sleep(params.seconds)
            spans[context.workdir.name.split(".tmp")[0].lstrip(".")] = (start, time.monotonic())
            return JobOutcome({"mask": MaskPayload(path=Path("m.mrc"))})

    doc = {
        "jobs": {
            "a": {"job": "wait"},
            "b": {"job": "wait"},
            "c": {
                "job": "wait",
                "params": {"seconds": 0.0},
                "inputs": {"after": [{"from": "a.mask"}, {"from": "b.mask"}]},
            },
        }
    }
    manifests = run_document(
        doc,
        tmp_path,
        tmp_path / "out",
        {"wait": Wait("wait", "waits, then emits a mask", Params, (), ())},
        quiet=True,
    )
    assert list(manifests) == ["a", "b", "c"]
    assert max(spans["a"][0], spans["b"][0]) < min(spans["a"][1], spans["b"][1])  # overlap
    assert spans["c"][0] >= max(spans["a"][1], spans["b"][1])


def _slow_pid(task: int) -> int:
    """A task that takes long enough for every worker to get one; returns where it ran."""
    import time

    time.sleep(0.2)
    if task < 0:
        raise ValueError(f"task {task} is bad")
    return os.getpid()


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (no numba threads started yet, unlike this one)."""
    import textwrap

    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        cwd=FIXTURES.parent,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_run_forks_its_workers_once_and_every_job_reuses_them() -> None:
    out = run_python(
        """
        import json, os
        import numba
        from align3d.engine.parallel.backend import Backend
        from align3d.engine.parallel.local import fork_is_safe, warm_workers
        from align3d.engine.parallel.run import run_tasks
        from tests.test_parallel import _slow_pid

        assert fork_is_safe()
        with warm_workers(Backend("processes", workers=2)) as backend:
            assert backend.pool.method == "fork" and backend.pool.size == 1
            first = run_tasks(_slow_pid, list(range(6)), backend, 10**6)
            assert fork_is_safe()  # align3d's kernels never start numba's OpenMP threads
            second = run_tasks(_slow_pid, list(range(6)), backend, 10**6)
        print(json.dumps({"main": os.getpid(), "first": first, "second": second}))
        """
    )
    pids = json.loads(out)
    workers = set(pids["first"]) - {pids["main"]}
    assert pids["main"] in pids["first"] and len(workers) == 1  # the main process works too
    assert set(pids["second"]) == set(pids["first"])  # the second job reused the worker


def test_no_fork_once_numba_threads_run_spawned_workers_instead() -> None:
    out = run_python(
        """
        import json, os
        import numba
        from align3d.engine.parallel.backend import Backend
        from align3d.engine.parallel.local import fork_is_safe, warm_workers
        from align3d.engine.parallel.run import run_tasks
        from tests.test_parallel import _slow_pid

        numba.get_num_threads()  # starts GNU OpenMP: a fork from here on would abort
        assert not fork_is_safe()
        with warm_workers(Backend("processes", workers=2)) as backend:
            assert backend.pool is None
            pids = run_tasks(_slow_pid, list(range(6)), backend, 10**6)
        print(json.dumps({"main": os.getpid(), "pids": pids}))
        """
    )
    pids = json.loads(out)
    assert len(set(pids["pids"]) - {pids["main"]}) == 1


def test_a_failing_task_stops_the_workers_and_its_error_reaches_the_caller() -> None:
    run_python(
        """
        import multiprocessing
        from align3d.engine.parallel.backend import Backend
        from align3d.engine.parallel.run import run_tasks
        from align3d.engine.parallel.local import warm_workers
        from tests.test_parallel import _slow_pid

        with warm_workers(Backend("processes", workers=2)) as backend:
            try:
                run_tasks(_slow_pid, [0, 1, 2, -3, 4, 5, 6, 7], backend, 10**6)
            except ValueError as exc:
                assert str(exc) == "task -3 is bad", exc
            else:
                raise AssertionError("the task's error was lost")
            assert not backend.pool.usable
            assert multiprocessing.active_children() == []  # no worker left running
            # a later job of the run still runs, in spawned workers
            assert len(run_tasks(_slow_pid, list(range(4)), backend, 10**6)) == 4
        """
    )


def _write_later(path: str) -> None:
    """A task still running when the run is interrupted: it writes ``path`` after 2 s."""
    import time

    time.sleep(2.0)
    Path(path).write_text("written after the interrupt")


def test_an_interrupted_run_ends_its_workers_at_once_and_none_writes_afterwards(
    tmp_path: Path,
) -> None:
    """An interrupt (Ctrl-C, RELION's abort) ends the run's workers at once: waiting for them
    could outlast the run, and what they wrote would land after the clean-up."""
    late = tmp_path / "late.txt"
    run_python(
        f"""
        import multiprocessing, time
        from align3d.engine.parallel.backend import Backend
        from align3d.engine.parallel.local import warm_workers
        from tests.test_parallel import _write_later

        try:
            with warm_workers(Backend("processes", workers=2)) as backend:
                backend.pool.submit(_write_later, {str(late)!r}, 1)
                time.sleep(0.3)  # the worker has started the task
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
        assert multiprocessing.active_children() == [], multiprocessing.active_children()
        time.sleep(2.5)
        """
    )
    assert not late.exists(), "a worker wrote after the run was interrupted"


def _die_in_a_worker(main: int) -> int:
    """Kill the worker process that runs this (as the system would, out of memory)."""
    import time

    time.sleep(0.2)
    if os.getpid() != main:
        os._exit(9)
    return main


def test_a_local_worker_that_dies_fails_the_job_clearly() -> None:
    run_python(
        """
        import os
        from align3d.engine.parallel.backend import Backend, TaskFailed
        from align3d.engine.parallel.run import run_tasks
        from align3d.engine.parallel.local import warm_workers
        from tests.test_parallel import _die_in_a_worker

        with warm_workers(Backend("processes", workers=2)) as backend:
            try:
                run_tasks(_die_in_a_worker, [os.getpid()] * 6, backend, 10**6)
            except TaskFailed as exc:
                assert "worker process died" in str(exc) and "no output" in str(exc), exc
            else:
                raise AssertionError("a dead worker went unnoticed")
        """
    )


def test_tasks_run_in_the_main_process_when_an_idle_worker_has_died() -> None:
    """A worker that dies between tasks breaks the pool; no task is lost or run twice."""
    out = run_python(
        """
        import json, os, signal, time
        from align3d.engine.parallel.backend import Backend
        from align3d.engine.parallel.run import run_tasks
        from align3d.engine.parallel.local import warm_workers
        from tests.test_parallel import _slow_pid

        with warm_workers(Backend("processes", workers=2)) as backend:
            for pid in list(backend.pool._executor._processes):
                os.kill(pid, signal.SIGKILL)
            time.sleep(1.0)  # the pool notices
            pids = run_tasks(_slow_pid, list(range(5)), backend, 10**6)
        print(json.dumps({"main": os.getpid(), "pids": pids}))
        """
    )
    pids = json.loads(out)
    assert pids["pids"] == [pids["main"]] * 5


def test_two_alignment_jobs_side_by_side_share_the_workers_and_give_serial_numbers(
    tmp_path: Path,
) -> None:

    def job(reference: str, moving: str) -> dict:
        return {
            "job": "align_3d_maps",
            "params": {"max_shift_A": 15, "log_diagnostics": False},
            "inputs": {
                "reference_map": {"map": str(FIXTURES / reference)},
                "maps_to_align": [{"map": str(FIXTURES / moving)}] * 4,
            },
        }

    spec = tmp_path / "wf.json"
    spec.write_text(
        json.dumps(
            {
                "jobs": {
                    "a": job("small_reference.mrc", "small_moving.mrc"),
                    "b": job("small_moving.mrc", "small_reference.mrc"),
                }
            }
        )
    )
    runs = {}
    for name, extra in [("parallel", []), ("serial", ["--workers", "1"])]:
        out = tmp_path / name
        proc = cli("run", str(spec), "--out", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        runs[name] = {
            j: numbers(ResultManifest.model_validate_json((out / j / "result.json").read_text()))
            for j in "ab"
        }
    assert runs["parallel"] == runs["serial"]


def test_the_memory_estimate_bounds_a_real_task(tmp_path: Path) -> None:
    """The planner's estimate of a task's peak holds for a real 160^3 job (diagnostics on),
    without being so generous that it would idle cores: peak <= estimate <= 1.75 x peak (the
    same run peaks at 359 MB with the dependency floors and about 400 MB with today's
    releases, whose imports are larger)."""
    from align3d.engine.alignment.resample import GridMove, resample_map
    from align3d.engine.parallel.plan import task_memory_bytes
    from align3d.jobs.align_3d_maps.demo import protein_like_map
    from align3d.slots.mrc import write_map
    from tests.oracles.transforms import random_transform

    box = 160
    reference = protein_like_map((box,) * 3, 2.0, seed=3)
    truth = random_transform(np.random.default_rng(3), max_shift_A=5.0)
    write_map(tmp_path / "ref.mrc", reference, 2.0)
    write_map(
        tmp_path / "mov.mrc",
        resample_map(
            reference,
            GridMove(transform=truth, in_voxel_A=2.0, out_shape=(box,) * 3, out_voxel_A=2.0),
        ),
        2.0,
    )
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 10, "log_diagnostics": True},
        "inputs": {"reference_map": {"map": "ref.mrc"}, "maps_to_align": [{"map": "mov.mrc"}]},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    # compiled kernels cached first (a first run on a machine compiles them, at a higher peak)
    warm = cli("run", str(tmp_path / "spec.json"), "--out", str(tmp_path / "warm"), "--quiet")
    assert warm.returncode == 0, warm.stderr
    # a fresh parent whose only child is the run: its RUSAGE_CHILDREN peak is that run's
    measure = (
        "import resource, subprocess, sys; "
        "rc = subprocess.run([sys.executable, '-m', 'align3d.engine.cli', 'run', sys.argv[1], "
        "'--out', sys.argv[2], '--quiet']).returncode; "
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", measure, str(tmp_path / "spec.json"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        cwd=FIXTURES.parent,
    )
    rc, peak_kb = proc.stdout.split()
    assert rc == "0", proc.stderr
    peak = int(peak_kb) * 1024
    estimate = task_memory_bytes(2 * box**3)
    assert peak <= estimate <= 1.75 * peak, (peak / 2**20, estimate / 2**20)


def _ignore_sigterm(_: int) -> int:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return os.getpid()


STUBBORN_WORKER = """
import os, sys
from align3d.engine.parallel.local import LocalPool
sys.path.insert(0, sys.argv[1])
from test_parallel import _ignore_sigterm
pool = LocalPool(1, "fork")
pid = pool.submit(_ignore_sigterm, 0, 1).result(timeout=60)  # the worker now ignores SIGTERM
pool.stop()
try:
    os.kill(pid, 0)
    print("alive")
except ProcessLookupError:
    print("gone")
"""


def test_stopping_the_pool_ends_a_worker_that_ignores_sigterm() -> None:
    """A worker that does not end on SIGTERM (one forked an instant before, whose SIGTERM went
    into the main process's handler) is killed after a grace period: a run refused as busy, or
    interrupted, never waits for its workers forever."""
    done = subprocess.run(
        [sys.executable, "-c", STUBBORN_WORKER, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["gone"]
