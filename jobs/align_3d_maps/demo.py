"""Deterministic synthetic test data: protein-like maps and noise of known SNR.

A protein-like map is six compact domains of different sizes, made of pseudo-atoms (random chains with a 3.8 Å step,
one residue per 110 Å³ of domain), rendered as Gaussians of width ``blur_A``. Domains
of different sizes at random positions make the map asymmetric (no symmetry, a definite hand).
Everything is seeded: the same arguments give the same array on every machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage as ndi
from numpy.typing import NDArray

from align3d.engine.alignment.fourier import lowpass
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.params import AlignmentParams
from align3d.engine.alignment.resample import GridMove, resample_map
from align3d.engine.parallel.backend import Backend
from align3d.schemas.documents import AlignmentDetails
from align3d.slots.rotations import euler_zyz


def _chain(rng: np.random.Generator, centre: NDArray, radius: float, count: int) -> NDArray:
    """A random chain of ``count`` points 3.8 Å apart, kept inside a sphere (Å, xyz)."""
    points = np.empty((count, 3))
    pos = centre + rng.normal(size=3) * radius * 0.3
    for i in range(count):
        for _ in range(20):
            step = rng.normal(size=3)
            candidate = pos + 3.8 * step / np.linalg.norm(step)
            if np.linalg.norm(candidate - centre) <= radius:
                break
        else:
            candidate = pos + 0.5 * (centre - pos)
        pos = candidate
        points[i] = pos
    return points


def protein_like_map(
    shape: tuple[int, int, int] = (64, 64, 64),
    voxel_size_A: float = 2.0,
    radius_fraction: float = 0.38,
    blur_A: float = 2.5,
    seed: int = 0,
) -> NDArray[np.float32]:
    """A synthetic asymmetric protein-like map.

    Parameters
    ----------
    shape : box ``[z, y, x]`` in voxels
    voxel_size_A : voxel size in Å
    radius_fraction : radius of the molecule as a fraction of the smallest box extent
    blur_A : Gaussian width (sigma) of each pseudo-atom in Å
    seed : seed of the random generator
    """
    rng = np.random.default_rng(seed)
    atoms = _pseudo_atoms(rng, shape, voxel_size_A, radius_fraction)
    weights = rng.uniform(0.6, 1.4, size=len(atoms))  # residues of different mass
    idx = atoms / voxel_size_A + np.array([n // 2 for n in shape[::-1]])
    edges = [np.arange(n + 1) - 0.5 for n in shape]
    grid, _ = np.histogramdd(idx[:, ::-1], bins=edges, weights=weights)
    vol = ndi.gaussian_filter(grid, blur_A / voxel_size_A, mode="constant")
    return (vol / vol.max()).astype(np.float32)


def _pseudo_atoms(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    voxel_size_A: float,
    radius_fraction: float,
) -> NDArray[np.float64]:
    """The pseudo-atoms of :func:`protein_like_map` (Å, ``x, y, z``, about the box-centre voxel
    ``N // 2``: align3d's origin), drawn from ``rng``."""
    extent = np.array(shape[::-1], dtype=float) * voxel_size_A  # xyz extent in Å
    radius = radius_fraction * extent.min()
    domains = []
    for fraction in (0.3, 0.22, 0.18, 0.12, 0.1, 0.08):
        r_dom = radius * fraction ** (1 / 3) * 0.9
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        centre = direction * (radius - r_dom) * rng.uniform(0.3, 1.0)
        count = max(8, int((4 / 3) * np.pi * r_dom**3 / 110.0))
        domains.append(_chain(rng, centre, r_dom, count))
    return np.concatenate(domains)


def add_noise(
    volume: NDArray[np.floating],
    voxel_size_A: float,
    snr: float,
    resolution_A: float,
    seed: int = 0,
) -> NDArray[np.float32]:
    """Add white Gaussian noise so that, after a low-pass at ``resolution_A``, the ratio of the
    signal's variance to the noise's variance over the whole box is ``snr``."""
    rng = np.random.default_rng(seed)
    vol = np.asarray(volume, dtype=np.float32)
    noise = rng.normal(size=vol.shape).astype(np.float32)
    signal_var = float(np.var(lowpass(vol, voxel_A=voxel_size_A, resolution_A=resolution_A)))
    noise_var = float(np.var(lowpass(noise, voxel_A=voxel_size_A, resolution_A=resolution_A)))
    return (vol + noise * np.sqrt(signal_var / (snr * noise_var))).astype(np.float32)


DEMO_TRUTH = RigidTransform(
    euler_zyz(*np.radians([37.0, 71.0, -122.0])),
    np.array([6.5, -4.0, 3.2]),
    flip=True,
)
"""The transform that puts the demo's moving map onto its reference
(docs/conventions.md#the-transform)."""


def demo_maps() -> tuple[tuple[NDArray[np.float32], float], tuple[NDArray[np.float32], float]]:
    """The built-in example: ``((reference, voxel_A), (moving, voxel_A))``.

    The reference is a 64^3 protein-like map at 2.0 Å. The moving map is the same molecule,
    mirrored, rotated and shifted (the inverse of :data:`DEMO_TRUTH`), on a different grid
    (72 x 70 x 68 voxels of 1.9 Å), so the demo exercises hand, box and voxel-size handling.
    """
    reference = protein_like_map((64, 64, 64), 2.0, seed=2026)
    moving = _misaligned(
        reference, DEMO_TRUTH, voxel_A=2.0, out_shape=(68, 70, 72), out_voxel_A=1.9
    )
    return (reference, 2.0), (moving, 1.9)


def _misaligned(
    reference: NDArray[np.float32],
    truth: RigidTransform,
    *,
    voxel_A: float,
    out_shape: tuple[int, int, int],
    out_voxel_A: float,
) -> NDArray[np.float32]:
    """``reference`` (of ``voxel_A`` Å) moved by the inverse of ``truth`` onto a grid of
    ``out_shape`` and ``out_voxel_A`` Å: a map that ``truth`` aligns back onto it."""
    return resample_map(
        reference,
        GridMove(
            transform=truth.inverse(),
            in_voxel_A=voxel_A,
            out_shape=out_shape,
            out_voxel_A=out_voxel_A,
        ),
    )


FIXTURE_TRUTH = RigidTransform(
    euler_zyz(*np.radians([-64.0, 118.0, 23.0])),
    np.array([-3.5, 2.0, 4.25]),
    flip=True,
)
"""The transform that puts ``fixtures/small_moving.mrc`` onto ``fixtures/small_reference.mrc``."""


CLASS2_TRUTH = RigidTransform(
    euler_zyz(*np.radians([40.0, 75.0, -110.0])),
    np.array([2.5, -3.0, 1.5]),
    flip=False,
)
"""The transform that puts ``fixtures/small_class2.mrc`` onto ``fixtures/small_reference.mrc``."""

FIXTURE_PARTICLES = 8


def _particles_star(classes: list[int]) -> str:
    """A small RELION 3.1 particle file (text written here, so the bytes reproduce)."""
    rng = np.random.default_rng(11)
    lines = [
        "",
        "# version 30001",
        "",
        "data_optics",
        "",
        "loop_",
        "_rlnOpticsGroupName #1",
        "_rlnOpticsGroup #2",
        "_rlnImagePixelSize #3",
        "_rlnImageSize #4",
        "_rlnImageDimensionality #5",
        "opticsGroup1 1 2.800000 44 2",
        "",
        "",
        "# version 30001",
        "",
        "data_particles",
        "",
        "loop_",
        "_rlnImageName #1",
        "_rlnAngleRot #2",
        "_rlnAngleTilt #3",
        "_rlnAnglePsi #4",
        "_rlnOriginXAngst #5",
        "_rlnOriginYAngst #6",
        "_rlnOpticsGroup #7",
        "_rlnClassNumber #8",
    ]
    for i, k in enumerate(classes, start=1):
        rot, tilt, psi = rng.uniform(-180, 180), rng.uniform(0, 180), rng.uniform(-180, 180)
        x, y = rng.uniform(-3, 3, 2)
        lines.append(f"{i:06d}@particles.mrcs {rot:.6f} {tilt:.6f} {psi:.6f} {x:.6f} {y:.6f} 1 {k}")
    return "\n".join([*lines, "", ""])


FIXTURE_REFERENCE = ((40, 40, 40), 3.0, 7)
"""Box (voxels), voxel size (Å) and seed of ``fixtures/small_reference.mrc``."""
MODEL_STRIDE = 8
"""The fixture model keeps every 8th pseudo-atom of the reference (a few hundred atoms)."""


def fixture_model_atoms() -> NDArray[np.float64]:
    """Atoms on the density of ``fixtures/small_reference.mrc``: every :data:`MODEL_STRIDE`-th of
    the pseudo-atoms it was drawn from (Å, ``x, y, z``, in align3d's reference frame, about
    the box-centre voxel)."""
    shape, voxel_A, seed = FIXTURE_REFERENCE
    return _pseudo_atoms(np.random.default_rng(seed), shape, voxel_A, 0.38)[::MODEL_STRIDE]


def _model_cif(name: str, positions: NDArray[np.float64]) -> str:
    """A one-chain C-alpha model as mmCIF text (written here, so the bytes reproduce; gemmi
    and ChimeraX read it): one alanine per position (Å, model coordinates)."""
    columns = (
        "group_PDB id type_symbol label_atom_id label_alt_id label_comp_id label_asym_id "
        "label_entity_id label_seq_id pdbx_PDB_ins_code Cartn_x Cartn_y Cartn_z occupancy "
        "B_iso_or_equiv auth_seq_id auth_asym_id pdbx_PDB_model_num"
    ).split()
    lines = [f"data_{name}", "#", "loop_", *(f"_atom_site.{c}" for c in columns)]
    for i, (x, y, z) in enumerate(positions, start=1):
        lines.append(f"ATOM {i} C CA . ALA A 1 {i} ? {x:.3f} {y:.3f} {z:.3f} 1.00 30.00 {i} A 1")
    return "\n".join([*lines, "#", ""])


def write_fixtures(folder: str | Path) -> list[Path]:
    """Write the small deterministic fixtures into ``folder``: a 40^3 protein-like reference at
    3.0 Å; a mirrored, rotated, shifted copy on a 44^3 grid of 2.8 Å (with two noisy half maps
    and a soft mask); a second class, moved otherwise (:data:`CLASS2_TRUTH`); a particle file
    of both classes; and the true transforms. Byte-for-byte reproducible (tests check the
    committed files against this)."""
    from align3d.slots.mrc import write_map

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    shape, voxel_A, seed = FIXTURE_REFERENCE
    reference = protein_like_map(shape, voxel_A, seed=seed)
    moving, class2 = (
        _misaligned(reference, truth, voxel_A=voxel_A, out_shape=(44, 44, 44), out_voxel_A=2.8)
        for truth in (FIXTURE_TRUTH, CLASS2_TRUTH)
    )
    rng = np.random.default_rng(12)
    noise = 0.006  # a tenth of the map's standard deviation, fixed: float32 reductions differ
    # between numpy versions in their last bits, and the fixtures must reproduce byte for byte
    z, y, x = np.indices(moving.shape) - 22
    radius = np.sqrt(x * x + y * y + z * z)
    mask = np.clip((20.0 - radius) / 3.0, 0.0, 1.0).astype(np.float32)
    paths = [
        write_map(out / "small_reference.mrc", reference, 3.0),
        write_map(out / "small_moving.mrc", moving, 2.8),
        write_map(out / "small_moving_half1.mrc", moving + rng.normal(0, noise, moving.shape), 2.8),
        write_map(out / "small_moving_half2.mrc", moving + rng.normal(0, noise, moving.shape), 2.8),
        write_map(out / "small_mask.mrc", mask, 2.8),
        write_map(out / "small_class2.mrc", class2, 2.8),
    ]
    # a model fitted into small_moving.mrc: the reference's atoms where the truth's inverse
    # puts them, in the model coordinates in which ChimeraX shows the map
    from align3d.jobs.align_3d_maps.chimerax import centre_A, grid_record

    atoms = FIXTURE_TRUTH.inverse().apply(fixture_model_atoms())
    model = out / "small_moving_model.cif"
    model.write_text(_model_cif("small_moving_model", atoms + centre_A(grid_record(paths[1]))))
    paths.append(model)
    particles = out / "small_particles.star"
    particles.write_text(_particles_star([1, 2] * (FIXTURE_PARTICLES // 2)))
    paths.append(particles)
    truth = {
        "convention": "y = R F^flip x + t maps small_moving.mrc points to small_reference.mrc",
        "rotation": FIXTURE_TRUTH.rotation.round(12).tolist(),
        "shift_A": FIXTURE_TRUTH.shift_A.tolist(),
        "hand_flipped": FIXTURE_TRUTH.flip,
        "small_class2.mrc": {
            "rotation": CLASS2_TRUTH.rotation.round(12).tolist(),
            "shift_A": CLASS2_TRUTH.shift_A.tolist(),
            "hand_flipped": CLASS2_TRUTH.flip,
        },
    }
    paths.append(out / "small_truth.json")
    paths[-1].write_text(json.dumps(truth, indent=2) + "\n")
    return paths


def run_demo(
    out: Path, params: AlignmentParams, force: bool, quiet: bool, backend: Backend
) -> dict[str, Any]:
    """The built-in example as a workflow (import two maps, align one onto the other) in
    ``out``; returns the summary written to ``out/demo_summary.json``: the transform found, the
    true one and their difference."""
    from align3d.engine.executor import run_document
    from align3d.engine.jobdef import discover_jobs
    from align3d.slots.mrc import write_map

    (reference, p_ref), (moving, p_mov) = demo_maps()
    write_map(out / "inputs" / "reference.mrc", reference, p_ref)
    write_map(out / "inputs" / "moving.mrc", moving, p_mov)
    workflow = {
        "jobs": {
            "reference": {"job": "import_volume", "params": {"map": "inputs/reference.mrc"}},
            "moving": {"job": "import_volume", "params": {"map": "inputs/moving.mrc"}},
            "align": {
                "job": "align_3d_maps",
                "params": params.model_dump(mode="json"),
                "inputs": {
                    "reference_map": {"from": "reference.volume"},
                    "maps_to_align": [{"from": "moving.volume"}],
                },
            },
        }
    }
    spec = out / "workflow.json"
    spec.write_text(json.dumps(workflow, indent=2) + "\n")
    manifests = run_document(
        workflow, out, out / "run", discover_jobs(), force, quiet, backend, ["align3d", "demo"]
    )
    record = manifests["align"].details_as(AlignmentDetails).alignments[0]
    found = RigidTransform.from_matrix(record.matrix)
    summary = {
        "workflow": str(spec),
        "result": str(out / "run" / "align" / "result.json"),
        "aligned_map": str(
            out / "run" / "align" / manifests["align"].outputs["aligned_volume_1"]["map"]
        ),
        "alignment": record.model_dump(),
        "truth": {
            "matrix": DEMO_TRUTH.matrix.round(8).tolist(),
            "rotation_error_deg": round(found.rotation_error_deg(DEMO_TRUTH), 4),
            "shift_error_A": round(found.shift_error_A(DEMO_TRUTH), 4),
            "hand_right": found.flip == DEMO_TRUTH.flip,
        },
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    import sys

    for written in write_fixtures(sys.argv[1] if len(sys.argv) > 1 else "fixtures"):
        print(written)
