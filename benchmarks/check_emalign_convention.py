"""Verify emalign_runner.py's conversion of EMalign's output to align3d's convention.

Run with the project venv, after setup_emalign.sh (takes a few minutes: one EMalign run per case)::

    .venv/bin/python benchmarks/check_emalign_convention.py [--box 96] [--per-hand 2] [--seed 7]

For each case it takes the real 70S ribosome map (65^3, 5 Å/voxel; background removed, soft
spherical mask), zero-pads it to an even box keeping the centre at N//2, draws a known transform
``T = (R, t, flip)`` with ``random_transform`` (half the cases with the hand flip), builds the
moving map ``M(x) = V_ref(R F^flip x + t)`` (cubic B-spline, index space), runs EMalign through
emalign_runner.py and checks

1. the converted transform against ``T``: rotation error < 2°, shift error < 1 voxel, hand right;
2. independently of ``T``: ``M`` moved onto the reference grid with the converted transform by our
   own resampler (``V_out(y) = M(F^f R^T (y - t))``) against EMalign's own aligned map
   (correlation ~1), and the same for two wrong conversions (without EMalign's rotation-centre
   offset ``b``; without the (N-1)/2 flip offset), to show those terms matter;
3. ``fastrotate3d``'s measured linear part against ``P bestR P``.

Exit status 0 when every case passes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

from make_cases import (  # noqa: E402
    MAPS,
    correlation,
    default_data_dir,
    move_map,
    pad_centred,
    prepare_source,
    read_map,
    write_map,
)

from align3d.engine.alignment.geometry import RigidTransform  # noqa: E402
from tests.oracles.transforms import random_transform  # noqa: E402

EMALIGN_PYTHON = BENCH_DIR / ".emalign-venv" / "bin" / "python"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--box", type=int, default=96, help="even box for the padded ribosome")
    ap.add_argument("--per-hand", type=int, default=2, help="cases without and with the flip")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-shift", type=float, default=40.0, help="Å")
    ap.add_argument("--keep", type=Path, default=None, help="keep the maps and JSON here")
    args = ap.parse_args(argv)
    if not EMALIGN_PYTHON.exists():
        print("run benchmarks/setup_emalign.sh first", file=sys.stderr)
        return 2

    src = MAPS[0]  # ribosome, C1, 5 Å
    vol, voxel = prepare_source(src, default_data_dir())
    ref = pad_centred(vol, args.box)
    rng = np.random.default_rng(args.seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix="emalign_check_"))
    work.mkdir(parents=True, exist_ok=True)
    write_map(work / "ref.mrc", ref, voxel)

    rows, ok_all = [], True
    for k in range(2 * args.per_hand):
        flip = k >= args.per_hand
        truth = random_transform(rng, args.max_shift, 180.0, flip=flip)
        mov = move_map(ref, voxel, truth, order=3)
        case = work / f"case{k}"
        write_map(case / "mov.mrc", mov, voxel)
        (case / "truth.json").write_text(
            json.dumps(
                {
                    "rotation": truth.rotation.tolist(),
                    "shift_A": truth.shift_A.tolist(),
                    "flip": truth.flip,
                },
                indent=2,
            )
        )
        subprocess.run(
            [
                str(EMALIGN_PYTHON),
                str(BENCH_DIR / "emalign_runner.py"),
                str(work / "ref.mrc"),
                str(case / "mov.mrc"),
                str(case / "emalign.json"),
                "--aligned",
                str(case / "emalign_aligned.mrc"),
                "--probe-matrix",
            ],
            check=True,
        )
        res = json.loads((case / "emalign.json").read_text())
        est = RigidTransform(res["rotation"], res["shift_A"], res["flip"])
        rot_err = est.rotation_error_deg(truth)
        shift_err = est.shift_error_A(truth)
        hand_ok = est.flip == truth.flip

        # Independent of the truth: our resampling with the converted transform vs EMalign's map.
        em_aligned, _ = read_map(case / "emalign_aligned.mrc")
        ours = move_map(mov, voxel, est.inverse(), order=3)
        cc_ours = correlation(ours, em_aligned)
        raw = res["emalign_raw"]
        b_A = np.asarray(raw["fastrotate_offset_vox"]) * voxel
        no_b = RigidTransform(est.rotation, est.shift_A - b_A, est.flip)
        cc_no_b = correlation(move_map(mov, voxel, no_b.inverse(), order=3), em_aligned)
        if est.flip:
            z_off = est.rotation @ np.array([0.0, 0.0, voxel])
            no_z = RigidTransform(est.rotation, est.shift_A + z_off, est.flip)
            cc_no_z = correlation(move_map(mov, voxel, no_z.inverse(), order=3), em_aligned)
        else:
            cc_no_z = float("nan")
        lin_diff = res["conversion_check"]["max_abs_diff_vs_P_bestR_P"]
        ok = rot_err < 2.0 and shift_err < voxel and hand_ok and cc_ours > 0.99 and lin_diff < 0.02
        ok_all &= ok
        rows.append(
            (
                k,
                truth.angle_deg,
                float(np.linalg.norm(truth.shift_A)),
                truth.flip,
                rot_err,
                shift_err,
                shift_err / voxel,
                hand_ok,
                raw["bestcorr"],
                cc_ours,
                cc_no_b,
                cc_no_z,
                lin_diff,
                res["wall_s"],
                ok,
            )
        )

    print(f"\nEMalign conversion check: ribosome70S at {voxel} Å, box {args.box}, maps in {work}")
    print(
        "| case | true angle ° | true abs(t) Å | flip | rot err ° | shift err Å | shift err vox "
        "| hand ok | EMalign corr | cc(ours, EMalign map) | cc without b | cc without z-flip "
        "offset | lin. part diff | EMalign wall s | pass |"
    )
    print("|" + "---|" * 15)
    for r in rows:
        print(
            f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:.2f} "
            f"| {r[7]} | {r[8]:.4f} | {r[9]:.5f} | {r[10]:.5f} | {r[11]:.5f} | {r[12]:.4f} "
            f"| {r[13]:.1f} | {'yes' if r[14] else 'NO'} |"
        )
    print("PASS" if ok_all else "FAIL")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
