"""Calibrate the chance-level check (align3d.engine.alignment.confidence.CHANCE_Z) on real maps.

Runs align_maps on cases that should be sure (real and synthetic maps moved by random
transforms, noise-free and noisy, other grids, small search angles) and on cases that must warn
(unrelated maps, pure noise, a low-pass that leaves blobs, a mask off the molecule), and prints
each case's z (standard deviations above the decoys) and concerns, as a table with the date
and machine. Usage: .venv/bin/python benchmarks/confidence.py [--out benchmarks/results/confidence.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from align3d.engine.alignment.align import align_maps  # noqa: E402
from align3d.engine.alignment.confidence import MIN_GAIN, MIN_Z  # noqa: E402
from align3d.engine.alignment.params import AlignmentParams  # noqa: E402
from align3d.jobs.align_3d_maps.demo import add_noise, protein_like_map  # noqa: E402
from align3d.slots.mrc import read_map  # noqa: E402
from benchmarks.machine import machine_line  # noqa: E402
from tests.helpers import move_with_scipy  # noqa: E402
from tests.oracles.transforms import random_transform  # noqa: E402

DATA = Path(os.environ.get("ALIGN3D_DATA", REPO.parent / "shared" / "data")) / "maps"
VOXEL = {"ribosome70S_65px.mrc": 5.0}


def load(name: str) -> tuple[np.ndarray, float]:
    m = read_map(DATA / name, VOXEL.get(name))
    return m.data, float(m.voxel_size_A[0])


def cases(seed: int) -> list[tuple[str, bool, dict]]:
    """(name, should be sure, arguments of align_maps)."""
    rng = np.random.default_rng(seed)
    out = []
    names = [
        "ribosome70S_65px.mrc",
        "betagal_D2_100px.mrc",
        "groel_D7_100px.mrc",
        "emd6824_trpml3_C4_70px.mrc",
        "synthetic_hand_64px.mrc",
        "emd5168_factin_100px.map",
    ]
    for name in names:
        ref, p = load(name)
        extent = p * ref.shape[0]
        t = random_transform(rng, 0.1 * extent)
        mov = move_with_scipy(ref, p, t.inverse(), ref.shape, p)
        params = AlignmentParams(max_shift_A=0.2 * extent)
        out.append((f"{name} moved", True, dict(ref=ref, p=p, mov=mov, q=p, params=params)))
        noisy_ref = add_noise(ref, p, 0.5, 10.0, seed + 1)
        noisy_mov = add_noise(mov, p, 0.5, 10.0, seed + 2)
        out.append(
            (
                f"{name} moved, SNR 0.5 both",
                True,
                dict(ref=noisy_ref, p=p, mov=noisy_mov, q=p, params=params),
            )
        )
        small = random_transform(rng, 0.05 * extent, max_angle_deg=12.0, flip=False)
        mov_small = move_with_scipy(ref, p, small.inverse(), ref.shape, p)
        params_small = AlignmentParams(max_shift_A=0.2 * extent, max_search_angle_deg=30.0)
        out.append(
            (
                f"{name} 12° within a 30° search",
                True,
                dict(ref=ref, p=p, mov=mov_small, q=p, params=params_small),
            )
        )
        blobs = AlignmentParams(max_shift_A=0.2 * extent, lowpass_resolution_A=0.9 * extent)
        out.append(
            (
                f"{name} low-passed to {0.9 * extent:.0f} Å",
                False,
                dict(ref=ref, p=p, mov=mov, q=p, params=blobs),
            )
        )
        noise = np.random.default_rng(seed + 3).standard_normal(ref.shape).astype(np.float32)
        out.append(
            (f"{name} vs pure noise", False, dict(ref=ref, p=p, mov=noise, q=p, params=params))
        )
        corner = np.zeros(ref.shape, dtype=np.float32)
        n = ref.shape[0]
        corner[: n // 5, : n // 5, : n // 5] = 1.0
        out.append(
            (
                f"{name} masked off the molecule",
                False,
                dict(ref=ref, p=p, mov=mov, q=p, params=params, mask=corner),
            )
        )
    pairs = [
        ("ribosome70S_65px.mrc", "betagal_D2_100px.mrc"),
        ("groel_D7_100px.mrc", "emd6824_trpml3_C4_70px.mrc"),
        ("synthetic_hand_64px.mrc", "ribosome70S_65px.mrc"),
    ]
    for a, b in pairs:
        ref, p = load(a)
        mov, q = load(b)
        params = AlignmentParams(max_shift_A=0.2 * p * ref.shape[0])
        out.append(
            (f"{a} vs {b} (unrelated)", False, dict(ref=ref, p=p, mov=mov, q=q, params=params))
        )
    hand, p_hand = load("synthetic_hand_64px.mrc")
    for k in range(3):
        t = random_transform(rng, 6.0)
        mov = move_with_scipy(hand, p_hand, t.inverse(), hand.shape, p_hand)
        kw = dict(p=p_hand, q=p_hand, params=AlignmentParams(max_shift_A=12))
        out.append((f"hand, pose {k}", True, dict(ref=hand, mov=mov, **kw)))
        noisy = dict(
            ref=add_noise(hand, p_hand, 0.5, 10.0, seed + 10 + k),
            mov=add_noise(mov, p_hand, 0.5, 10.0, seed + 20 + k),
        )
        out.append((f"hand, pose {k}, SNR 0.5 both", True, dict(**noisy, **kw)))
    base = protein_like_map((64, 64, 64), 2.0, seed=3)
    for k in range(11, 16):
        other = protein_like_map((64, 64, 64), 2.0, seed=k)
        kw = dict(p=2.0, q=2.0, params=AlignmentParams(max_shift_A=10))
        out.append(
            (f"synthetic 3 vs synthetic {k} (unrelated)", False, dict(ref=base, mov=other, **kw))
        )
    for k in range(4):
        ref = protein_like_map((64, 64, 64), 2.0, seed=k)
        t = random_transform(rng, 12.0)
        mov = move_with_scipy(ref, 2.0, t.inverse(), (72, 70, 68), 1.9)
        out.append(
            (
                f"synthetic {k} on another grid",
                True,
                dict(ref=ref, p=2.0, mov=mov, q=1.9, params=AlignmentParams(max_shift_A=20)),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "confidence.md")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rows = []
    for name, sure, kw in cases(args.seed):
        start = time.perf_counter()
        mask = kw.get("mask")
        result = align_maps(
            kw["ref"],
            kw["mov"],
            reference_voxel_A=kw["p"],
            moving_voxel_A=kw["q"],
            params=kw["params"],
            moving_mask=mask,
        )
        codes = ",".join(c.code for c in result.concerns()) or "-"
        assert result.chance is not None
        warned = any(
            c.code in ("not_above_chance", "lowpass_too_coarse") for c in result.concerns()
        )
        ok = warned != sure
        rows.append(
            f"| {name} | {'sure' if sure else 'must warn'} | {result.chance.z:.1f} | {result.chance.gain:.2f} | "
            f"{result.chance.score:.3f} | {result.chance.decoy_median:.3f} | "
            f"{result.chance.decoy_spread:.3f} | {result.chance.decoy_max:.3f} | "
            f"{result.timings_s['confidence']:.2f} | "
            f"{result.score:.3f} | {codes} | {'ok' if ok else 'WRONG'} | {time.perf_counter() - start:.1f} |"
        )
        print(rows[-1], flush=True)
    header = [
        f"Chance-level calibration: {machine_line()} (benchmarks/confidence.py --seed "
        f"{args.seed}). z: robust deviations above the decoys' median; gain: share of the room "
        f"above it; a case warns when z < {MIN_Z:g} or gain < {MIN_GAIN:g} "
        "(engine/alignment/confidence.py).",
        "",
        "| case | expected | z | gain | search score | decoy median | decoy spread | decoy max | check (s) | final score | concerns | verdict | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + rows) + "\n")


if __name__ == "__main__":
    main()
