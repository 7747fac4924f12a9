"""Jobs users run, with their time and memory: real-sized volumes with half maps, side by side
with the floor of the bytes no design can avoid.

Cases (synthetic protein-like maps, made once into benchmarks/results/big/; each volume has a
map, a sharpened map, two half maps and a mask):

* ``five_map_360``: a 360^3 reference (0.90 Å) and three volumes of 320^3 (0.99 Å);
* ``classes_400``: eight classes at 400^3 as one volumes group, with particles by class;
* ``refinement_600``: one 600^3 refinement (0.83 Å) onto a 560^3 reference (0.89 Å).

For each case and repeat: the whole command (``align3d run``) with a warm page cache and with a
cold one (``echo 3 > /proc/sys/vm/drop_caches`` first, when permitted), its wall time, CPU use
(user + system over wall), the peak memory of its largest process and of all its processes
together (sampled from /proc every 50 ms), and the I/O floor: reading every input and writing
every output with mrcfile, timed the same way. Every timed command starts after ``sync``. Writes ``benchmarks/big_jobs.md`` with the date
and the machine.

    .venv/bin/python benchmarks/big_jobs.py [--cases five_map_360 ...] [--repeats 3] [--no-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_line  # noqa: E402

WORK = REPO / "benchmarks" / "results" / "big"
ALIGN3D = REPO / ".venv" / "bin" / "align3d"
CASES = {
    "five_map_360": {"ref": (360, 0.90), "volumes": 3, "box": 320, "voxel": 0.99, "group": False},
    "classes_400": {"ref": (400, 1.00), "volumes": 8, "box": 400, "voxel": 1.00, "group": True},
    "refinement_600": {"ref": (560, 0.89), "volumes": 1, "box": 600, "voxel": 0.83, "group": False},
}


def make_case(name: str) -> Path:
    """Write the case's maps and spec (once; reused when present)."""
    from scipy.spatial.transform import Rotation

    from align3d.engine.alignment.fourier import lowpass
    from align3d.engine.alignment.geometry import RigidTransform
    from align3d.engine.alignment.resample import GridMove, resample_map
    from align3d.jobs.align_3d_maps.demo import protein_like_map
    from align3d.slots.mrc import write_map

    spec_path = WORK / name / "spec.json"
    if spec_path.exists():
        return spec_path
    case = CASES[name]
    folder = spec_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    box, voxel = case["ref"]
    reference = protein_like_map((box,) * 3, voxel, blur_A=1.2, seed=1)
    write_map(folder / "ref.mrc", reference, voxel)
    rng = np.random.default_rng(0)
    volumes = []
    for k in range(1, case["volumes"] + 1):
        turn = Rotation.random(random_state=k).as_matrix()
        truth = RigidTransform(turn, rng.uniform(-8, 8, 3), bool(k % 2))
        shape = (case["box"],) * 3
        moving = resample_map(
            reference,
            GridMove(
                transform=truth.inverse(),
                in_voxel_A=voxel,
                out_shape=shape,
                out_voxel_A=case["voxel"],
            ),
        )
        files = {"map": f"v{k}_map.mrc"}
        write_map(folder / files["map"], moving, case["voxel"])
        for half in ("A", "B"):
            noise = 0.05 * rng.standard_normal(shape).astype(np.float32)
            files[f"map_half_{half}"] = f"v{k}_half_{half}.mrc"
            write_map(folder / files[f"map_half_{half}"], moving + noise, case["voxel"])
        files["map_sharp"] = f"v{k}_sharp.mrc"
        write_map(
            folder / files["map_sharp"],
            2 * moving - lowpass(moving, voxel_A=case["voxel"], resolution_A=8.0),
            case["voxel"],
        )
        files["mask"] = f"v{k}_mask.mrc"
        low = lowpass(moving, voxel_A=case["voxel"], resolution_A=15.0)
        write_map(folder / files["mask"], (low > 0.02).astype(np.float32), case["voxel"])
        volumes.append(files)
    params: dict = {}
    inputs: dict = {"reference_map": {"map": "ref.mrc"}}
    if case["group"]:
        inputs["maps_to_align_group"] = {"volumes": volumes}
        params["update_particle_alignments"] = True
        inputs["particles_all"] = {"path": _class_particles(folder, case["volumes"], rng)}
    else:
        inputs["maps_to_align"] = volumes
    spec_path.write_text(json.dumps({"job": "align_3d_maps", "params": params, "inputs": inputs}))
    return spec_path


