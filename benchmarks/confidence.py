"""Calibrate the chance-level check (align3d.engine.alignment.confidence.MIN_Z, MIN_GAIN) on
real maps.

Runs align_maps on cases that should be sure (real and synthetic maps moved by random
transforms, noise-free and noisy, other grids, small search angles, perfect and near-perfect
matches within a narrow search and a small shift limit, fixtures/workflow.json's ``check``) and
on cases that must warn (unrelated maps, pure noise, a low-pass that leaves blobs, a mask off the
molecule, a true rotation far beyond a 30° search), and prints each case's z (robust deviations
above the decoys), the score a sure answer needs, and the concerns, as a table with the date and
machine. Usage: .venv/bin/python benchmarks/confidence.py [--out benchmarks/results/confidence.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from align3d.engine.alignment.align import align_maps  # noqa: E402
from align3d.engine.alignment.confidence import MIN_GAIN, MIN_Z  # noqa: E402
from align3d.engine.alignment.geometry import RigidTransform  # noqa: E402
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
                dict(ref=ref, p=p, mov=mov_small, q=p, params=params_small, sure_codes=NOT_SURE),
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
    return out + narrow_cases(seed, names)


CHANCE = frozenset({"not_above_chance", "lowpass_too_coarse"})
"""The concerns that say an answer is not sure (a case "warns" when it has one of them)."""
LIMITS = frozenset({"shift_at_limit", "shift_limited", "angle_at_limit", "angle_limited"})
NOT_SURE = CHANCE | LIMITS


def narrow_cases(seed: int, names: list[str]) -> list[tuple[str, bool, dict]]:
    """Narrow searches (issue 26): perfect and near-perfect matches, off the box centre, within
    a 10° search and a 5 Å shift (sure: no concern but ambiguity may be raised), and true
    rotations far beyond a 30° search (must warn: chance or the limit). Appended with a
    generator of their own, so that the cases above keep their numbers."""
    rng = np.random.default_rng(seed + 100)
    narrow = AlignmentParams(max_shift_A=5, max_search_angle_deg=10)
    out = []
    for name in names:
        ref, p = load(name)
        extent = p * ref.shape[0]
        direction = rng.standard_normal(3)
        offset = RigidTransform(np.eye(3), 0.12 * extent * direction / np.linalg.norm(direction))
        off_centre = move_with_scipy(ref, p, offset, ref.shape, p)
        small = random_transform(rng, 1.0, max_angle_deg=3.0, flip=False)
        copy = move_with_scipy(off_centre, p, small.inverse(), ref.shape, p)
        common = dict(p=p, q=p, params=narrow, sure_codes=NOT_SURE)
        out.append(
            (f"{name} itself, 10° search, max_shift 5 Å", True, dict(ref=ref, mov=ref, **common))
        )
        out.append(
            (
                f"{name} off-centre, moved ≤3°, 1 Å, 10° search, max_shift 5 Å",
                True,
                dict(ref=off_centre, mov=copy, **common),
            )
        )
        axis = rng.standard_normal(3)
        turned = RigidTransform(
            Rotation.from_rotvec(np.radians(130.0) * axis / np.linalg.norm(axis)).as_matrix(),
            0.03 * extent * rng.standard_normal(3),
        )
        far = move_with_scipy(ref, p, turned.inverse(), ref.shape, p)
        wide = AlignmentParams(max_shift_A=0.2 * extent, max_search_angle_deg=30.0)
        out.append(
            (
                f"{name} turned 130°, 30° search",
                False,
                dict(ref=ref, p=p, mov=far, q=p, params=wide, warn_codes=NOT_SURE),
            )
        )
    out.append(workflow_check())
    return out


def workflow_check() -> tuple[str, bool, dict]:
    """fixtures/workflow.json's ``check`` job: small_moving.mrc aligned onto small_reference.mrc
    (max_shift_A 15), then the aligned map aligned again (max_shift_A 5, 10° search)."""
    ref_map = read_map(REPO / "fixtures" / "small_reference.mrc")
    mov_map = read_map(REPO / "fixtures" / "small_moving.mrc")
    p, q = float(ref_map.voxel_size_A[0]), float(mov_map.voxel_size_A[0])
    first = align_maps(
        ref_map.data,
        mov_map.data,
        reference_voxel_A=p,
        moving_voxel_A=q,
        params=AlignmentParams(max_shift_A=15),
    )
    aligned = move_with_scipy(mov_map.data, q, first.transform, ref_map.data.shape, p)
    params = AlignmentParams(max_shift_A=5, max_search_angle_deg=10)
    return (
        "fixtures/workflow.json's check (aligned map again, 10° search, max_shift 5 Å)",
        True,
        dict(ref=ref_map.data, p=p, mov=aligned, q=p, params=params, sure_codes=NOT_SURE),
    )


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
        counted = kw.get("sure_codes" if sure else "warn_codes", CHANCE)
        warned = any(c.code in counted for c in result.concerns())
        ok = warned != sure
        rows.append(
            f"| {name} | {'sure' if sure else 'must warn'} | {result.chance.z:.1f} | {result.chance.gain:.2f} | "
            f"{result.chance.required(MIN_Z):.3f} | "
            f"{result.chance.score:.3f} | {result.chance.decoy_median:.3f} | "
            f"{result.chance.decoy_spread:.3f} | {result.chance.decoy_max:.3f} | "
            f"{result.timings_s['confidence']:.2f} | "
            f"{result.score:.3f} | {codes} | {'ok' if ok else 'WRONG'} | {time.perf_counter() - start:.1f} |"
        )
        print(rows[-1], flush=True)
    header = [
        f"Chance-level calibration: {machine_line()} (benchmarks/confidence.py --seed "
        f"{args.seed}). z: robust deviations above the decoys' median; gain: share of the room "
        f"above it; needed: the score a sure answer needs ({MIN_Z:g} deviations above the "
        f"median, capped at 1 less 1/{MIN_Z:g} of a deviation); a case warns (not_above_chance) "
        f"when its search score is below that or its gain below {MIN_GAIN:g}, or its low-pass "
        "leaves too few resolution elements (lowpass_too_coarse). For the narrow-search cases "
        "(12° within a 30° search, and the last 19) a search-limit concern counts too: a sure one "
        "must raise none, a must-warn one may warn by the limit (engine/alignment/confidence.py).",
        "",
        "The cap below a perfect match (issue 26) decides two sure cases here: the synthetic hand "
        "itself and fixtures/workflow.json's check, perfect matches in a 10° search with a 5 Å "
        "shift limit, at z 2.7-2.8. It also passes the synthetic hand low-passed to 58 Å (its "
        "decoys scatter by 0.26), which warns by lowpass_too_coarse alone, as the F-actin "
        "blob does.",
        "",
        "| case | expected | z | gain | needed | search score | decoy median | decoy spread | decoy max | check (s) | final score | concerns | verdict | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + rows) + "\n")


if __name__ == "__main__":
    main()
