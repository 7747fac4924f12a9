"""Run EMalign 1.0.5 on one pair of maps and report its result in align3d's convention.

Runs INSIDE benchmarks/.emalign-venv (made by setup_emalign.sh; EMalign needs numpy < 2)::

    benchmarks/.emalign-venv/bin/python benchmarks/emalign_runner.py REF.mrc MOV.mrc OUT.json \
        [--aligned OUT.mrc] [--downsample 64] [--n-projs 30] [--seed 0] [--voxel A]

It calls EMalign's Python API the way its command line (``src.main.main``) does: ``read_mrc`` for
both maps, then ``src.align_volumes_3d.align_volumes(vol1=ref, vol2=mov, opt)`` with EMalign's
defaults (``--downsample 64``, ``--n-projs 30``, no pre-filtering, BFGS refinement on). That is
its full global search: projections of the moving map matched against the reference over all of
SO(3), both hands tried (reflection check is always on), translation by phase correlation over
the whole (circular) box; there is no maximum-shift or maximum-angle option.

OUT.json holds ``wall_s`` (reading both maps + alignment + writing the aligned map, which EMalign
computes anyway; interpreter start-up and imports excluded, reported as ``import_s``),
``align_s``, ``peak_rss_MB`` (getrusage of this process), EMalign's raw output, and the transform
converted to align3d's convention: ``rotation`` (3x3), ``shift_A`` (3), ``flip`` such that
``y = R F^flip x + t`` maps points ``x`` of MOV (Å, xyz about the box centre N//2) into REF.

Convention mapping (derived from EMalign's source, measured with probes, verified end to end by
check_emalign_convention.py; all vectors in voxels, xyz, about N//2):

* ``read_mrc`` returns ``mrcfile_data.T``, so EMalign's arrays are indexed ``[x, y, z]``.
* EMalign's aligned map is ``vol2aligned = reshift(fastrotate3d(flip?(vol2), bestR), bestdx)``:
  - ``np.flip(vol2, axis=2)`` (only when ``reflect``) mirrors z about (N-1)/2, not N/2:
    ``W1(r) = M(F r - e_z)``.
  - ``fastrotate3d(W1, Q)(r) = W1(A^-1 (r - b))`` with ``A = P Q P``, ``P`` the x<->y swap (its
    Euler decomposition and shears act on the transposed array), and ``b = b(Q)`` a sub-voxel to
    ~1 voxel offset (its 90-degree steps rotate about (N-1)/2, its shears about N/2). ``b`` does
    not depend on N (even N) and is measured here by rotating a centred Gaussian blob.
  - ``reshift_vol(W2, s)(r) = W2(r + s)`` (``s = bestdx``; integer ``np.roll(-s)`` alike).
  So ``vol2aligned(y) = M(F^f A^-1 (y + s - b) - f e_z)``. Matching
  ``V_out(y) = M(F^f R^T (y - t))`` gives

      R = P bestR P,        t = p * (b(bestR) - bestdx - f * R e_z),     flip = reflect

  with ``p`` the voxel size in Å.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

T_START = time.perf_counter()

import numpy as np  # noqa: E402

P_SWAP = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
F_FLIP = np.diag([1.0, 1.0, -1.0])
E_Z = np.array([0.0, 0.0, 1.0])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _grid(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.arange(n, dtype=np.float64) - n // 2
    return np.meshgrid(g, g, g, indexing="ij")  # EMalign's [x, y, z] arrays


def _blob(grid, centre, sigma=2.0) -> np.ndarray:
    x, y, z = grid
    return np.exp(
        -((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) / (2 * sigma**2)
    )


def _centroid(grid, vol) -> np.ndarray:
    w = np.clip(vol, 0.0, None)
    s = w.sum()
    return np.array([(g * w).sum() / s for g in grid])


def fastrotate_affine(rot: np.ndarray, n: int = 64, probe_matrix: bool = False):
    """Measure EMalign's ``fastrotate3d(·, rot)`` as an affine map ``r -> A r + b`` (voxels, xyz
    about N//2, on EMalign's [x, y, z] arrays): ``b`` from a centred Gaussian (rotation
    invariant, so its centroid moves by ``b`` only); ``A`` (optional) from three off-centre ones."""
    from src.fastrotate3d import fastrotate3d

    grid = _grid(n)
    b = _centroid(grid, fastrotate3d(_blob(grid, (0, 0, 0)), rot))
    if not probe_matrix:
        return None, b
    a = np.zeros((3, 3))
    d = n / 6.0
    for i in range(3):
        c = np.zeros(3)
        c[i] = d
        a[:, i] = (_centroid(grid, fastrotate3d(_blob(grid, c), rot)) - b) / d
    return a, b


def emalign_to_align3d(best_r, best_dx, reflect, voxel_A, b_vox):
    """EMalign's (bestR, bestdx, reflect) -> align3d's (R, t [Å], flip). See the module docstring."""
    rot = P_SWAP @ np.asarray(best_r, dtype=np.float64) @ P_SWAP
    f = 1.0 if reflect else 0.0
    t_vox = np.asarray(b_vox, dtype=np.float64) - np.asarray(best_dx, dtype=np.float64).real
    t_vox = t_vox - f * (rot @ E_Z)
    return rot, t_vox * voxel_A, bool(reflect)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Time EMalign and convert its result.")
    ap.add_argument("ref", type=Path)
    ap.add_argument("mov", type=Path)
    ap.add_argument("out_json", type=Path)
    ap.add_argument("--aligned", type=Path, default=None, help="write EMalign's aligned map here")
    ap.add_argument("--downsample", type=int, default=None, help="EMalign default: 64")
    ap.add_argument("--n-projs", type=int, default=None, help="EMalign default: 30")
    ap.add_argument("--apply-filtering", action="store_true", help="EMalign's Gaussian pre-filter")
    ap.add_argument("--no-refine", action="store_true")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="np.random seed (EMalign picks random projection directions with np.random.randint)",
    )
    ap.add_argument("--voxel", type=float, default=None, help="voxel size (Å) if not in header")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument(
        "--probe-matrix",
        action="store_true",
        help="also measure fastrotate3d's linear part and compare with P bestR P",
    )
    args = ap.parse_args(argv)

    import logging
    import warnings
    from importlib.metadata import version

    import mrcfile
    import scipy.ndimage
    from src.align_volumes_3d import align_volumes
    from src.emalign_input import DEFAULT_DOWNSAMPLE, DEFAULT_N_PROJS
    from src.read_write import read_mrc

    warnings.filterwarnings("ignore")  # as EMalign's main() does
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    t_imported = time.perf_counter()

    class Opt:  # EMalign's options are attributes of a plain object
        pass

    opt = Opt()
    opt.Nprojs = args.n_projs or DEFAULT_N_PROJS
    opt.downsample = args.downsample or DEFAULT_DOWNSAMPLE
    opt.no_refine = bool(args.no_refine)
    np.random.seed(args.seed)  # noqa: NPY002 (EMalign draws from the legacy global state)

    # ---- timed: read, align, write (what `emalign -v1 -v2 -o` does, minus its version check) ----
    t0 = time.perf_counter()
    vol1 = read_mrc(str(args.ref))
    vol2 = read_mrc(str(args.mov))
    if vol1.ndim == 4 and vol1.shape[-1] == 1:
        vol1 = np.squeeze(vol1)
    if vol2.ndim == 4 and vol2.shape[-1] == 1:
        vol2 = np.squeeze(vol2)
    if args.apply_filtering:
        vol1 = scipy.ndimage.gaussian_filter(vol1, 1.5)
        vol2 = scipy.ndimage.gaussian_filter(vol2, 1.5)
    t_read = time.perf_counter()
    best_r, best_dx, reflect, vol2aligned, bestcorr = align_volumes(vol1, vol2, args.verbose, opt)
    t_aligned = time.perf_counter()
    if args.aligned is not None:
        with mrcfile.open(args.ref, permissive=True, header_only=True) as mrc:
            ref_voxel = float(mrc.voxel_size.x)
        args.aligned.parent.mkdir(parents=True, exist_ok=True)
        with mrcfile.new(args.aligned, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(vol2aligned.T, dtype=np.float32))
            mrc.voxel_size = args.voxel or ref_voxel
            mrc.update_header_stats()
    t_end = time.perf_counter()
    peak = peak_rss_mb()
    # ---- end of timed part ----

    with mrcfile.open(args.ref, permissive=True, header_only=True) as mrc:
        ref_voxel = float(mrc.voxel_size.x)
    with mrcfile.open(args.mov, permissive=True, header_only=True) as mrc:
        mov_voxel = float(mrc.voxel_size.x)
    voxel = args.voxel or ref_voxel
    if not voxel > 0:
        print("no voxel size in REF header; pass --voxel", file=sys.stderr)
        return 2
    notes = []
    if args.voxel is None and abs(ref_voxel - mov_voxel) > 1e-4 * ref_voxel:
        notes.append(
            f"voxel sizes differ (ref {ref_voxel}, mov {mov_voxel}); EMalign ignores "
            "voxel sizes, the shift is converted with the reference's"
        )
    if vol1.shape[0] % 2:
        notes.append("odd box: EMalign's centre conventions were only verified for even boxes")

    best_r = np.asarray(best_r, dtype=np.float64)
    a_meas, b_vox = fastrotate_affine(best_r, probe_matrix=args.probe_matrix)
    rot, shift_A, flip = emalign_to_align3d(best_r, best_dx, reflect, voxel, b_vox)
    linear = rot @ F_FLIP if flip else rot
    matrix = np.eye(4)
    matrix[:3, :3] = linear
    matrix[:3, 3] = shift_A

    doc = {
        "tool": "EMalign",
        "version": version("EMalign"),
        "numpy": np.__version__,
        "ref": str(args.ref),
        "mov": str(args.mov),
        "box": int(vol1.shape[0]),
        "voxel_A": voxel,
        "wall_s": t_end - t0,
        "read_s": t_read - t0,
        "align_s": t_aligned - t_read,
        "write_s": t_end - t_aligned,
        "import_s": t_imported - T_START,
        "peak_rss_MB": peak,
        "rotation": rot.tolist(),
        "shift_A": shift_A.tolist(),
        "flip": flip,
        "matrix": matrix.tolist(),
        "score": float(bestcorr),
        "emalign_raw": {
            "bestR": best_r.tolist(),
            "bestdx_vox": np.asarray(best_dx, dtype=np.float64).real.tolist(),
            "reflect": int(reflect),
            "bestcorr": float(bestcorr),
            "fastrotate_offset_vox": b_vox.tolist(),
        },
        "options": {
            "downsample": opt.downsample,
            "n_projs": opt.Nprojs,
            "apply_filtering": bool(args.apply_filtering),
            "no_refine": opt.no_refine,
            "reflection_check": True,
            "max_shift": "none (circular phase correlation over the whole box)",
            "np_random_seed": args.seed,
        },
        "cpu_count": os.cpu_count(),
        "aligned_map": str(args.aligned) if args.aligned else None,
        "convention": "y = R F^flip x + t maps MOV points x (Å, xyz about N//2) into REF",
        "notes": notes,
    }
    if a_meas is not None:
        doc["conversion_check"] = {
            "fastrotate_linear_measured": a_meas.tolist(),
            "max_abs_diff_vs_P_bestR_P": float(np.abs(a_meas - rot).max()),
        }
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(doc, indent=2) + "\n")
    print(
        f"EMalign: wall {doc['wall_s']:.1f} s (align {doc['align_s']:.1f} s), peak "
        f"{peak:.0f} MB, corr {bestcorr:.4f}, reflect {int(reflect)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