def _class_particles(folder: Path, classes: int, rng: np.random.Generator) -> str:
    """A RELION 3.1 particle file: 20 000 particles spread over the classes."""
    import pandas as pd
    import starfile

    n = 20000
    optics = pd.DataFrame(
        {"rlnOpticsGroup": [1], "rlnImagePixelSize": [1.0], "rlnImageSize": [400]}
    )
    angles = rng.uniform(-180, 180, (n, 3))
    particles = pd.DataFrame(
        {
            "rlnImageName": [f"{i + 1:06d}@stack.mrcs" for i in range(n)],
            "rlnAngleRot": angles[:, 0],
            "rlnAngleTilt": np.abs(angles[:, 1]) % 180,
            "rlnAnglePsi": angles[:, 2],
            "rlnOriginXAngst": rng.normal(0, 3, n),
            "rlnOriginYAngst": rng.normal(0, 3, n),
            "rlnClassNumber": rng.integers(1, classes + 1, n),
            "rlnOpticsGroup": np.ones(n, dtype=int),
        }
    )
    starfile.write({"optics": optics, "particles": particles}, folder / "particles.star")
    return "particles.star"


def _tree(root: int) -> list[int]:
    pids = [root]
    for pid in pids:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    return pids


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def timed(cmd: list[str], cwd: Path) -> dict:
    """Wall time, CPU use and peak memory (largest process, all processes) of a command, started
    on a quiet disk: ``sync`` first, so that the write-back of a previous run's outputs does
    not land in this one's time."""
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    before = os.times()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peaks = {"largest": 0, "total": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            sizes = [_rss(p) for p in _tree(proc.pid)]
            peaks["largest"] = max(peaks["largest"], max(sizes, default=0))
            peaks["total"] = max(peaks["total"], sum(sizes))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    return {
        "wall_s": wall,
        "cpu": cpu / wall,
        "largest_MB": peaks["largest"] / 2**20,
        "total_MB": peaks["total"] / 2**20,
    }


def io_floor(spec: Path, out: Path) -> dict:
    """Read every input map and write as many output maps (reference grid), with mrcfile."""
    code = f"""
import json, mrcfile, numpy as np, sys
from pathlib import Path
spec = json.loads(Path({str(spec)!r}).read_text()); folder = Path({str(spec.parent)!r})
ref = mrcfile.read(folder / spec["inputs"]["reference_map"]["map"])
vols = spec["inputs"].get("maps_to_align") or spec["inputs"]["maps_to_align_group"]["volumes"]
out = Path({str(out)!r}); out.mkdir(parents=True, exist_ok=True)
for k, v in enumerate(vols):
    for name, path in v.items():
        data = mrcfile.read(folder / path)
        with mrcfile.new(out / f"{{k}}_{{name}}.mrc", overwrite=True) as m:
            m.set_data(np.zeros(ref.shape, np.float32) + data.flat[0])
"""
    return timed([sys.executable, "-c", code], spec.parent)


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache runs")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "big_jobs.md")
    args = parser.parse_args()
    rows = []
    for name in args.cases:
        spec = make_case(name)
        for cache in ["warm"] + ([] if args.no_cold else ["cold"]):
            runs, floors = [], []
            for _ in range(args.repeats):
                if cache == "cold" and not drop_caches():
                    break
                floors.append(io_floor(spec, spec.parent / "floor"))
                if cache == "cold":
                    drop_caches()
                out = spec.parent / "out"
                subprocess.run(["rm", "-rf", str(out)], check=True)
                runs.append(
                    timed(
                        [str(ALIGN3D), "run", str(spec), "--out", str(out), "--quiet"], spec.parent
                    )
                )
                print(name, cache, runs[-1], "floor", floors[-1], flush=True)
            if not runs:
                continue
            walls = [r["wall_s"] for r in runs]
            floor = statistics.median(f["wall_s"] for f in floors)
            rows.append(
                f"| {name} | {cache} | {statistics.median(walls):.1f} ({min(walls):.1f}-{max(walls):.1f}) | "
                f"{statistics.median(r['cpu'] for r in runs):.2f} | {floor:.1f} | "
                f"{statistics.median(walls) / floor:.1f} | "
                f"{max(r['largest_MB'] for r in runs):.0f} | {max(r['total_MB'] for r in runs):.0f} |"
            )
    header = [
        f"Real-sized jobs: {machine_line()} (benchmarks/big_jobs.py {' '.join(sys.argv[1:])}). "
        "Wall time of the whole `align3d run` command, median (range); CPU use = (user + system) "
        "/ wall, of 2 cores; I/O floor = reading every input and writing every output with "
        "mrcfile; peak memory of the largest process and of all processes together.",
        "",
        "| case | cache | wall (s) | CPU use | I/O floor (s) | x floor | peak MB, largest | peak MB, all |",
        "|---|---|---|---|---|---|---|---|",
    ]
    args.out.write_text("\n".join(header + rows) + "\n")
    print("\n".join(header + rows))


if __name__ == "__main__":
    main()
