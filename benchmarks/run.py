"""align3d vs EMalign: speed and accuracy, side by side, on real maps moved by known transforms.

One command, from the repository root (after ``bash benchmarks/setup_emalign.sh`` once)::

    .venv/bin/python benchmarks/run.py [--sizes 128 256] [--cases 3] [--skip-emalign]
                                       [--skip-align3d] [--reuse [emalign]] [--lowpass 10]

First one untimed align3d run fills numba's on-disk compilation cache once per install, as a
user's first run does (``--no-warmup`` skips it). Then for every box size and case index it
makes the case if missing (make_cases.py: reference map, moving map, truth.json) and runs the
two commands a user runs, one after the other, each as its own process under ``/usr/bin/time
-v`` (peak resident memory of that process alone; :func:`run_measured`): ``align3d align REF
MOV --out A.mrc --json S.json`` and EMalign's own command-line path (``emalign_runner.py``:
read both maps, align, write the aligned map, in ``benchmarks/.emalign-venv``), each started
after ``sync``. It prints a Markdown table headed by the date and the machine, and writes ``benchmarks/results/table.md`` and
``benchmarks/results/results.json``. Per-case outputs (both tools' JSON, aligned maps, logs) are
in ``benchmarks/results/cases/<case>/``.

Columns: wall time of each whole command (interpreter start-up, imports, reading, aligning and
writing: what the user waits for), the ratio EMalign / align3d, rotation error (°), translation
error (Å and reference voxels), whether the hand is right, peak memory (MB), and the correlation
of each tool's aligned map with the reference (whole box). For symmetric maps (D2, C4, D7) the
transform errors are taken modulo the map's point group (the operator ``g`` minimising the
rotation error; ``g`` composed with the truth is an equally right answer). The group's axes are
checked numerically on each reference (``symmetry_min_cc`` in truth.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(REPO_ROOT))

from machine import machine_line  # noqa: E402
from make_cases import MAPS, correlation, default_data_dir, make_case, read_map  # noqa: E402

from align3d.engine.alignment.geometry import RigidTransform  # noqa: E402

RESULTS = BENCH_DIR / "results"
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")
EMALIGN_PYTHON = BENCH_DIR / ".emalign-venv" / "bin" / "python"
ALIGN3D = Path(sys.executable).with_name("align3d")
USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""Both tools run as in a user's shell: Python keeps its bytecode caches (a sandbox that sets
PYTHONDONTWRITEBYTECODE would recompile every module of an editable install on every run)."""


def align3d_command(
    ref: Path, mov: Path, out_dir: Path, lowpass: float, max_shift: float
) -> list[str]:
    """The command a user types to align two maps (``--force``: each repeat replaces the last
    one's outputs)."""
    return [
        str(ALIGN3D),
        "align",
        "--force",
        str(ref),
        str(mov),
        "--out",
        str(out_dir / "align3d_aligned.mrc"),
        "--json",
        str(out_dir / "align3d.json"),
        "--lowpass",
        str(lowpass),
        "--max-shift",
        str(max_shift),
    ]


def spread(runs: list[dict]) -> dict:
    """The last run's report with the median wall time of all runs (``process_s``) and their
    range; a failed run makes the whole a failure."""
    if not runs:
        return {}
    doc = dict(runs[-1])
    if any(r.get("exit") != 0 for r in runs):
        return next(r for r in runs if r.get("exit") != 0)
    times = [r["process_s"] for r in runs]
    doc["process_s"] = float(np.median(times))
    doc["process_s_all"] = times
    return doc


def timing(doc: dict, spec: str) -> str:
    """``median (min-max)`` of a tool's wall times (the median alone for one run)."""
    times = doc.get("process_s_all") or [doc.get("process_s")]
    median = format(doc.get("process_s"), spec)
    if len(times) < 2:
        return median
    return f"{median} ({format(min(times), spec)}-{format(max(times), spec)})"


def from_summary(doc: dict, out_dir: Path) -> dict:
    """``align3d align``'s summary in the runner's terms (``flip``, ``aligned_map``)."""
    if doc.get("exit") == 0 and "rotation" in doc:
        doc["flip"] = doc["hand_flipped"]
        doc["aligned_map"] = str(out_dir / "align3d_aligned.mrc")
    return doc


CLOSE_INHERITED = ("sh", "-c", 'exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; exec "$@"', "sh")
"""Run a command with the standard streams only: GNU time leaves its ``-o`` file open (fd 3,
for writing) in the command it times, which a user's command does not have (and align3d's exit
collects garbage while a file is open for writing, :mod:`align3d.engine.process_end`)."""


