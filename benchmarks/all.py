"""Every benchmark table of the README, from one run: each script in turn (never two at once:
the machine has few cores and each times whole commands), then the tables spliced into the
README (:mod:`readme_tables`). Each table carries its own date, machine and command; this run's
log, with the time each step took, goes to ``benchmarks/results/all.md``.

    .venv/bin/python benchmarks/all.py                 # everything (about an hour on 2 cores)
    .venv/bin/python benchmarks/all.py --only run big_jobs

Needs EMalign's venv (``bash benchmarks/setup_emalign.sh``) and, for ``first_job``, root and
RELION (``relion_pipeliner``). A step that fails stops the run; the README keeps the tables of
the steps that did not run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / ".venv" / "bin" / "python")


@dataclass(frozen=True)
class Step:
    """One benchmark script and the arguments its README table was made with."""

    name: str
    arguments: tuple[str, ...]


STEPS = (
    Step("resampling", ("benchmarks/resampling.py", "--against", "6197f56", "--box", "256")),
    Step("run", ("benchmarks/run.py", "--emalign-repeats", "2")),
    Step(
        "run_360",
        (
            "benchmarks/run.py",
            "--sizes", "360",
            "--cases", "1",
            "--emalign-repeats", "1",
            "--table", "table_360",
        ),
    ),
    Step(
        "big_jobs",
        ("benchmarks/big_jobs.py", "--cases", "five_map_360", "refinement_600", "--repeats", "2"),
    ),
    Step(
        "big_jobs_classes",
        (
            "benchmarks/big_jobs.py",
            "--cases", "classes_400",
            "--repeats", "1",
            "--out", "benchmarks/big_jobs_classes.md",
        ),
    ),
    Step("first_job", ("benchmarks/first_job.py",)),
    Step("scale_out", ("benchmarks/scale_out.py", "--repeats", "3")),
)  # fmt: skip
"""In the README's order of tables, less the first (resampling), which is quickest."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [step.name for step in STEPS]
    parser.add_argument("--only", nargs="+", choices=names, help="these steps only")
    args = parser.parse_args()
    steps = [s for s in STEPS if args.only is None or s.name in args.only]
    log = [f"Benchmark run: {machine_line()}, started {time.strftime('%H:%M:%S')}", ""]
    log += ["| step | command | wall (s) | exit |", "|---|---|---|---|"]
    status = 0
    for step in steps:
        command = [PYTHON, *step.arguments]
        print(f"== {step.name}: {' '.join(step.arguments)}", flush=True)
        start = time.perf_counter()
        status = subprocess.run(command, cwd=REPO, check=False).returncode
        wall = time.perf_counter() - start
        log.append(f"| {step.name} | `{' '.join(step.arguments)}` | {wall:.0f} | {status} |")
        if status != 0:
            print(f"== {step.name} failed (exit {status}); the later steps were not run")
            break
    if status == 0:
        status = subprocess.run([PYTHON, "benchmarks/readme_tables.py"], cwd=REPO).returncode
    log += ["", f"Ended {time.strftime('%H:%M:%S')}, exit {status}."]
    out = REPO / "benchmarks" / "results" / "all.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(log) + "\n")
    print("\n".join(log))
    return status


if __name__ == "__main__":
    sys.exit(main())
