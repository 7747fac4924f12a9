"""``align3d apply``: one more map, mask, particle file or atomic model moved by a volume's
transform from a finished job, with the job's numbers.

The job (tests/apply_case.py) has maps at non-zero header origins on grids unlike the
reference's, one hand flipped. A model written with gemmi on bright voxels of a moving map
(atoms at header origin + index x voxel, as ChimeraX and the PDB read maps) must land on the
same values of the aligned map; a map, mask or particle file moved by ``apply`` must equal
what the job wrote for the volume.
"""

from __future__ import annotations

from pathlib import Path

import gemmi
import numpy as np
import pytest
import scipy.ndimage as ndi

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.chimerax import grid_record, placement, transform_of
from align3d.jobs.align_3d_maps.names import volume_folder
from align3d.slots.mrc import read_labels, read_map
from align3d.slots.particles import read_particles
from tests.apply_case import TRUTH, Case, case  # noqa: F401 - the session fixture
from tests.helpers import cli

MATCH = 0.05
"""Largest difference (fraction of the map's maximum) between the moving map at an atom and
the aligned map at the moved atom: interpolation (and the job's band limit) only."""


def _bright_voxels(path: Path, count: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Positions (Å, the map's own frame: origin + index x voxel) and values of the
    ``count`` brightest local maxima of a map."""
    data = read_map(path).data
    peaks = np.argwhere((data == ndi.maximum_filter(data, size=5)) & (data > 0.4 * data.max()))
    values = data[tuple(peaks.T)]
    top = np.argsort(values)[::-1][:count]
    grid = grid_record(path)
    positions = np.asarray(grid.origin_A) + peaks[top][:, ::-1] * np.asarray(grid.voxel_size_A)
    return positions, values[top]


def _write_model(path: Path, positions: np.ndarray) -> Path:
    structure = gemmi.Structure()
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    for k, xyz in enumerate(positions):
        residue = gemmi.Residue()
        residue.name = "ALA"
        residue.seqid = gemmi.SeqId(k + 1, " ")
        atom = gemmi.Atom()
        atom.name, atom.element = "CA", gemmi.Element("C")
        atom.pos = gemmi.Position(*xyz)
        atom.occ, atom.b_iso = 1.0, 30.0
        residue.add_atom(atom)
        chain.add_residue(residue)
    model.add_chain(chain)
    structure.add_model(model)
    structure.setup_entities()
    if path.suffix == ".cif":
        structure.make_mmcif_document().write_file(str(path))
    else:
        structure.write_pdb(str(path))
    return path


def _positions(path: Path) -> np.ndarray:
    structure = gemmi.read_structure(str(path))
    return np.array([[a.pos.x, a.pos.y, a.pos.z] for r in structure[0]["A"] for a in r])


def test_the_job_found_the_known_transforms(case: Case) -> None:  # noqa: F811
    for index, truth in TRUTH.items():
        found = transform_of(case.record(index))
        assert found.flip == truth.flip
        residual = RigidTransform.from_matrix(truth.inverse().matrix @ found.matrix)
        assert residual.angle_deg < 1.0 and np.linalg.norm(residual.shift_A) < 0.5


@pytest.mark.parametrize(("index", "suffix"), [(1, ".cif"), (2, ".pdb")])
def test_a_moved_model_sits_on_the_aligned_map(
    case: Case,  # noqa: F811
    tmp_path: Path,
    index: int,
    suffix: str,
) -> None:
    positions, values = _bright_voxels(case.moving(index))
    source = _write_model(tmp_path / f"model{suffix}", positions)
    out = tmp_path / f"moved{suffix}"
    proc = cli(
        "apply", str(case.folder / "result.json"), "--volume", str(index), "--model",
        str(source), "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == Exit.OK, proc.stderr
    assert ("mirrored" in proc.stderr) == TRUTH[index].flip  # a flipped hand says so
    moved = _positions(out)
    record = case.record(index)
    matrix = placement(transform_of(record), record.map_grid, record.reference_grid).model_matrix
    assert np.allclose(moved, positions @ matrix[:, :3].T + matrix[:, 3], atol=2e-3)
    aligned_path = case.folder / volume_folder(index) / "map.mrc"
    aligned = read_map(aligned_path).data
    grid = grid_record(aligned_path)  # the aligned map as ChimeraX reads it
    j = (moved - np.asarray(grid.origin_A)) / np.asarray(grid.voxel_size_A)
    got = ndi.map_coordinates(aligned.astype(np.float64), j[:, ::-1].T, order=3)
    assert np.abs(got - values).max() < MATCH * values.max()
    # the check can fail: the same atoms without the aligned map's origin miss the density
    off = ndi.map_coordinates(aligned, (moved / np.asarray(grid.voxel_size_A))[:, ::-1].T, order=1)
    assert np.abs(off - values).max() > 5 * MATCH * values.max()


@pytest.mark.parametrize("index", [1, 2])
def test_apply_map_reproduces_the_aligned_map(case: Case, tmp_path: Path, index: int) -> None:  # noqa: F811
    out = tmp_path / "moved.mrc"
    proc = cli(
        "apply", str(case.folder), "--volume", str(index), "--map", str(case.moving(index)),
        "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == Exit.OK, proc.stderr
    job = read_map(case.folder / volume_folder(index) / "map.mrc")
    mine = read_map(out)
    assert mine.shape == job.shape and mine.voxel_size_A == job.voxel_size_A
    assert mine.header == job.header  # the reference's origin, as the job's
    assert np.allclose(mine.data, job.data, rtol=0, atol=1e-6 * float(job.data.max()))
    assert (
        read_labels(out)[0].startswith("align3d ")
        and f"apply: volume {index}" in read_labels(out)[0]
    )


def test_apply_mask_reproduces_the_moved_mask(case: Case, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "mask.mrc"
    mask = case.inputs / "mask2.mrc"
    proc = cli("apply", str(case.folder), "--volume", "2", "--mask", str(mask), "--out", str(out))
    assert proc.returncode == Exit.OK, proc.stderr
    job = read_map(case.folder / "volume_002" / "mask.mrc", constant_ok=True).data
    mine = read_map(out, constant_ok=True).data
    assert np.allclose(mine, job, rtol=0, atol=1e-6) and 0.0 <= mine.min() and mine.max() <= 1.0


def test_apply_particles_reproduces_the_job_particles(case: Case, tmp_path: Path) -> None:  # noqa: F811
    star, cs = tmp_path / "p1.star", tmp_path / "p2.cs"
    for index, source, out in ((1, "particles1.star", star), (2, "particles2.cs", cs)):
        proc = cli(
            "apply", str(case.folder), "--volume", str(index), "--particles",
            str(case.inputs / source), "--out", str(out),
        )  # fmt: skip
        assert proc.returncode == Exit.OK, proc.stderr
    job_star = case.output("particles_for_map_1")
    # every line but starfile's "Created by ... at TIME" comment
    assert star.read_text().splitlines()[1:] == job_star.read_text().splitlines()[1:]
    source_star = (case.inputs / "particles1.star").read_text()
    assert star.read_text().splitlines()[1:] != source_star.splitlines()[1:]
    job_cs = read_particles(case.output("particles_for_map_2"))
    mine_cs = read_particles(cs)
    assert mine_cs.data.dtype == job_cs.data.dtype
    assert np.array_equal(mine_cs.data, job_cs.data)
    # and the poses did move (the comparison is not between two copies of the input)
    source_cs = read_particles(case.inputs / "particles2.cs")
    assert not np.allclose(source_cs.data["alignments3D/pose"], mine_cs.data["alignments3D/pose"])


def _bad(folder: Path, case: Case) -> dict[str, tuple[list[str], str]]:  # noqa: F811
    result = str(case.folder / "result.json")
    garbage_cif = folder / "garbage.cif"
    garbage_cif.write_text("data_x\n_this is not: mmcif ][\n")
    broken = folder / "broken.json"
    broken.write_text("{")
    (folder / "taken.mrc").write_text("an earlier output, kept")
    mov = str(case.moving(1))
    star = str(case.inputs / "particles1.star")
    return {
        "no-such-volume": (
            [result, "--volume", "7", "--map", mov, "--out", "o.mrc"],
            "--volume 7",
        ),
        "no-result": ([str(folder / "nope.json"), "--volume", "1", "--map", mov, "--out", "o.mrc"], "nope.json"),
        "broken-result": ([str(broken), "--volume", "1", "--map", mov, "--out", "o.mrc"], "broken.json"),
        "missing-map": ([result, "--volume", "1", "--map", "absent.mrc", "--out", "o.mrc"], "absent.mrc"),
        "map-out-suffix": ([result, "--volume", "1", "--map", mov, "--out", "o.txt"], "--out o.txt"),
        "particles-suffix": ([result, "--volume", "1", "--particles", mov, "--out", "o.star"], "--particles"),
        "particles-out-suffix": ([result, "--volume", "1", "--particles", star, "--out", "o.cs"], "--out o.cs"),
        "model-suffix": ([result, "--volume", "1", "--model", star, "--out", "o.cif"], "--model"),
        "unreadable-model": ([result, "--volume", "1", "--model", str(garbage_cif), "--out", "o.cif"], "garbage.cif"),
        "out-is-input": ([result, "--volume", "1", "--map", mov, "--out", mov, "--force"], "is also an input file"),
        "out-exists": ([result, "--volume", "1", "--map", mov, "--out", "taken.mrc"], "--out taken.mrc exists; use --force"),
        "voxel-for-particles": ([result, "--volume", "1", "--particles", star, "--out", "o.star", "--voxel", "2"], "--voxel"),
    }  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [
        "no-such-volume",
        "no-result",
        "broken-result",
        "missing-map",
        "map-out-suffix",
        "particles-suffix",
        "particles-out-suffix",
        "model-suffix",
        "unreadable-model",
        "out-is-input",
        "out-exists",
        "voxel-for-particles",
    ],
)
def test_bad_inputs_get_one_clear_line(case: Case, tmp_path: Path, name: str) -> None:  # noqa: F811
    args, expected = _bad(tmp_path, case)[name]
    proc = cli("apply", *args, cwd=tmp_path)
    assert proc.returncode == Exit.INVALID_INPUT, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.glob("o.*"))
    assert (tmp_path / "taken.mrc").read_text() == "an earlier output, kept"
