"""Classes of a symmetric complex end up on one symmetry mate (issue 14).

Each class is the symmetric consensus plus an asymmetric feature (a ligand) on one subunit,
turned far from the reference and a few degrees from the other classes. Aligned modulo the
reference's group, every feature must land on the same subunit, and every rotation must be the
mate closest to the identity. RELION then reconstructs the combined particles of two classes
(C1) with the feature whole, which it loses when the mates disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.poses import move_poses
from align3d.engine.alignment.symmetry import closest_mate, point_group
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.names import volume_folder
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import read_map, write_map
from align3d.slots.particles import read_particles
from tests.helpers import cli, move_with_scipy
from tests.relion_tools import (
    relion_project,
    relion_reconstruct,
    require_relion,
    stack_names,
    write_pose_star,
)

CASES = {  # map, group, ligand site as a fraction of the half box (x, y, z)
    "trpml3": ("emd6824_trpml3_C4_70px.mrc", "C4", (0.45, 0.12, 0.2)),
    "betagal": ("betagal_D2_100px.mrc", "D2", (0.35, 0.2, 0.25)),
    "groel": ("groel_D7_100px.mrc", "D7", (0.55, 0.1, 0.35)),
}
FAR = Rotation.from_rotvec([0.7, -1.1, 1.3]).as_matrix()  # about 105° from the reference
NUDGES = [(0.0, 0.0, 0.0), (0.02, -0.03, 0.01), (-0.03, 0.01, 0.03)]  # 2-4° between classes


def _blob(shape: tuple[int, ...], voxel: float, centre_A: np.ndarray, sigma_A: float) -> np.ndarray:
    z, y, x = np.indices(shape, dtype=np.float64)
    c = np.array([n // 2 for n in shape], dtype=float)
    r2 = ((x - c[2]) * voxel - centre_A[0]) ** 2 + ((y - c[1]) * voxel - centre_A[1]) ** 2
    r2 += ((z - c[0]) * voxel - centre_A[2]) ** 2
    return np.exp(-r2 / (2 * sigma_A**2))


@dataclass(frozen=True)
class Classes:
    reference: np.ndarray
    voxel: float
    site_A: np.ndarray
    truths: list[RigidTransform]  # transform that puts each class back onto the reference frame


def _classes(folder: Path, shared_data: Path, case: str) -> Classes:
    name, _, site = CASES[case]
    m = read_map(shared_data / "maps" / name)
    ref, p = m.data, float(m.voxel_size_A[0])
    half = 0.5 * ref.shape[0] * p
    site_A = np.array(site) * half
    ligand = ref + 1.5 * float(ref.max()) * _blob(ref.shape, p, site_A, 2.0 * p)
    write_map(folder / "reference.mrc", ref, p)
    truths = []
    for k, nudge in enumerate(NUDGES, start=1):
        turn = RigidTransform(Rotation.from_rotvec(nudge).as_matrix() @ FAR, [1.5 * k, -1.0, 0.5])
        truths.append(turn.inverse())
        write_map(folder / f"class{k}.mrc", move_with_scipy(ligand, p, turn, ref.shape, p), p)
    return Classes(ref, p, site_A, truths)


def _site_strengths(volume: np.ndarray, c: Classes, group: str) -> np.ndarray:
    """The extra density at each symmetric copy of the ligand site, over their median (the
    symmetric bulk is the same at every copy)."""
    values = []
    for s in point_group(group).operators:
        weight = _blob(volume.shape, c.voxel, s @ c.site_A, 2.0 * c.voxel)
        values.append(float((volume * weight).sum() / weight.sum()))
    return np.array(values) - np.median(values)


def _run(folder: Path, symmetry: str, count: int) -> ResultManifest:
    spec = {
        "job": "align_3d_maps",
        "params": {"symmetry": symmetry, "max_shift_A": 10, "log_diagnostics": False},
        "inputs": {
            "reference_map": {"map": "reference.mrc"},
            "maps_to_align": [{"map": f"class{k}.mrc"} for k in range(1, count + 1)],
        },
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    out = folder / f"out_{symmetry}"
    proc = cli("run", str(folder / "spec.json"), "--out", str(out), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    return ResultManifest.model_validate_json((out / "result.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_class_lands_on_one_subunit_with_the_smallest_rotation(
    tmp_path: Path, shared_data: Path, case: str
) -> None:
    c = _classes(tmp_path, shared_data, case)
    group = CASES[case][1]
    manifest = _run(tmp_path, group, len(NUDGES))
    details = manifest.details_as(AlignmentDetails)
    sites = []
    for record, truth in zip(details.alignments, c.truths, strict=True):
        found = RigidTransform.from_matrix(record.matrix)
        smallest = closest_mate(truth, point_group(group))
        assert found.rotation_error_deg(smallest.transform) < 1.0, record.index
        assert record.rotation_angle_deg == pytest.approx(smallest.angle_deg, abs=1.0)
        assert not any("ambiguous" in w or "symmetric" in w for w in record.warnings)
        aligned = read_map(tmp_path / f"out_{group}" / volume_folder(record.index) / "map.mrc")
        sites.append(int(np.argmax(_site_strengths(aligned.data, c, group))))
    assert len(set(sites)) == 1, sites  # every ligand on the same subunit
    assert details.symmetry == group
    assert details.largest_rotation_between_volumes_deg is not None
    assert details.largest_rotation_between_volumes_deg < 6.0
    assert manifest.warnings == []


def test_a_symmetry_the_map_lacks_is_refused_by_its_mates(
    tmp_path: Path, shared_data: Path
) -> None:
    ribosome = shared_data / "maps" / "ribosome70S_65px.mrc"
    m = read_map(ribosome, 5.0)
    write_map(tmp_path / "reference.mrc", m.data, 5.0)
    turned = RigidTransform(Rotation.from_rotvec([0.2, 0.3, -0.4]).as_matrix(), [3.0, 0.0, 0.0])
    write_map(tmp_path / "class1.mrc", move_with_scipy(m.data, 5.0, turned, m.data.shape, 5.0), 5.0)
    manifest = _run(tmp_path, "C4", 1)
    (record,) = manifest.details_as(AlignmentDetails).alignments
    assert any("does not look C4-symmetric" in w for w in record.warnings), record.warnings
    assert record.symmetry_lowest_mate_score is not None
    assert record.symmetry_lowest_mate_score < 0.7 * record.score


def test_wrong_symmetry_names_are_refused_before_any_work(tmp_path: Path) -> None:
    spec = {"job": "align_3d_maps", "params": {"symmetry": "C4v"}, "inputs": {}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    proc = cli("validate", str(tmp_path / "s.json"), "--no-files")
    assert proc.returncode == Exit.INVALID_INPUT and "change the hand" in proc.stderr


@pytest.mark.slow
def test_relion_keeps_the_ligand_of_combined_classes(tmp_path: Path, shared_data: Path) -> None:
    require_relion("relion_project", "relion_reconstruct")
    c = _classes(tmp_path, shared_data, "trpml3")
    rng = np.random.default_rng(14)
    n = 500
    stars = []
    for k in (1, 2):
        angles = Rotation.random(n, random_state=rng).as_euler("ZYZ", degrees=True)
        poses = write_pose_star(
            tmp_path / f"poses{k}.star",
            stack_names("none.mrcs", n),
            angles,
            np.zeros((n, 2)),
            c.voxel,
            c.reference.shape[0],
        )
        stars.append(relion_project(tmp_path / f"class{k}.mrc", poses, tmp_path / f"p{k}", c.voxel))
    spec = {
        "job": "align_3d_maps",
        "params": {"symmetry": "C4", "max_shift_A": 10, "update_particle_alignments": True},
        "inputs": {
            "reference_map": {"map": "reference.mrc"},
            "maps_to_align": [{"map": "class1.mrc"}, {"map": "class2.mrc"}],
            "particles_1": {"path": str(stars[0])},
            "particles_2": {"path": str(stars[1])},
        },
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "job"
    proc = cli("run", str(tmp_path / "spec.json"), "--out", str(out), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    manifest = ResultManifest.model_validate_json((out / "result.json").read_text())
    updated = [out / manifest.outputs[f"particles_for_map_{k}"]["path"] for k in (1, 2)]

    def combined(first: Path, second: Path, name: str) -> Path:
        a = starfile.read(first, always_dict=True)
        b = starfile.read(second, always_dict=True)
        a["particles"] = pd.concat([a["particles"], b["particles"]], ignore_index=True)
        starfile.write(a, tmp_path / name)
        return tmp_path / name

    together = relion_reconstruct(
        combined(updated[0], updated[1], "together.star"), tmp_path / "together.mrc", c.voxel
    )
    # control: class 2's particles on another mate (a 90° turn about the C4 axis)
    other = RigidTransform(point_group("C4").operators[1])
    disagree = read_particles(updated[1]).updated(
        lambda a, o, rows: move_poses(a, o, transform=other)
    )
    disagree.write(tmp_path / "class2_other_mate.star")
    apart = relion_reconstruct(
        combined(updated[0], tmp_path / "class2_other_mate.star", "apart.star"),
        tmp_path / "apart.mrc",
        c.voxel,
    )
    kept = _site_strengths(together, c, "C4")
    split = _site_strengths(apart, c, "C4")
    assert kept.max() > 1.6 * split.max(), (kept, split)  # whole on one subunit, not halved
    assert np.sort(kept)[-2] < 0.3 * kept.max()  # and on one subunit only
