"""Align 3D Maps as a CryoSPARC External job (``align3d-cryosparc``), driven through the real
cryosparc-tools client (its ``CryoSPARC``, ``ExternalJobController`` and ``Dataset``) with the
instance's HTTP API replaced by an in-memory fake (``cryosparc.tools.APIClient`` patched with
``unittest.mock``). Known-answer volumes and particles come from
:mod:`tests.host_cases`; what the job saved is read back with ``cryosparc.dataset.Dataset``.
Not covered here (needs a live instance): the instance's own checks of slots and
passthrough, its job folder permissions, downloads of files the driver cannot see."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
import pytest

pytest.importorskip("cryosparc")

from cryosparc.dataset import Dataset

from align3d.jobs.align_3d_maps.hosts.cryosparc_job import main
from align3d.slots.mrc import read_grid
from align3d.slots.pose_formats import cryosparc_matrices
from tests.host_cases import (
    PARTICLES,
    PLAIN_NAMES,
    TRUTHS,
    VOXEL_A,
    check_aligned,
    reference_map,
    write_mrc,
    write_volume,
)

COMMAND = Path(sys.executable).with_name("align3d-cryosparc")
SETTINGS = {
    "CRYOSPARC_HOST": "cryosparc.test",
    "CRYOSPARC_BASE_PORT": "39000",
    "CRYOSPARC_EMAIL": "ali@example.com",
    "CRYOSPARC_PASSWORD": "not-to-be-shown",
}


@dataclass
class FakeJobs:
    """The ``jobs`` part of CryoSPARC's API, in memory: source jobs' outputs as datasets, and
    what the External job was told (inputs, outputs, saved datasets, status)."""

    project_dir: Path
    sources: dict[tuple[str, str], tuple[str, Dataset]]
    parents: dict[str, list[str]] = field(default_factory=dict)
    remote: Path | None = None
    downloaded: list[str] = field(default_factory=list)
    shown_dir: Path | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    connected: dict[str, tuple[str, str]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    saved: dict[str, Dataset] = field(default_factory=dict)
    status: list[str] = field(default_factory=list)
    error: str = ""
    events: list[str] = field(default_factory=list)

    def _model(
        self, uid: str = "J42", kind: str = "snowflake", outputs: Any = None, parents: Any = ()
    ) -> Any:
        spec = SimpleNamespace(
            type=kind,
            inputs=SimpleNamespace(root=dict(self.inputs)),
            outputs=SimpleNamespace(root=outputs if outputs is not None else dict(self.outputs)),
        )
        return SimpleNamespace(uid=uid, project_uid="P3", spec=spec, parents=list(parents))

    def create(self, project_uid: str, workspace_uid: str, **kwargs: Any) -> Any:
        assert (project_uid, workspace_uid, kwargs["type"]) == ("P3", "W2", "snowflake")
        return self._model()

    def add_external_input(self, project: str, job: str, name: str, spec: Any) -> Any:
        self.inputs[name] = spec
        return self._model()

    def add_external_output(self, project: str, job: str, name: str, spec: Any) -> Any:
        self.outputs[name] = spec
        return self._model()

    def find_one(self, project: str, uid: str) -> Any:
        found = {o: SimpleNamespace(type=t) for (j, o), (t, _) in self.sources.items() if j == uid}
        return self._model(uid, "homo_refine_new", found, self.parents.get(uid, []))

    def connect(self, project: str, job: str, target: str, **source: str) -> Any:
        self.connected[target] = (source["source_job_uid"], source["source_output_name"])
        return self._model()

    def load_input(self, project: str, job: str, name: str, slots: Any) -> Dataset:
        return self.sources[self.connected[name]][1]

    def get_directory(self, project: str, job: str) -> str:
        return str(self.project_dir / job)

    def mark_running(self, project: str, job: str, status: str) -> Any:
        self.status.append(status)
        return self._model()

    def mark_completed(self, project: str, job: str) -> Any:
        self.status.append("completed")
        return self._model()

    def mark_failed(self, project: str, job: str, error: str) -> Any:
        self.status.append("failed")
        self.error = error
        return self._model()

    def save_output(self, project: str, job: str, name: str, dataset: Dataset, **kw: Any) -> Any:
        assert name in self.outputs, f"{name} saved before it was declared"
        self.saved[name] = Dataset.load(_roundtrip(dataset))
        return self._model()

    def add_event_log(self, project: str, job: str, text: str, **kw: Any) -> Any:
        self.events.append(text)
        return SimpleNamespace(id="event")


def _roundtrip(dataset: Dataset) -> Any:
    """The dataset as CryoSPARC stores it (.cs bytes), to be loaded back."""
    import io

    buffer = io.BytesIO()
    dataset.save(buffer)
    buffer.seek(0)
    return buffer


def download(jobs: FakeJobs, path: str) -> Any:
    """The instance's file download: a stream of the file as the instance sees it."""
    assert jobs.remote is not None
    jobs.downloaded.append(path)
    return SimpleNamespace(save=lambda target: shutil.copyfile(jobs.remote / path, target))


