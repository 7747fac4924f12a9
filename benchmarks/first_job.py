"""The latency of the first job on a fresh node with a read-only install, through a host.

A cluster user's first Align 3D Maps job on a node runs from a shared, read-only install with
an empty cache: the kernels are compiled then (once, into the user's cache folder), and every
later job, each a new process, loads them. This script measures what the user waits for:
``relion_pipeliner --RunJobs`` of a RELION External job (``align3d-relion-external``), from the
command to its exit, for the first job and the next two, on

* the README's small example (``fixtures/small_reference.mrc``, ``small_moving.mrc``), and
* the 256^3 benchmark case ``ribosome_256_00`` (``benchmarks/run.py`` makes it).

The install is made read-only for the jobs (a private mount namespace in which the repository
is remounted read-only: ``unshare -m``, which needs root), and ``HOME`` is a new empty folder,
so nothing compiled before is found. Writes ``benchmarks/first_job.md`` with the date and the
machine.

    .venv/bin/python benchmarks/first_job.py [--jobs 3]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_line  # noqa: E402

EXTERNAL = REPO / ".venv" / "bin" / "align3d-relion-external"
CASES = {
    "README example (fixtures, 40^3)": (
        REPO / "fixtures" / "small_reference.mrc",
        REPO / "fixtures" / "small_moving.mrc",
        15.0,
    ),
    "ribosome_256_00 (256^3)": (
        REPO / "benchmarks" / "results" / "cases" / "ribosome_256_00" / "ref.mrc",
        REPO / "benchmarks" / "results" / "cases" / "ribosome_256_00" / "mov.mrc",
        40.0,
    ),
}


def read_only_shell(command: str, env: dict[str, str]) -> list[str]:
    """``command`` in a private mount namespace where the repository (the install) is
    read-only."""
    repo = shlex.quote(str(REPO))
    script = (
        f"mount --bind {repo} {repo} && mount -o remount,bind,ro {repo} && "
        f"exec env {' '.join(f'{k}={shlex.quote(v)}' for k, v in env.items())} {command}"
    )
    return ["unshare", "-m", "sh", "-c", script]


def run_jobs(case: str, jobs: int, home: Path) -> list[dict]:
    ref, mov, max_shift = CASES[case]
    project = Path(tempfile.mkdtemp(prefix="align3d-first-job-"))
    shutil.copy(ref, project / "reference.mrc")
    shutil.copy(mov, project / "moving.mrc")
    (project / "default_pipeline.star").write_text(
        "\ndata_pipeline_general\n\n_rlnPipeLineJobCounter 1\n\n"
    )
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    rows = []
    for job in range(1, jobs + 1):
        options = (
            f"fn_exe == {EXTERNAL};in_3dref == reference.mrc;param1_label == maps;"
            f"param1_value == moving.mrc;param2_label == max_shift_A;param2_value == {max_shift}"
        )
        subprocess.run(
            ["relion_pipeliner", "--addJob", "External", "--addJobOptions", options],
            cwd=project,
            check=True,
            capture_output=True,
        )
        folder = f"External/job{job:03d}/"
        command = f"relion_pipeliner --RunJobs {folder} --sec_wait_after 1"
        start = time.perf_counter()
        proc = subprocess.run(
            read_only_shell(command, env), cwd=project, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        out = "".join(
            (project / folder / name).read_text(errors="replace")
            for name in ("run.out", "run.err")
            if (project / folder / name).exists()
        )
        ok = (project / folder / "RELION_JOB_EXIT_SUCCESS").exists()
        if proc.returncode != 0 or not ok:
            raise RuntimeError(f"{case} job {job} failed: {proc.stderr[-2000:]}")
        rows.append(
            {"case": case, "job": job, "wall_s": wall, "compiled": "compiling kernels" in out}
        )
        print(rows[-1], flush=True)
    shutil.rmtree(project)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=3, help="jobs per case, one after another")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "first_job.md")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        sys.exit("first_job.py needs root and unshare (to remount the install read-only)")
    if shutil.which("relion_pipeliner") is None:
        sys.exit("first_job.py needs RELION's relion_pipeliner on PATH")
    rows = []
    for case in CASES:
        home = Path(tempfile.mkdtemp(prefix="align3d-fresh-home-"))  # a fresh node's cache
        rows += run_jobs(case, args.jobs, home)
        shutil.rmtree(home)
    lines = [
        f"First jobs on a fresh node: {machine_line()} "
        f"({' '.join(['benchmarks/first_job.py', *sys.argv[1:]])}). Wall time of `relion_pipeliner --RunJobs` of one RELION "
        "External job (`align3d-relion-external`, `--sec_wait_after 1`), the install "
        "read-only and the user's cache empty before job 1; jobs run one after another. RELION "
        "looks for the job's exit marker once a second, so the times come in whole seconds.",
        "",
        "| case | job | wall (s) | kernels compiled in this job |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['case']} | {r['job']} | {r['wall_s']:.1f} | {'yes' if r['compiled'] else 'no'} |"
        for r in rows
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
