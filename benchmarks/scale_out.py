"""Scale-out benchmark: one job aligning N volumes, serially, in local processes, on a Dask
LocalCluster. Wall time of the whole job (interpreter start included) and peak memory.

    .venv/bin/python benchmarks/scale_out.py [--counts 1 4 16] [--repeats 3] [--case ribosome_128_00]

"serial, 1 thread" (numba, OpenMP and BLAS all held to one thread) is the classic baseline of
parallel efficiency; "serial" already uses every core inside each alignment (numba kernels,
FFTs). Each repeat runs every mode once, in turn, so that a slow spell of a shared machine
does not land on one mode; the table gives the median wall time (and the range over the
repeats). Uses a 128^3 case made by benchmarks/make_cases.py (made if missing). Writes
benchmarks/results/scale_out.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_line  # noqa: E402

MODES: dict[str, tuple[list[str], dict[str, str]]] = {
    "serial, 1 thread": (
        ["--workers", "1"],
        {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    ),
    "serial": (["--workers", "1"], {}),
    "processes": ([], {}),
    "dask LocalCluster": (["--scheduler", "local"], {}),
}


def run(spec: Path, out: Path, options: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time (s) of ``align3d run`` and the peak RSS (MB) of its largest process."""
    command = [
        "/usr/bin/time",
        "-f",
        "%M",
        sys.executable,
        "-m",
        "align3d.engine.cli",
        "run",
        str(spec),
        "--out",
        str(out),
        "--quiet",
        "--force",
        *options,
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, env={**os.environ, **env}
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"align3d failed ({options}): {proc.stderr[-2000:]}")
    # GNU time's %M: the largest resident set of any one process of the run (Linux wait4
    # folds in the descendants the run waited for)
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024  # kB -> MB


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--case", default="ribosome_128_00")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    case = HERE / "results" / "cases" / args.case
    if not (case / "ref.mrc").exists():
        subprocess.run([sys.executable, str(HERE / "make_cases.py"), "--sizes", "128"], check=True)
    work = HERE / "results" / "scale_out"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.counts:
        spec = work / f"spec_{n}.json"
        spec.write_text(
            json.dumps(
                {
                    "job": "align_3d_maps",
                    "params": {"max_shift_A": 40, "log_diagnostics": False},
                    "inputs": {
                        "reference_map": {"map": str(case / "ref.mrc")},
                        "maps_to_align": [{"map": str(case / "mov.mrc")}] * n,
                    },
                }
            )
        )
        walls: dict[str, list[float]] = {mode: [] for mode in MODES}
        peaks: dict[str, float] = dict.fromkeys(MODES, 0.0)
        for _ in range(args.repeats):
            for mode, (options, env) in MODES.items():
                folder = work / f"out_{n}_{mode.replace(' ', '_').replace(',', '')}"
                wall, peak = run(spec, folder, options, env)
                walls[mode].append(wall)
                peaks[mode] = max(peaks[mode], peak)
                print(f"N={n:3d} {mode:18s} {wall:7.1f} s  peak {peak:6.0f} MB", flush=True)
        median = {mode: statistics.median(w) for mode, w in walls.items()}
        for mode in MODES:
            one = median["serial, 1 thread"] / median[mode]
            two = median["serial"] / median[mode]
            span = (min(walls[mode]), max(walls[mode]))
            rows.append((n, mode, median[mode], span, one, two, peaks[mode]))
    heading = (
        f"Measured {machine_line()}; `benchmarks/scale_out.py {' '.join(sys.argv[1:])}` "
        f"(case {args.case}); wall time of the whole command, median (range) of the repeats."
    )
    table = [
        heading,
        "",
        "| volumes | mode | wall (s), median (range) | speed-up vs serial 1 thread | vs serial "
        "| peak MB, largest process |",
        "|---|---|---|---|---|---|",
    ]
    table += [
        f"| {n} | {m} | {w:.1f} ({lo:.1f}-{hi:.1f}) | {a:.2f} | {b:.2f} | {p:.0f} |"
        for n, m, w, (lo, hi), a, b, p in rows
    ]
    (HERE / "results" / "scale_out.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