def fake_api(jobs: FakeJobs) -> Any:
    """The API object the client talks to (only what the driver's calls reach)."""
    projects = SimpleNamespace(
        find_one=lambda uid: SimpleNamespace(uid=uid),
        get_directory=lambda uid: str(jobs.shown_dir or jobs.project_dir),
        download_file=lambda uid, path: download(jobs, path),
    )
    return SimpleNamespace(
        users=SimpleNamespace(me=lambda: SimpleNamespace(email=SETTINGS["CRYOSPARC_EMAIL"])),
        config=SimpleNamespace(get_version=lambda: "v5.0.0"),
        jobs=jobs,
        projects=projects,
    )


def volume_dataset(project: Path, files: dict[str, Path]) -> Dataset:
    """One row of a CryoSPARC volume output: each slot's path relative to the project."""
    names = list(files)
    dataset = Dataset.allocate(1, [(f"{n}/path", "O") for n in names])
    for name in names:
        dataset[f"{name}/path"] = [str(files[name].relative_to(project))]
    return dataset


def particle_dataset(seed: int) -> Dataset:
    """Particles with 3D alignments (psize 2 Å) and a field the job must pass through."""
    rng = np.random.default_rng(seed)
    dataset = Dataset.allocate(
        PARTICLES,
        [
            ("alignments3D/pose", "<f4", (3,)),
            ("alignments3D/shift", "<f4", (2,)),
            ("alignments3D/psize_A", "<f4"),
            ("blob/path", "O"),
        ],
    )
    dataset["alignments3D/pose"] = rng.uniform(-1.5, 1.5, (PARTICLES, 3))
    dataset["alignments3D/shift"] = rng.uniform(-1.5, 1.5, (PARTICLES, 2))
    dataset["alignments3D/psize_A"] = VOXEL_A
    dataset["blob/path"] = [f"J15/stack_{i}.mrcs" for i in range(PARTICLES)]
    return dataset


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, FakeJobs]:
    """P3's folder with J12 (the reference volume) and J15, J16 (refinements: map, half maps,
    sharpened map, mask; J15 with particles), as CryoSPARC's jobs would leave them."""
    root = tmp_path / "P3"
    write_mrc(root / "J12" / "J12_volume_map.mrc", reference_map())
    sources: dict[tuple[str, str], tuple[str, Dataset]] = {
        ("J12", "volume"): (
            "volume",
            volume_dataset(root, {"map": root / "J12/J12_volume_map.mrc"}),
        )
    }
    for uid, truth, seed in (("J15", TRUTHS[0], 1), ("J16", TRUTHS[1], 2)):
        files = write_volume(root / uid, truth, seed, PLAIN_NAMES)
        slots = {
            "map": files.map,
            "map_sharp": files.sharpened,
            "map_half_A": files.half1,
            "map_half_B": files.half2,
            "mask_refine": files.mask,
        }
        sources[(uid, "volume")] = ("volume", volume_dataset(root, slots))
    sources[("J15", "particles")] = ("particle", particle_dataset(7))
    return root, FakeJobs(root, sources)