def run_measured(cmd: list[str], log: IO[str], time_file: Path, timeout: float) -> int | str:
    """Run ``cmd`` under ``/usr/bin/time -v`` (report to ``time_file``), its output to ``log``,
    with only the standard streams open; its exit status or ``"timeout"``. GNU time, a small
    process, starts the command: a command started by this one (which holds maps) would be
    charged this process's resident memory in its peak (``wait4`` counts the memory of the
    process it forked from)."""
    full = ([GNU_TIME, "-v", "-o", str(time_file)] if GNU_TIME else []) + [*CLOSE_INHERITED, *cmd]
    try:
        return subprocess.run(
            full, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, cwd=REPO_ROOT, env=USER_ENV
        ).returncode
    except subprocess.TimeoutExpired:
        return "timeout"


def peak_MB(time_file: Path) -> float | None:
    """The peak resident memory (MB) in a ``/usr/bin/time -v`` report, None without one."""
    if time_file.exists():
        for line in time_file.read_text().splitlines():
            if "Maximum resident set size" in line:
                return int(line.split(":")[-1]) / 1024.0
    return None


def run_tool(name: str, cmd: list[str], case_dir: Path, timeout: float) -> dict:
    """Run one runner as its own process; return its JSON plus exit status and peak memory.
    Started after ``sync``: the write-back of the other tool's outputs does not land in this
    one's time (both tools alike)."""
    out_json = case_dir / f"{name}.json"
    time_file = case_dir / f"{name}.time"
    log_file = case_dir / f"{name}.log"
    out_json.unlink(missing_ok=True)
    time_file.unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(
            f"  warning: load average {load_before:.2f} before {name}: other work on this "
            "machine skews the timings",
            flush=True,
        )
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    with log_file.open("w") as log:
        rc = run_measured(cmd, log, time_file, timeout)
    elapsed = time.perf_counter() - t0
    log_tail = log_file.read_text(errors="replace")[-2000:]
    print(
        f"  {name}: exit {rc}, {elapsed:.1f} s  | {log_tail.strip().splitlines()[-1] if log_tail.strip() else ''}",
        flush=True,
    )
    doc = json.loads(out_json.read_text()) if rc == 0 and out_json.exists() else {}
    doc["exit"] = rc
    doc["process_s"] = elapsed
    doc["loadavg_1min_before"] = load_before
    doc["loadavg_1min_after"] = os.getloadavg()[0]
    doc["process_peak_rss_MB"] = peak_MB(time_file)
    if rc == 0:  # what --reuse needs of this run besides the tool's own report
        outer = {
            "process_s": elapsed,
            "loadavg_1min_before": load_before,
            "process_peak_rss_MB": doc["process_peak_rss_MB"],
        }
        (case_dir / f"{name}.process.json").write_text(json.dumps(outer) + "\n")
    else:
        doc["log_tail"] = log_tail
    return doc


def load_reused(case_dir: Path, name: str) -> dict | None:
    """A tool's last result for a case, with the wall time measured from outside its process
    (:func:`run_tool` keeps it beside the result); None when there is none newer than the case
    (then the tool runs)."""
    p = case_dir / f"{name}.json"
    outer = case_dir / f"{name}.process.json"
    truth = case_dir / "truth.json"
    if p.exists() and outer.exists() and p.stat().st_mtime > truth.stat().st_mtime:
        doc = json.loads(p.read_text())
        doc.update(json.loads(outer.read_text()))
        doc.setdefault("exit", 0)
        doc["reused"] = True
        return doc
    return None


def errors(doc: dict, truth: dict, ref: np.ndarray) -> dict:
    """Transform errors (modulo the point group) and the aligned map's correlation."""
    if not doc or doc.get("exit") != 0 or "rotation" not in doc:
        return {}
    est = RigidTransform(doc["rotation"], doc["shift_A"], doc["flip"])
    true = RigidTransform(truth["rotation"], truth["shift_A"], truth["flip"])
    best = None
    for g in truth["symmetry_ops"]:
        # ref(g y) = ref(y): (g R, g t, flip) is an equally right answer.
        cand = RigidTransform(
            np.asarray(g) @ true.rotation, np.asarray(g) @ true.shift_A, true.flip
        )
        err = (est.rotation_error_deg(cand), est.shift_error_A(cand))
        if best is None or err[0] < best[0]:
            best = err
    out = {
        "rotation_error_deg": best[0],
        "shift_error_A": best[1],
        "shift_error_vox": best[1] / truth["voxel_A"],
        "hand_right": est.flip == true.flip,
    }
    aligned = doc.get("aligned_map")
    if aligned and Path(aligned).exists():
        vol, _ = read_map(Path(aligned), 1.0)
        if vol.shape == ref.shape:
            out["aligned_cc"] = correlation(ref, vol)
    return out


