"""Scale-out benchmark: one job aligning N volumes, serially, in local processes, on a Dask
LocalCluster. Wall time of the whole job (interpreter start included) and peak memory.

    .venv/bin/python benchmarks/scale_out.py [--counts 1 4 16] [--case ribosome_128_00]

"serial, 1 thread" is the classic baseline of parallel efficiency; "serial" already uses every
core inside each alignment (numba kernels, FFTs). Uses a 128^3 case made by
benchmarks/make_cases.py (made if missing). Writes benchmarks/results/scale_out.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES: dict[str, tuple[list[str], dict[str, str]]] = {
    "serial, 1 thread": (["--workers", "1"], {"NUMBA_NUM_THREADS": "1"}),
    "serial": (["--workers", "1"], {}),
    "processes": ([], {}),
    "dask LocalCluster": (["--scheduler", "local"], {}),
}


def run(spec: Path, out: Path, options: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time (s) of ``align3d run`` and the peak RSS (MB) of its processes."""
    command = [
        "/usr/bin/time",
        "-f",
        "%M",
        sys.executable,
        "-m",
        "engine.cli",
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
    own = int(proc.stderr.strip().splitlines()[-1]) / 1024  # kB -> MB
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, max(own, children)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--case", default="ribosome_128_00")
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
        times: dict[str, float] = {}
        for mode, (options, env) in MODES.items():
            folder = work / f"out_{n}_{mode.replace(' ', '_').replace(',', '')}"
            wall, peak = run(spec, folder, options, env)
            times[mode] = wall
            one, two = times["serial, 1 thread"] / wall, times.get("serial", wall) / wall
            rows.append((n, mode, wall, one, two, peak))
            print(
                f"N={n:3d} {mode:18s} {wall:7.1f} s  x{one:4.2f} (1 thread) x{two:4.2f} "
                f"(serial)  peak {peak:6.0f} MB",
                flush=True,
            )
    table = [
        "| volumes | mode | wall (s) | speed-up vs serial 1 thread | vs serial | peak MB |",
        "|---|---|---|---|---|---|",
    ]
    table += [f"| {n} | {m} | {w:.1f} | {a:.2f} | {b:.2f} | {p:.0f} |" for n, m, w, a, b, p in rows]
    (HERE / "results" / "scale_out.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
