"""Run align3d's numerical core on one pair of maps, timed; write the aligned map and a JSON report.

Run with the project venv::

    .venv/bin/python benchmarks/align3d_runner.py REF.mrc MOV.mrc OUT.json \
        [--aligned OUT.mrc] [--lowpass 10] [--max-shift 40] [--ref-voxel A] [--mov-voxel A]

Steps: read both maps (mrcfile), ``align3d.engine.alignment.align_maps`` (full search: every rotation,
both hands, shifts up to ``--max-shift`` Å, at ``--lowpass`` Å), then
``align3d.engine.alignment.resample.resample_map`` to move MOV onto REF's grid, and write it as float32
MRC with REF's voxel size (default OUT.json's folder / ``align3d_aligned.mrc``).

OUT.json: ``wall_s`` (reading both maps to writing the aligned map, all inclusive; interpreter
start-up excluded), ``read_s``, ``search_s`` (align_maps), ``resample_s``, ``write_s``,
``import_s`` (importing the engine, numba included; not in ``wall_s``), ``peak_rss_MB``
(getrusage of this process), the engine's own ``timings`` (``result.timings_s``), ``score``,
``alternative_score`` and the transform (``rotation``, ``shift_A``, ``flip``, 4x4 ``matrix``) in
align3d's convention ``y = R F^flip x + t`` (MOV -> REF).

Exit status 3 (with a message) when the engine functions are not there yet.
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

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Time align3d on one pair of maps.")
    ap.add_argument("ref", type=Path)
    ap.add_argument("mov", type=Path)
    ap.add_argument("out_json", type=Path)
    ap.add_argument("--aligned", type=Path, default=None, help="aligned map path")
    ap.add_argument("--lowpass", type=float, default=10.0, help="working resolution, Å")
    ap.add_argument("--max-shift", type=float, default=40.0, help="maximum shift, Å")
    ap.add_argument("--ref-voxel", type=float, default=None, help="override REF's voxel size, Å")
    ap.add_argument("--mov-voxel", type=float, default=None, help="override MOV's voxel size, Å")
    args = ap.parse_args(argv)
    aligned_path = args.aligned or args.out_json.parent / "align3d_aligned.mrc"

    try:
        from align3d.engine.alignment.params import AlignmentParams
        from align3d.jobs.align_3d_maps.align_pair import align_files
    except ImportError as exc:
        print(f"align3d engine not available yet: {exc}", file=sys.stderr)
        return 3
    t_imported = time.perf_counter()

    params = AlignmentParams(
        max_shift_A=args.max_shift,
        max_search_angle_deg=180.0,
        lowpass_resolution_A=args.lowpass,
        check_both_chiralities=True,
    )
    # the product's own per-volume path (what `align3d align` runs): read both maps, align,
    # move the map onto the reference grid, write it; its FSC afterwards is not timed here
    outcome = align_files(args.ref, args.mov, aligned_path, params, args.ref_voxel, args.mov_voxel)
    peak = peak_rss_mb()
    result = outcome.alignment
    stages = outcome.timings_s
    import mrcfile

    with mrcfile.open(args.ref, permissive=True, header_only=True) as mrc:
        ref_shape = [int(mrc.header.nz), int(mrc.header.ny), int(mrc.header.nx)]
        ref_voxel = args.ref_voxel or float(mrc.voxel_size.x)
    t0 = 0.0
    t_read = stages["read"]
    t_search = t_read + stages["align"]
    t_resample = t_end = t_search + stages["resample_write"]

    tr = result.transform
    doc = {
        "tool": "align3d",
        "ref": str(args.ref),
        "mov": str(args.mov),
        "box": ref_shape,
        "voxel_A": ref_voxel,
        "wall_s": t_end - t0,
        "read_s": t_read - t0,
        "search_s": t_search - t_read,
        "resample_s": t_resample - t_search,
        "write_s": t_end - t_resample,
        "import_s": t_imported - T_START,
        "peak_rss_MB": peak,
        "rotation": np.asarray(tr.rotation).tolist(),
        "shift_A": np.asarray(tr.shift_A).tolist(),
        "flip": bool(tr.flip),
        "matrix": np.asarray(tr.matrix).tolist(),
        "score": _jsonable(getattr(result, "score", None)),
        "alternative_score": _jsonable(getattr(result, "alternative_score", None)),
        "timings": _jsonable(
            getattr(result, "timings_s", None) or getattr(result, "timings", None)
        ),
        "options": {
            "max_shift_A": args.max_shift,
            "max_search_angle_deg": 180.0,
            "lowpass_resolution_A": args.lowpass,
            "check_both_chiralities": True,
        },
        "cpu_count": os.cpu_count(),
        "aligned_map": str(aligned_path),
        "convention": "y = R F^flip x + t maps MOV points x (Å, xyz about N//2) into REF",
    }
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(doc, indent=2) + "\n")
    print(
        f"align3d: wall {doc['wall_s']:.2f} s (search {doc['search_s']:.2f} s, resample "
        f"{doc['resample_s']:.2f} s), peak {peak:.0f} MB, flip {tr.flip}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