def fmt(value, spec: str = ".2f", missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return format(value, spec)


def table(rows: list[dict]) -> str:
    head = [
        "case",
        "size",
        "sym",
        "align3d s, median (range)",
        "EMalign s, median (range)",
        "ratio EM/a3d (medians)",
        "rot err ° a3d",
        "rot err ° EM",
        "shift err Å a3d",
        "shift err Å EM",
        "shift err vox a3d",
        "shift err vox EM",
        "hand a3d",
        "hand EM",
        "peak MB a3d",
        "peak MB EM",
        "aligned cc a3d",
        "aligned cc EM",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        a, e = r["align3d"], r["emalign"]
        ea, ee = r["align3d_err"], r["emalign_err"]
        a_ok, e_ok = a.get("exit") == 0, e.get("exit") == 0
        ratio = e["process_s"] / a["process_s"] if a_ok and e_ok and a.get("process_s") else None

        def peak(d):
            return d.get("process_peak_rss_MB", d.get("peak_rss_MB"))

        def status(d):
            return "skipped" if not d else f"failed ({d.get('exit')})"

        lines.append(
            "| "
            + " | ".join(
                [
                    r["case"],
                    str(r["size"]),
                    r["symmetry"],
                    timing(a, ".1f") if a_ok else status(a),
                    timing(e, ".1f") if e_ok else status(e),
                    fmt(ratio, ".1f"),
                    fmt(ea.get("rotation_error_deg")),
                    fmt(ee.get("rotation_error_deg")),
                    fmt(ea.get("shift_error_A")),
                    fmt(ee.get("shift_error_A")),
                    fmt(ea.get("shift_error_vox")),
                    fmt(ee.get("shift_error_vox")),
                    fmt(ea.get("hand_right")),
                    fmt(ee.get("hand_right")),
                    fmt(peak(a), ".0f") if a_ok else "–",
                    fmt(peak(e), ".0f") if e_ok else "–",
                    fmt(ea.get("aligned_cc"), ".4f"),
                    fmt(ee.get("aligned_cc"), ".4f"),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument(
        "--cases",
        type=int,
        default=3,
        help=f"cases per size; maps cycle {', '.join(m.label for m in MAPS)}",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-emalign", action="store_true")
    ap.add_argument("--skip-align3d", action="store_true")
    ap.add_argument(
        "--reuse",
        nargs="?",
        const="all",
        choices=["all", "emalign", "align3d"],
        default=None,
        help="reuse existing results (of both tools, or of the one named) for a case when "
        "newer than the case: e.g. --reuse emalign while align3d changes",
    )
    ap.add_argument("--lowpass", type=float, default=10.0, help="align3d working resolution, Å")
    ap.add_argument(
        "--emalign-downsample",
        type=int,
        default=None,
        help="EMalign --downsample (default: EMalign's own, 64)",
    )
    ap.add_argument("--timeout", type=float, default=3600.0, help="per tool run, s")
    ap.add_argument("--repeats", type=int, default=3, help="align3d runs per case")
    ap.add_argument(
        "--emalign-repeats", type=int, default=1, help="EMalign runs per case (~0.5-1 min each)"
    )
    ap.add_argument("--remake-cases", action="store_true")
    ap.add_argument(
        "--table",
        default="table",
        help="name of the table and results files in benchmarks/results/ (default: table, "
        "the README's; e.g. table_360 for a run at another size)",
    )
    ap.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed align3d run that fills numba's on-disk cache",
    )
    args = ap.parse_args(argv)

    data_dir = default_data_dir()
    if not data_dir.is_dir():
        print(f"skipped: no maps at {data_dir} (set ALIGN3D_DATA)")
        return 0
    run_emalign = not args.skip_emalign
    if run_emalign and not EMALIGN_PYTHON.exists():
        print("EMalign venv missing: run `bash benchmarks/setup_emalign.sh` (or --skip-emalign)")
        return 2

    if not args.skip_align3d and not args.no_warmup:
        # numba compiles align3d's kernels on first use and caches them on disk (cache=True);
        # one untimed run on the smallest case fills that cache so that no timed run pays it.
        case_dir = make_case(
            0, min(args.sizes), args.seed, RESULTS / "cases", data_dir, force=args.remake_cases
        )
        warm = RESULTS / "warmup"
        warm.mkdir(parents=True, exist_ok=True)
        print("warm-up (numba cache):", flush=True)
        run_tool(
            "align3d",
            align3d_command(case_dir / "ref.mrc", case_dir / "mov.mrc", warm, args.lowpass, 40.0),
            warm,
            args.timeout,
        )

    rows = []
    for size in args.sizes:
        for i in range(args.cases):
            t0 = time.perf_counter()
            case_dir = make_case(
                i, size, args.seed, RESULTS / "cases", data_dir, force=args.remake_cases
            )
            truth = json.loads((case_dir / "truth.json").read_text())
            print(
                f"{case_dir.name}: {truth['symmetry']}, box {size}, {truth['voxel_A']:.3f} Å "
                f"(case ready in {time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
            ref_path, mov_path = case_dir / "ref.mrc", case_dir / "mov.mrc"

            a_runs: list[dict] = []
            e_runs: list[dict] = []
            cmd = [
                str(EMALIGN_PYTHON),
                str(BENCH_DIR / "emalign_runner.py"),
                str(ref_path),
                str(mov_path),
                str(case_dir / "emalign.json"),
                "--aligned",
                str(case_dir / "emalign_aligned.mrc"),
            ]
            if args.emalign_downsample:
                cmd += ["--downsample", str(args.emalign_downsample)]
            # the tools take turns, repeat by repeat, so that a slow spell of a shared machine
            # does not land on one tool only
            for repeat in range(max(args.repeats, args.emalign_repeats)):
                if not args.skip_align3d and repeat < args.repeats:
                    reused = args.reuse in ("all", "align3d") and load_reused(case_dir, "align3d")
                    a_runs.append(
                        from_summary(
                            reused
                            or run_tool(
                                "align3d",
                                align3d_command(
                                    ref_path, mov_path, case_dir, args.lowpass, truth["max_shift_A"]
                                ),
                                case_dir,
                                args.timeout,
                            ),
                            case_dir,
                        )
                    )
                if run_emalign and repeat < args.emalign_repeats:
                    reused = args.reuse in ("all", "emalign") and load_reused(case_dir, "emalign")
                    e_runs.append(reused or run_tool("emalign", cmd, case_dir, args.timeout))
            a_doc, e_doc = spread(a_runs), spread(e_runs)

            ref, _ = read_map(ref_path)
            rows.append(
                {
                    "case": case_dir.name,
                    "size": size,
                    "symmetry": truth["symmetry"],
                    "voxel_A": truth["voxel_A"],
                    "truth": {
                        k: truth[k]
                        for k in (
                            "rotation",
                            "shift_A",
                            "flip",
                            "angle_deg",
                            "max_shift_A",
                            "symmetry_min_cc",
                        )
                    },
                    "align3d": a_doc,
                    "emalign": e_doc,
                    "align3d_err": errors(a_doc, truth, ref),
                    "emalign_err": errors(e_doc, truth, ref),
                }
            )
            del ref

    md = f"Measured {machine_line()}; `{' '.join(['benchmarks/run.py', *sys.argv[1:]])}`\n\n"
    md += table(rows)
    for size in args.sizes:
        a = [
            r["align3d"]["process_s"]
            for r in rows
            if r["size"] == size and r["align3d"].get("exit") == 0
        ]
        e = [
            r["emalign"]["process_s"]
            for r in rows
            if r["size"] == size and r["emalign"].get("exit") == 0
        ]
        parts = [f"size {size}:"]
        if a:
            parts.append(f"align3d median {np.median(a):.2f} s")
        if e:
            parts.append(f"EMalign median {np.median(e):.1f} s")
        if a and e:
            parts.append(f"ratio of medians {np.median(e) / np.median(a):.1f}")
        md += ("\n\n" if size == args.sizes[0] else "; ") + parts[0] + " " + ", ".join(parts[1:])
    notes = (
        "\n\nWall time: the whole command, as a user waits for it (interpreter start-up, "
        "imports, reading both maps, aligning, writing the aligned map). Peak MB: maximum resident set size of each tool's process "
        "(/usr/bin/time -v). Errors for symmetric maps (D2, C4, D7) are modulo the point group. "
        "EMalign: defaults (downsample 64, 30 projections, BFGS refinement; both hands; no "
        "maximum shift); its shift is refined to whole voxels only. align3d: lowpass "
        f"{args.lowpass} Å, max shift = the case's bound. Runs per case: align3d "
        f"{args.repeats}, EMalign {args.emalign_repeats}, taking turns.\n"
    )
    print()
    print(md + notes)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.table}.md").write_text(md + notes)
    (
        RESULTS / f"{args.table}.json" if args.table != "table" else RESULTS / "results.json"
    ).write_text(
        json.dumps(
            {
                "argv": sys.argv[1:],
                "cpu_count": os.cpu_count(),
                "rows": rows,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"wrote {RESULTS / (args.table + '.md')} and its JSON")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
