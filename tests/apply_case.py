"""A small Align 3D Maps job whose maps sit at non-zero header origins, on grids that differ
from the reference's (box, voxel size, even and odd z), one with the hand flipped; with
particles (RELION .star for volume 1, CryoSPARC .cs for volume 2) and a mask for volume 2.
Shared by the ChimeraX, apply and provenance tests (one run per test session)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.resample import GridMove, resample_map
from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.schemas.documents import AlignmentDetails, AlignmentRecord, ResultManifest
from align3d.slots.mrc import MapHeader, write_map
from tests.helpers import cli
from tests.relion_tools import stack_names, write_pose_star

REFERENCE_VOXEL_A = 3.0
REFERENCE_ORIGIN_A = (12.5, -30.0, 7.25)
TRUTH = {
    1: RigidTransform(
        Rotation.from_euler("ZYZ", [30.0, 50.0, -20.0], degrees=True).as_matrix(),
        [2.0, -1.5, 3.0],
        flip=True,
    ),
    2: RigidTransform(
        Rotation.from_euler("ZYZ", [-40.0, 25.0, 70.0], degrees=True).as_matrix(),
        [-3.0, 2.5, 1.0],
    ),
}
"""What puts each moving map onto the reference (docs/conventions.md#the-transform)."""
SHAPES = {1: (44, 46, 42), 2: (45, 43, 44)}  # [z, y, x]: even z for 1, odd z for 2
VOXELS_A = {1: 2.8, 2: 3.2}
HEADERS = {
    1: MapHeader((-20.0, 5.5, 33.0), (0, 0, 0)),  # voxel 0 at the header origin
    2: MapHeader((0.0, 0.0, 0.0), (-22, -21, -20)),  # no origin: voxel 0 at nstart x voxel
}


@dataclass(frozen=True)
class Case:
    inputs: Path
    folder: Path
    manifest: ResultManifest

    def moving(self, index: int) -> Path:
        return self.inputs / f"mov{index}.mrc"

    @property
    def reference(self) -> Path:
        return self.inputs / "ref.mrc"

    def record(self, index: int) -> AlignmentRecord:
        return next(
            r for r in self.manifest.details_as(AlignmentDetails).alignments if r.index == index
        )

    def output(self, slot: str, key: str = "path") -> Path:
        return self.folder / self.manifest.outputs[slot][key]


def _cs(path: Path, count: int, rng: np.random.Generator) -> Path:
    dtype = [
        ("uid", "<u8"),
        ("alignments3D/pose", "<f4", (3,)),
        ("alignments3D/shift", "<f4", (2,)),
        ("alignments3D/psize_A", "<f4"),
        ("alignments3D/class", "<u4"),
    ]
    data = np.zeros(count, dtype=dtype)
    data["uid"] = np.arange(count) + 1000
    data["alignments3D/pose"] = Rotation.random(count, random_state=rng).as_rotvec()
    data["alignments3D/shift"] = rng.normal(size=(count, 2)) * 3
    data["alignments3D/psize_A"] = VOXELS_A[2]
    with path.open("wb") as fh:
        np.save(fh, data, allow_pickle=False)
    return path


def write_inputs(folder: Path) -> Path:
    """Write the maps, the particles, the mask and the job spec into ``folder``; the spec."""
    folder.mkdir(parents=True, exist_ok=True)
    reference = protein_like_map((40, 40, 40), REFERENCE_VOXEL_A, seed=7)
    write_map(
        folder / "ref.mrc",
        reference,
        REFERENCE_VOXEL_A,
        MapHeader(REFERENCE_ORIGIN_A, (0, 0, 0)),
    )
    for index, truth in TRUTH.items():
        moving = resample_map(
            reference,
            GridMove(
                transform=truth.inverse(),
                in_voxel_A=REFERENCE_VOXEL_A,
                out_shape=SHAPES[index],
                out_voxel_A=VOXELS_A[index],
            ),
        )
        write_map(folder / f"mov{index}.mrc", moving, VOXELS_A[index], HEADERS[index])
    z, y, x = np.indices(SHAPES[2])
    centre = np.array(SHAPES[2]) // 2
    r = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
    mask = np.clip((19.0 - r) / 4.0, 0.0, 1.0)
    write_map(folder / "mask2.mrc", mask, VOXELS_A[2], HEADERS[2])
    rng = np.random.default_rng(3)
    angles = np.column_stack(
        [rng.uniform(-180, 180, 12), rng.uniform(0, 180, 12), rng.uniform(-180, 180, 12)]
    )
    write_pose_star(
        folder / "particles1.star",
        stack_names("stack.mrcs", 12),
        angles,
        rng.normal(size=(12, 2)) * 2,
        VOXELS_A[1],
        SHAPES[1][0],
    )
    _cs(folder / "particles2.cs", 9, rng)
    spec = {
        "job": "align_3d_maps",
        "params": {
            "max_shift_A": 15,
            "lowpass_resolution_A": 10,
            "update_particle_alignments": True,
            "create_mask_inputs": True,
        },
        "inputs": {
            "reference_map": {"map": "ref.mrc"},
            "maps_to_align": [{"map": "mov1.mrc"}, {"map": "mov2.mrc"}],
            "particles_1": {"path": "particles1.star"},
            "particles_2": {"path": "particles2.cs"},
            "mask_2": {"path": "mask2.mrc"},
        },
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


@functools.cache
def _run(root: Path) -> Case:
    spec = write_inputs(root / "inputs")
    proc = cli("run", str(spec), "--out", str(root / "job"), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    manifest = ResultManifest.model_validate_json((root / "job" / "result.json").read_text())
    return Case(root / "inputs", root / "job", manifest)


@pytest.fixture(scope="session")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """The job, run once per test session through the command line (each test module that
    imports this fixture gets its own copy of it; the run behind them is shared)."""
    return _run(tmp_path_factory.getbasetemp() / "apply_case")