def check_cs_poses(
    before: Dataset, after: Dataset, truth: Any, rows: np.ndarray | None = None
) -> None:
    """Each updated CryoSPARC pose is the pose formula's for the true transform (as
    tests.host_cases.check_poses for RELION's): ``A' = A R^T`` within 2 degrees, and the
    origin (shift in pixels times psize, RELION's sign) moves by ``(A' t)_xy``."""
    keep = np.arange(len(before)) if rows is None else rows
    a_old, a_new = (cryosparc_matrices(d["alignments3D/pose"][keep]) for d in (before, after))
    expected = a_old @ truth.rotation.T
    cos = (np.einsum("nij,nij->n", a_new, expected) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 2.0
    old_origin = before["alignments3D/shift"][keep].astype(float) * VOXEL_A
    new_origin = after["alignments3D/shift"][keep].astype(float) * VOXEL_A
    assert np.allclose(new_origin, old_origin + (a_new @ truth.shift_A)[:, :2], atol=0.5)


def run_driver(jobs: FakeJobs, *args: str, env: dict[str, str] | None = None) -> int:
    arguments = ["--project", "P3", "--workspace", "W2", "--reference", "J12.volume", *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRYOSPARC_")}
    with (
        mock.patch.dict(os.environ, {**clean, **(env or SETTINGS)}, clear=True),
        mock.patch("cryosparc.tools.APIClient", return_value=fake_api(jobs)),
    ):
        return main(arguments)


def test_job_aligns_volumes_and_saves_maps_masks_and_particles(
    project: tuple[Path, FakeJobs],
) -> None:
    root, jobs = project
    code = run_driver(
        jobs,
        "--volumes",
        "J15.volume",
        "J16.volume",
        "--particles",
        "J15.particles",
        "--max_shift_A",
        "12",
    )
    assert code == 0, jobs.error
    assert jobs.status == ["running", "completed"]
    # inputs: one connection each, with the slots asked for
    counts = {name: (s.count_min, s.count_max) for name, s in jobs.inputs.items()}
    assert counts == {n: (1, 1) for n in ("reference", "volume_1", "volume_2", "particles_1")}
    assert jobs.connected == {
        "reference": ("J12", "volume"),
        "volume_1": ("J15", "volume"),
        "volume_2": ("J16", "volume"),
        "particles_1": ("J15", "particles"),
    }
    # outputs: typed, with explicit slots
    roles = ["map", "map_sharp", "map_half_A", "map_half_B", "mask"]
    kinds = {name: spec.type for name, spec in jobs.outputs.items()}
    assert kinds == {
        "volume_1": "volume",
        "volume_2": "volume",
        "volumes": "volume",
        "particles_1": "particle",
    }
    for name in ("volume_1", "volume_2", "volumes"):
        assert [s.name for s in jobs.outputs[name].slots] == roles
    assert jobs.outputs["particles_1"].passthrough == "particles_1"
    # each saved volume: files in the job's folder, relative to the project, with their grids
    for index in (1, 2):
        saved = jobs.saved[f"volume_{index}"]
        assert len(saved) == 1
        for role in roles:
            path = root / str(saved[f"{role}/path"][0])
            assert path.is_relative_to(root / "J42" / "align3d"), path
            grid = read_grid(path)
            assert list(saved[f"{role}/shape"][0]) == list(grid.shape)
            assert saved[f"{role}/psize_A"][0] == pytest.approx(VOXEL_A)
        check_aligned(root / str(saved["map/path"][0]))
    together = jobs.saved["volumes"]
    assert list(together["map/path"]) == [jobs.saved[f"volume_{i}"]["map/path"][0] for i in (1, 2)]
    # particles: alignments3D rewritten by the first volume's transform, the rest passed through
    before, after = jobs.sources[("J15", "particles")][1], jobs.saved["particles_1"]
    assert set(after.fields()) == {
        "uid",
        "alignments3D/pose",
        "alignments3D/shift",
        "alignments3D/psize_A",
    }
    assert list(after["uid"]) == list(before["uid"])
    assert np.allclose(after["alignments3D/psize_A"], VOXEL_A)
    check_cs_poses(before, after, TRUTHS[0])
    # the spec was written beside the run, as the other hosts do
    assert (root / "J42" / "align3d_job.json").is_file()


def test_failed_run_marks_the_job_failed_with_align3ds_message(
    project: tuple[Path, FakeJobs], capsys: pytest.CaptureFixture[str]
) -> None:
    root, jobs = project
    (root / "J12" / "J12_volume_map.mrc").write_text("not a map\n")
    code = run_driver(jobs, "--volumes", "J15.volume")
    assert code == 2
    assert jobs.status == ["running", "failed"]
    assert "J12_volume_map.mrc" in jobs.error
    assert "Traceback" not in jobs.error
    assert jobs.error in capsys.readouterr().err
    assert not jobs.saved


def test_unpairable_particles_fail_the_job_naming_them(project: tuple[Path, FakeJobs]) -> None:
    _, jobs = project
    jobs.sources[("J20", "particles")] = jobs.sources[("J15", "particles")]
    code = run_driver(jobs, "--volumes", "J15.volume", "J16.volume", "--particles", "J20.particles")
    assert code == 2
    assert jobs.status == ["running", "failed"]
    assert "J20.particles" in jobs.error and "J20" in jobs.error


def test_particles_of_a_downstream_job_pair_with_their_volume(
    project: tuple[Path, FakeJobs],
) -> None:
    """J20 (made from J15's particles, say a subset) is downstream of J15: its particles follow
    J15's volume, the second of two volumes connected, whatever the order."""
    _, jobs = project
    jobs.sources[("J20", "particles")] = jobs.sources[("J15", "particles")]
    jobs.parents = {"J20": ["J19"], "J19": ["J15"], "J15": ["J12"]}
    code = run_driver(jobs, "--volumes", "J16.volume", "J15.volume", "--particles", "J20.particles")
    assert code == 0, jobs.error
    assert jobs.outputs["particles_2"].passthrough == "particles_1"
    assert set(jobs.saved) == {"volume_1", "volume_2", "volumes", "particles_2"}


def test_classes_of_one_job_with_one_particle_set_align_as_a_volumes_group(
    project: tuple[Path, FakeJobs],
) -> None:
    """A classification J20: volume_class_0 and volume_class_1 (classes 1 and 2 to align3d)
    and one particle set whose alignments3D/class (from 0) says which volume each follows."""
    root, jobs = project
    for number, truth in enumerate(TRUTHS):
        files = write_volume(root / "J20" / f"class_{number}", truth, 3 + number, PLAIN_NAMES)
        dataset = volume_dataset(root, {"map": files.map})
        jobs.sources[("J20", f"volume_class_{number}")] = ("volume", dataset)
    particles = particle_dataset(9).add_fields([("alignments3D/class", "<u4")])
    classes = np.arange(PARTICLES) % 2
    particles["alignments3D/class"] = classes
    jobs.sources[("J20", "particles_all_classes")] = ("particle", particles)
    code = run_driver(
        jobs,
        "--volumes", "J20.volume_class_1", "J20.volume_class_0",
        "--particles", "J20.particles_all_classes",
    )  # fmt: skip
    assert code == 0, jobs.error
    assert set(jobs.saved) == {"volume_1", "volume_2", "volumes", "particles"}
    assert jobs.outputs["particles"].passthrough == "particles_1"
    for index in (1, 2):
        check_aligned(root / str(jobs.saved[f"volume_{index}"]["map/path"][0]))
    after = jobs.saved["particles"]
    assert list(after["uid"]) == list(particles["uid"])
    for number, truth in enumerate(TRUTHS):
        check_cs_poses(particles, after, truth, np.flatnonzero(classes == number))


def test_bad_parameter_is_refused_before_connecting(project: tuple[Path, FakeJobs]) -> None:
    _, jobs = project
    assert run_driver(jobs, "--volumes", "J15.volume", "--max_shift_A", "far") == 2
    assert jobs.status == []


def test_no_instance_is_a_clear_error_naming_host_and_port(tmp_path: Path) -> None:
    env_file = tmp_path / "cryosparc.env"
    env_file.write_text(
        "CRYOSPARC_HOST=localhost\nexport CRYOSPARC_BASE_PORT=9\n"
        "CRYOSPARC_EMAIL=ali@example.com\nCRYOSPARC_PASSWORD='not-to-be-shown'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYOSPARC_")}
    done = subprocess.run(
        [
            str(COMMAND),
            "--project",
            "P3",
            "--workspace",
            "W2",
            "--reference",
            "J12.volume",
            "--volumes",
            "J15.volume",
            "--env-file",
            str(env_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "localhost:9" in done.stderr
    assert "Traceback" not in done.stderr
    assert "not-to-be-shown" not in done.stderr + done.stdout


def test_missing_credentials_are_named(project: tuple[Path, FakeJobs]) -> None:
    _, jobs = project
    env = {"CRYOSPARC_HOST": "localhost"}
    assert shutil.which(str(COMMAND))
    assert run_driver(jobs, "--volumes", "J15.volume", env=env) == 2
    assert jobs.status == []


def test_files_this_machine_cannot_see_are_downloaded_into_the_job_folder(
    project: tuple[Path, FakeJobs],
) -> None:
    """J15's files live only on the instance (here: another folder): they are downloaded
    into J42/inputs/ and aligned as if they were local."""
    root, jobs = project
    jobs.remote = root.parent / "instance"
    shutil.copytree(root, jobs.remote)
    shutil.rmtree(root / "J15")
    assert run_driver(jobs, "--volumes", "J15.volume") == 0, jobs.error
    assert sorted(jobs.downloaded) == [
        "J15/half1_unfil.mrc", "J15/half2_unfil.mrc", "J15/map.mrc", "J15/mask.mrc",
        "J15/sharpened.mrc",
    ]  # fmt: skip
    assert (root / "J42" / "inputs" / "J15_map.mrc").is_file()
    check_aligned(root / str(jobs.saved["volume_1"]["map/path"][0]))


def test_a_project_folder_not_on_this_machine_is_refused_before_a_job_is_made(
    project: tuple[Path, FakeJobs], capsys: pytest.CaptureFixture[str]
) -> None:
    _, jobs = project
    jobs.shown_dir = Path("/nowhere/P3")
    assert run_driver(jobs, "--volumes", "J15.volume") == 2
    assert jobs.status == []
    assert "/nowhere/P3 is not on this machine" in capsys.readouterr().err


def test_an_interrupted_run_marks_the_job_failed_not_completed(
    project: tuple[Path, FakeJobs],
) -> None:
    _, jobs = project
    target = "align3d.jobs.align_3d_maps.hosts.cryosparc_job.run_align3d"
    with mock.patch(target, side_effect=KeyboardInterrupt):
        assert run_driver(jobs, "--volumes", "J15.volume") == 130
    assert jobs.status == ["running", "failed"]
    assert jobs.error == "interrupted"


def test_a_file_neither_here_nor_sent_fails_the_job_naming_it(
    project: tuple[Path, FakeJobs],
) -> None:
    root, jobs = project
    jobs.remote = root.parent / "instance"  # holds nothing: the instance cannot send the file
    jobs.remote.mkdir()
    (root / "J15" / "map.mrc").unlink()
    assert run_driver(jobs, "--volumes", "J15.volume") == 2
    assert jobs.status == ["running", "failed"]
    assert jobs.error.startswith(f"J15/map.mrc: not in {root} on this machine")
