"""Build the benchmark cases: a reference map and a moved copy of it, with the true transform.

Run with the project venv (from the repository root)::

    .venv/bin/python benchmarks/make_cases.py [--sizes 128 256] [--cases 3] [--seed 0] [--force]

For case ``i`` and box size ``N`` it writes ``benchmarks/results/cases/<map>_<N>_<i>/`` with

* ``ref.mrc``   the reference: a real map from ``../shared/data/maps`` (background removed, soft
  spherical mask at its own box edge so that nothing is clipped by rotation), zero-padded in real
  space (room for the shift) and Fourier-resampled to ``N^3`` (zero-padding the centred FFT). The
  map centre stays at index ``N // 2``; the voxel size becomes ``p_src * n_pad / N``.
* ``mov.mrc``   the moving map ``M(x) = V_ref(R F^flip x + t)``, sampled on the source's own
  (coarse) grid with ``scipy.ndimage.map_coordinates`` (quintic spline), then Fourier-upsampled
  like the reference, so it is not made with align3d's own interpolator; the reference equals
  ``M`` moved by the true transform ``T = (R, t, flip)`` (align3d's convention:
  docs/conventions.md#the-transform).
* ``truth.json`` ``rotation``, ``shift_A``, ``flip``, the 4x4 ``matrix``, the map's point group
  (the symmetry operators, checked numerically on the reference, so that errors can be taken
  modulo symmetry), ``max_shift_A`` (the bound to pass to the aligners) and how the case was made.

The case ``i`` uses map ``MAPS[i % len(MAPS)]`` and the random generator seeded with
``(seed, i)``: the same case index has the same map and the same transform at every box size, so
that the sizes differ only in sampling. Transforms come from
``tests.oracles.transforms.random_transform`` (rotation uniform on SO(3), shift uniform in the
ball of radius ``max_shift_A``, random hand).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from align3d.engine.alignment.geometry import RigidTransform  # noqa: E402
from tests.oracles.transforms import random_transform  # noqa: E402

GENERATOR_VERSION = 2
"""Bump when the way cases are made changes (run.py then remakes existing cases)."""


def default_data_dir() -> Path:
    import os

    env = os.environ.get("ALIGN3D_DATA")
    return Path(env) / "maps" if env else REPO_ROOT.parent / "shared" / "data" / "maps"


@dataclass(frozen=True)
class SourceMap:
    label: str
    file: str
    voxel_A: float | None  # None: trust the header
    symmetry: (
        str  # "C1", "Cn" (n-fold about z), "D2" (two-folds on x, y, z), "Dn" (n-fold z, 2-fold x)
    )


MAPS: tuple[SourceMap, ...] = (
    # header voxel size is 0; ASPIRE used 5 Å/px
    SourceMap("ribosome", "ribosome70S_65px.mrc", 5.0, "C1"),
    SourceMap("betagal", "betagal_D2_100px.mrc", None, "D2"),
    SourceMap("trpml3", "emd6824_trpml3_C4_70px.mrc", None, "C4"),
    SourceMap("hand", "synthetic_hand_64px.mrc", None, "C1"),
    SourceMap("groel", "groel_D7_100px.mrc", None, "D7"),
)
"""Filament maps (emd5168, emd5170) are left out: their helical ambiguity has no single truth."""


# ----------------------------------------------------------------------------------------------
# Map operations (arrays [z, y, x]; centre at index N // 2 on every axis)


def read_map(path: Path, voxel_A: float | None = None) -> tuple[np.ndarray, float]:
    with mrcfile.open(path, permissive=True) as mrc:
        data = np.asarray(mrc.data, dtype=np.float64).copy()
        header_voxel = float(mrc.voxel_size.x)
    voxel = voxel_A if voxel_A is not None else header_voxel
    if not voxel > 0:
        raise ValueError(f"{path}: no voxel size in the header; give one")
    return data, voxel


def write_map(path: Path, data: np.ndarray, voxel_A: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        mrc.voxel_size = voxel_A
        mrc.update_header_stats()


def radius_grid(n: int) -> np.ndarray:
    g = np.arange(n) - n // 2
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    return np.sqrt(x * x + y * y + z * z)


def soft_sphere_mask(n: int, radius: float, edge: float) -> np.ndarray:
    """1 inside ``radius - edge``, a raised-cosine fall to 0 at ``radius`` (voxels, about N//2)."""
    r = radius_grid(n)
    t = np.clip((r - (radius - edge)) / edge, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def pad_centred(vol: np.ndarray, n_out: int) -> np.ndarray:
    """Zero-pad a cube to ``n_out^3`` keeping index ``n // 2`` at ``n_out // 2``."""
    n = vol.shape[0]
    if n_out < n:
        raise ValueError("pad_centred only pads")
    out = np.zeros((n_out,) * 3, dtype=vol.dtype)
    o = n_out // 2 - n // 2
    out[o : o + n, o : o + n, o : o + n] = vol
    return out


def fourier_resample(vol: np.ndarray, n_out: int) -> np.ndarray:
    """Resample a cube to ``n_out^3`` by zero-padding (or cropping) its centred FFT.

    The same function, sampled ``n_out / n`` times finer: the voxel size becomes
    ``p * n / n_out`` and index ``n // 2`` stays at ``n_out // 2`` (the physical origin).
    """
    n = vol.shape[0]
    if n_out == n:
        return vol.copy()
    spec = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(vol)))
    kmin = max(-(n // 2), -(n_out // 2))
    kmax = min(n - n // 2 - 1, n_out - n_out // 2 - 1)
    src = slice(n // 2 + kmin, n // 2 + kmax + 1)
    dst = slice(n_out // 2 + kmin, n_out // 2 + kmax + 1)
    out = np.zeros((n_out,) * 3, dtype=np.complex128)
    out[dst, dst, dst] = spec[src, src, src]
    del spec
    res = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(out))).real
    return res * (n_out / n) ** 3


def move_map(
    vol: np.ndarray, voxel_A: float, transform: RigidTransform, order: int = 3, chunk: int = 16
) -> np.ndarray:
    """``M(x) = V(R F^flip x + t)`` on the same grid (so ``V`` is ``M`` moved by ``transform``).

    ``x`` is the physical position (Å, xyz about N//2) of each output voxel; ``V`` is sampled
    with a cubic B-spline (``map_coordinates``, prefiltered once) in index space, 0 outside.
    """
    n = vol.shape
    coeffs = ndimage.spline_filter(vol, order=order, mode="constant") if order > 1 else vol
    linear = transform.linear
    shift = np.asarray(transform.shift_A)
    centre = np.array([n[2] // 2, n[1] // 2, n[0] // 2], dtype=np.float64)  # (x, y, z)
    gx = (np.arange(n[2]) - centre[0]) * voxel_A
    gy = (np.arange(n[1]) - centre[1]) * voxel_A
    out = np.empty(n, dtype=np.float64)
    for z0 in range(0, n[0], chunk):
        gz = (np.arange(z0, min(z0 + chunk, n[0])) - centre[2]) * voxel_A
        zz, yy, xx = np.meshgrid(gz, gy, gx, indexing="ij")
        pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel()])  # (3, K) physical xyz
        y = linear @ pts + shift[:, None]
        idx = y / voxel_A + centre[:, None]
        vals = ndimage.map_coordinates(
            coeffs,
            [idx[2], idx[1], idx[0]],
            order=order,
            mode="constant",
            cval=0.0,
            prefilter=False,
        )
        out[z0 : z0 + len(gz)] = vals.reshape(len(gz), n[1], n[2])
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


# ----------------------------------------------------------------------------------------------
# Symmetry (about the box centre; axes as the data README states, checked numerically)


def point_group(symmetry: str) -> list[np.ndarray]:
    """Rotation matrices of ``C1``, ``Cn`` (about z), ``D2`` (two-folds x, y, z), ``Dn``
    (n-fold about z, two-fold about x)."""
    kind, order = symmetry[0].upper(), int(symmetry[1:])
    cyclic = [Rotation.from_rotvec([0, 0, 2 * np.pi * k / order]).as_matrix() for k in range(order)]
    if kind == "C":
        return cyclic
    if kind == "D":
        two_x = Rotation.from_rotvec([np.pi, 0, 0]).as_matrix()
        return cyclic + [c @ two_x for c in cyclic]
    raise ValueError(f"unsupported symmetry {symmetry!r}")


def symmetry_check(vol: np.ndarray, voxel_A: float, group: list[np.ndarray]) -> float:
    """Smallest correlation between the map and the map moved by a group element (1 = exact)."""
    if len(group) == 1:
        return 1.0
    small = vol[::2, ::2, ::2] if vol.shape[0] > 128 else vol
    step = vol.shape[0] / small.shape[0]
    worst = 1.0
    for g in group[1:]:
        moved = move_map(small, voxel_A * step, RigidTransform(g), order=1)
        worst = min(worst, correlation(small, moved))
    return worst


# ----------------------------------------------------------------------------------------------
# Cases


def case_geometry(n_src: int, voxel_src: float, max_shift_cap_A: float = 40.0) -> tuple[int, float]:
    """Padded source box and the shift bound: the shift is at most 40 Å and at most 15 % of the
    source box (about 10 % of the padded box); the padding holds the masked map at any rotation
    plus that shift plus 2 voxels."""
    max_shift_A = min(max_shift_cap_A, 0.15 * n_src * voxel_src)
    n_pad = math.ceil(n_src + 2.0 * max_shift_A / voxel_src + 4.0)
    n_pad += n_pad % 2
    return n_pad, max_shift_A


def prepare_source(src: SourceMap, data_dir: Path) -> tuple[np.ndarray, float]:
    """Real map, background level (median of the corners) removed, soft-masked to the
    inscribed sphere of its own box (so no density is lost at any rotation)."""
    vol, voxel = read_map(data_dir / src.file, src.voxel_A)
    n = vol.shape[0]
    if not (vol.shape[0] == vol.shape[1] == vol.shape[2]):
        raise ValueError(f"{src.file}: not a cube")
    r = radius_grid(n)
    vol = vol - float(np.median(vol[r > n / 2]))
    vol *= soft_sphere_mask(n, radius=n / 2 - 1.0, edge=4.0)
    return vol, voxel


def case_name(src: SourceMap, size: int, index: int) -> str:
    return f"{src.label}_{size}_{index:02d}"


def make_case(
    index: int, size: int, seed: int, out_root: Path, data_dir: Path, force: bool = False
) -> Path:
    src = MAPS[index % len(MAPS)]
    case_dir = out_root / case_name(src, size, index)
    truth_path = case_dir / "truth.json"
    if not force and truth_path.exists():
        old = json.loads(truth_path.read_text())
        if old.get("generator_version") == GENERATOR_VERSION and old.get("seed") == seed:
            return case_dir

    vol, voxel_src = prepare_source(src, data_dir)
    n_src = vol.shape[0]
    n_pad, max_shift_A = case_geometry(n_src, voxel_src)
    padded = pad_centred(vol, n_pad)
    ref = fourier_resample(padded, size)
    voxel = voxel_src * n_pad / size

    rng = np.random.default_rng([seed, index])
    truth = random_transform(rng, max_shift_A=max_shift_A, max_angle_deg=180.0, flip=None)
    # move the map on its original, coarse grid with a quintic spline, then Fourier-upsample:
    # the moving map is not made by the cubic B-spline that align3d itself uses, which would
    # flatter its accuracy
    mov = fourier_resample(move_map(padded, voxel_src, truth, order=5), size)

    group = point_group(src.symmetry)
    sym_cc = symmetry_check(ref, voxel, group)

    write_map(case_dir / "ref.mrc", ref, voxel)
    write_map(case_dir / "mov.mrc", mov, voxel)
    doc = {
        "case": case_dir.name,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "index": index,
        "source": {"file": src.file, "box": n_src, "voxel_A": voxel_src},
        "padded_source_box": n_pad,
        "box": size,
        "voxel_A": voxel,
        "max_shift_A": max_shift_A,
        "rotation": truth.rotation.tolist(),
        "shift_A": truth.shift_A.tolist(),
        "flip": truth.flip,
        "matrix": truth.matrix.tolist(),
        "angle_deg": truth.angle_deg,
        "symmetry": src.symmetry,
        "symmetry_ops": [g.tolist() for g in group],
        "symmetry_min_cc": sym_cc,
        "convention": "y = R F^flip x + t maps mov.mrc points x (Å, xyz about N//2) to ref.mrc; "
        "mov(x) = ref(R F^flip x + t), quintic spline on the source grid, then Fourier-upsampled",
    }
    truth_path.write_text(json.dumps(doc, indent=2) + "\n")
    return case_dir


def make_cases(
    sizes: list[int], n_cases: int, seed: int, out_root: Path, data_dir: Path, force: bool = False
) -> list[Path]:
    dirs = []
    for size in sizes:
        for i in range(n_cases):
            dirs.append(make_case(i, size, seed, out_root, data_dir, force))
    return dirs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--cases", type=int, default=3, help="cases per size (maps cycle)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "cases")
    ap.add_argument(
        "--data", type=Path, default=None, help="maps folder (default ../shared/data/maps)"
    )
    ap.add_argument("--force", action="store_true", help="remake existing cases")
    args = ap.parse_args(argv)
    data_dir = args.data or default_data_dir()
    if not data_dir.is_dir():
        print(f"no maps at {data_dir} (set ALIGN3D_DATA); nothing made", file=sys.stderr)
        return 2
    for d in make_cases(args.sizes, args.cases, args.seed, args.out, data_dir, args.force):
        t = json.loads((d / "truth.json").read_text())
        print(
            f"{d.name}: box {t['box']}, {t['voxel_A']:.3f} Å, angle {t['angle_deg']:.1f}°, "
            f"|t| {np.linalg.norm(t['shift_A']):.1f} Å (max {t['max_shift_A']:.1f}), "
            f"flip {t['flip']}, {t['symmetry']} (min sym cc {t['symmetry_min_cc']:.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
