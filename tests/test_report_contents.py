"""What report.html names (issue 16): every input of each volume (map, sharpened map, half
maps, mask, particles) with the slot it came from and every output, paths normalised (a spec in
``specs/`` naming ``../case/...``), volumes in index order with the warnings and scores first,
group mode's inputs in full; checked in the DOM headless Chromium builds. And the particle files
written, with how many poses changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.exit_codes import Exit
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import read_map, write_map
from tests.browser import rendered_text
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _case(root: Path) -> Path:
    """Input files in ``root/case``: the reference, a volume with a sharpened map, noisy half
    maps and a mask, and another volume (the same map); RELION particles with classes 1, 2."""
    import starfile

    case = root / "case"
    case.mkdir()
    shutil.copy(FIXTURES / "small_reference.mrc", case / "ref.mrc")
    moving = read_map(FIXTURES / "small_moving.mrc")
    p = float(moving.voxel_size_A[0])
    rng = np.random.default_rng(4)
    write_map(case / "mov.mrc", moving.data, p)
    write_map(case / "mov_sharp.mrc", moving.data * 1.5, p)
    for half in ("A", "B"):
        noisy = moving.data + rng.normal(0, 0.2, moving.data.shape)
        write_map(case / f"mov_half_{half}.mrc", noisy, p)
    z, y, x = np.indices(moving.data.shape) - moving.data.shape[0] // 2
    write_map(case / "mov_mask.mrc", (np.sqrt(x * x + y * y + z * z) < 18).astype(np.float32), p)
    write_map(case / "other.mrc", moving.data, p)
    n = 6
    particles = {
        "rlnImageName": [f"{k + 1:06d}@stack.mrcs" for k in range(n)],
        "rlnAngleRot": rng.uniform(-180, 180, n),
        "rlnAngleTilt": rng.uniform(0, 180, n),
        "rlnAnglePsi": rng.uniform(-180, 180, n),
        "rlnOriginXAngst": rng.uniform(-3, 3, n),
        "rlnOriginYAngst": rng.uniform(-3, 3, n),
        "rlnOpticsGroup": [1] * n,
        "rlnClassNumber": [1, 2, 2, 1, 2, 2],
    }
    optics = {
        "rlnOpticsGroup": [1],
        "rlnOpticsGroupName": ["opticsGroup1"],
        "rlnImagePixelSize": [p],
        "rlnImageSize": [44],
        "rlnImageDimensionality": [2],
        "rlnVoltage": [300.0],
        "rlnSphericalAberration": [2.7],
        "rlnAmplitudeContrast": [0.1],
    }
    import pandas as pd

    starfile.write(
        {"optics": pd.DataFrame(optics), "particles": pd.DataFrame(particles)},
        case / "particles.star",
    )
    (root / "specs").mkdir()
    return case


VOLUME_FILES = {
    "map": "../case/mov.mrc",
    "map_sharp": "../case/mov_sharp.mrc",
    "map_half_A": "../case/mov_half_A.mrc",
    "map_half_B": "../case/mov_half_B.mrc",
}
INPUT_NAMES = ["ref.mrc", "mov.mrc", "mov_sharp.mrc", "mov_half_A.mrc", "mov_half_B.mrc"]


def _run_from_specs(root: Path, spec: dict, name: str) -> Path:
    """Run ``spec`` from ``root/specs`` (its paths read ``../case/...``)."""
    path = root / "specs" / f"{name}.json"
    path.write_text(json.dumps(spec))
    proc = cli("run", str(path), "--out", str(root / name), "--quiet")
    assert proc.returncode == Exit.OK, proc.stderr
    return root / name


@pytest.fixture(scope="module")
def case_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("named")
    _case(root)
    return root


@pytest.fixture(scope="module")
def individual(case_root: Path) -> Path:
    # volume 2 first in the list: the report still shows volume 1 first
    spec = {
        "job": "align_3d_maps",
        "params": {
            "max_shift_A": 15,
            "create_mask_inputs": True,
            "update_particle_alignments": True,
        },
        "inputs": {
            "reference_map": {"map": "../case/ref.mrc"},
            "maps_to_align": [
                {**VOLUME_FILES, "index": 2},
                {"map": "../case/other.mrc", "index": 1},
            ],
            "mask_2": {"path": "../case/mov_mask.mrc"},
            "particles_2": {"path": "../case/particles.star"},
        },
    }
    return _run_from_specs(case_root, spec, "individual")


@pytest.fixture(scope="module")
def group(case_root: Path) -> Path:
    spec = {
        "job": "align_3d_maps",
        "params": {
            "max_shift_A": 15,
            "update_particle_alignments": True,
            "create_mask_inputs": True,
            "log_diagnostics": False,
        },
        "inputs": {
            "reference_map": {"map": "../case/ref.mrc"},
            "maps_to_align_group": {"volumes": [VOLUME_FILES, {"map": "../case/other.mrc"}]},
            "masks_all_classes": [{"path": "../case/mov_mask.mrc"}],
            "particles_all": {"path": "../case/particles.star"},
        },
    }
    return _run_from_specs(case_root, spec, "group")


def _section(text: str, start: str, end: str | None = None) -> str:
    begin = text.index(start)
    return text[begin : text.index(end, begin) if end else None]


def test_report_names_every_input_and_output_of_each_volume(
    individual: Path, case_root: Path, tmp_path: Path
) -> None:
    text = rendered_text(individual / "report.html", tmp_path / "profile")
    volume_2 = _section(text, "Volume 2: mov.mrc", "Parameters")
    for name in [*INPUT_NAMES[1:], "mov_mask.mrc", "particles.star"]:
        assert name in volume_2, name
    # the particles written for volume 2, and how many poses changed (all: it moved)
    assert "particles_for_map_2.star" in volume_2 and "6 particles, 6 poses changed" in volume_2
    written = _section(text, "Particles written", "Volume 1:")
    assert "particles_for_map_2 particles_for_map_2.star" in written
    for output in ("map", "map_sharp", "map_half_A", "map_half_B", "mask", "difference_map"):
        assert f"volume_002/{output}.mrc" in volume_2, output  # relative to the job folder
    assert "moved mask" in volume_2 and "mask_2" in volume_2  # the slot the mask came from
    volume_1 = _section(text, "Volume 1: other.mrc", "Volume 2:")
    assert "other.mrc" in volume_1 and "volume_001/map.mrc" in volume_1
    assert "mov_half_A" not in volume_1  # each volume lists its own files
    # paths normalised: the spec's ../case/... reads as the folder itself
    assert "/../" not in text and "specs/.." not in text
    assert str((case_root / "case" / "mov_half_A.mrc").resolve()) in text


def test_report_puts_warnings_and_scores_first_and_volumes_in_index_order(
    individual: Path, tmp_path: Path
) -> None:
    text = rendered_text(individual / "report.html", tmp_path / "profile")
    first_volume = text.index("Volume 1: other.mrc")
    assert text.index("Alignments") < first_volume
    assert text.index("No warnings") < first_volume or text.index("Warnings") < first_volume
    assert first_volume < text.index("Volume 2: mov.mrc")
    table = _section(text, "Alignments", "Volume 1:")
    assert "time (s) 1 other.mrc" in table  # the first row is volume 1 and names its map
    manifest = ResultManifest.model_validate_json((individual / "result.json").read_text())
    for record in manifest.details_as(AlignmentDetails).alignments:
        assert f"{record.score:.4f}" in table


def test_group_report_lists_half_maps_sharpened_maps_masks_and_particles(
    group: Path, tmp_path: Path
) -> None:
    text = rendered_text(group / "report.html", tmp_path / "profile")
    inputs = text[text.rindex("Inputs") :]  # the job's Inputs table, at the end
    for name in [*INPUT_NAMES, "mov_mask.mrc", "particles.star", "other.mrc"]:
        assert name in inputs, name
    assert "masks_all_classes" in inputs and "particles_all" in inputs
    assert "the particles of class 2" in inputs
    assert "/../" not in text


def test_particles_written_count_the_poses_that_changed(case_root: Path, tmp_path: Path) -> None:
    from align3d.engine.alignment.poses import move_poses
    from align3d.jobs.align_3d_maps.particle_outputs import write_moved_particles
    from align3d.slots.particles import read_particles

    source = read_particles(case_root / "case" / "particles.star")
    turn = RigidTransform(np.diag([-1.0, -1.0, 1.0]), [1.0, 0.0, 0.0])

    def move(a: np.ndarray, o: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return move_poses(a, o, transform=turn)

    moved = write_moved_particles(
        source, move, tmp_path / "p.star", False, "particles_for_map_2", (2,)
    )
    assert (moved.count, moved.changed, moved.volumes) == (6, 6, (2,))
    assert moved.path == tmp_path / "p.star" and moved.path.is_file()
    same = write_moved_particles(
        source, move, tmp_path / "q.star", True, "particles_for_map_2", (2,)
    )
    assert same.changed == 0  # the identity writes the file untouched
    # a group: only class 2's volume moved
    classes = source.classes()
    assert classes is not None

    def class_2(a: np.ndarray, o: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        new_a, new_o = np.array(a), np.array(o)
        sel = classes[rows] == 2
        new_a[sel], new_o[sel] = move_poses(a[sel], o[sel], transform=turn)
        return new_a, new_o

    group = write_moved_particles(
        source, class_2, tmp_path / "all.star", False, "all_particles", (1, 2), classes
    )
    assert group.changed == 4
    assert [(v.index, v.count, v.changed) for v in group.by_volume] == [(1, 2, 0), (2, 4, 4)]


def test_individual_log_names_the_particle_files_written(individual: Path, case_root: Path) -> None:
    log = (individual / "job.log").read_text()
    source = (case_root / "case" / "particles.star").resolve()
    assert (
        f"particles_for_map_2: wrote particles_for_map_2.star, 6 particles from {source}; "
        "6 poses changed (following volume 2)"
    ) in log
    assert log.index("volume 1:\n") < log.index("volume 2:\n") < log.index("particles_for_map_2:")


def test_group_report_and_log_count_each_class_s_particles(group: Path, tmp_path: Path) -> None:
    text = rendered_text(group / "report.html", tmp_path / "profile")
    written = _section(text, "Particles written", "Volume 1:")
    assert "all_particles all_particles.star" in written and "1, 2" in written
    volume_1 = _section(text, "Volume 1: mov.mrc", "Volume 2:")
    assert "all_particles.star" in volume_1 and "2 particles (class 1 of 6 in the file)" in volume_1
    volume_2 = _section(text, "Volume 2: other.mrc", "Parameters")
    assert "4 particles (class 2 of 6 in the file)" in volume_2
    log = (group / "job.log").read_text()
    assert "all_particles: wrote all_particles.star, 6 particles from" in log
    assert "following the volumes of their classes (1, 2)" in log
    assert "  volume 1: 2 particles, 2 poses changed" in log
    assert "  volume 2: 4 particles, 4 poses changed" in log
