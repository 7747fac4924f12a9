"""Align 3D Maps as a RELION External job, run by RELION's own ``relion_pipeliner`` (Debian's
RELION 3.1.3): maps given as a parameter, or found in a Refine3D or Class3D job folder; the
output-node list with both type columns (the RELION 4/5 labels against a golden pipeline in
RELION 5's format); the exit markers; a failure that does not hang RELION."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.hosts.relion_pipeline import (
    FAILURE,
    OUTPUT_NODES,
    SUCCESS,
    read_project_pipeline,
)
from align3d.jobs.align_3d_maps.hosts.relion_external import main as external_main
from tests.host_cases import (
    PLAIN_NAMES,
    TRUTHS,
    check_aligned,
    check_poses,
    reference_map,
    write_mrc,
    write_particles,
    write_volume,
)
from tests.relion_tools import require_relion

GOLDEN = Path(__file__).parent / "golden"
EXTERNAL = Path(sys.executable).with_name("align3d-relion-external")
EMPTY_PIPELINE = "\n# version 30001\n\ndata_pipeline_general\n\n_rlnPipeLineJobCounter 1\n\n"
REFINE_NAMES = {
    "map": "run_class001.mrc",
    "half1": "run_half1_class001_unfil.mrc",
    "half2": "run_half2_class001_unfil.mrc",
    "sharpened": "postprocess.mrc",
    "mask": "mask.mrc",
    "particles": "run_data.star",
}


def new_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "default_pipeline.star").write_text(EMPTY_PIPELINE)
    write_mrc(root / "ref.mrc", reference_map())
    return root


def relion_run(project: Path, options: dict[str, str], timeout_s: float = 400) -> Path:
    """``relion_pipeliner --addJob External`` then ``--RunJobs``; the job folder."""
    require_relion("relion_pipeliner")
    assert EXTERNAL.is_file(), f"{EXTERNAL} is not installed (pip install -e .)"
    joined = ";".join(f"{k} == {v}" for k, v in {"fn_exe": str(EXTERNAL), **options}.items())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for args in (
        ["relion_pipeliner", "--addJob", "External", "--addJobOptions", joined],
        ["relion_pipeliner", "--RunJobs", "External/job001/", "--sec_wait_after", "1"],
    ):
        done = subprocess.run(
            args, cwd=project, env=env, capture_output=True, text=True, timeout=timeout_s
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return project / "External" / "job001"


def params(*pairs: tuple[str, str]) -> dict[str, str]:
    options = {}
    for k, (label, value) in enumerate(pairs, start=1):
        options[f"param{k}_label"], options[f"param{k}_value"] = label, value
    return options


def output_nodes(job: Path) -> dict[str, tuple[int, str]]:
    rows = [line.split() for line in (job / OUTPUT_NODES).read_text().splitlines()]
    return {
        r[0]: (int(r[1]), r[2]) for r in rows if len(r) == 3 and not r[0].startswith(("_", "#"))
    }


def pipeline_nodes(project: Path) -> dict[str, int]:
    text = (project / "default_pipeline.star").read_text().split("data_pipeline_nodes")[1]
    block = text.split("data_")[0]
    rows = [line.split() for line in block.splitlines()]
    return {r[0]: int(r[1]) for r in rows if len(r) == 2 and not r[0].startswith(("_", "#"))}


def test_external_job_with_maps_given(tmp_path: Path) -> None:
    project = new_project(tmp_path / "project")
    files = write_volume(project / "vol1", TRUTHS[0], seed=1, names=PLAIN_NAMES)
    job = relion_run(
        project,
        {"in_3dref": "ref.mrc", "in_part": "vol1/particles.star"}
        | params(
            ("maps", "vol1/map.mrc"),
            ("half_maps", "vol1/half1_unfil.mrc,vol1/half2_unfil.mrc"),
            ("sharpened", "vol1/sharpened.mrc"),
            ("mask_to_align", "vol1/mask.mrc"),
            ("max_shift_A", "15"),
        ),
    )
    assert (job / SUCCESS).is_file() and not (job / FAILURE).exists(), (job / "run.err").read_text()
    nodes = output_nodes(job)
    run = "External/job001/align3d"
    expected = {
        f"{run}/volume_001/map.mrc": 6,
        f"{run}/volume_001/map_half_A.mrc": 10,
        f"{run}/volume_001/map_half_B.mrc": 10,
        f"{run}/volume_001/map_sharp.mrc": 11,
        f"{run}/volume_001/mask.mrc": 7,
        f"{run}/particles_for_map_1.star": 3,
    }
    assert {name: kind for name, (kind, _) in nodes.items()} == expected
    # RELION registered every output node, with its type, and the input edges
    registered = pipeline_nodes(project)
    assert all(registered.get(name) == kind for name, kind in expected.items()), registered
    edges = read_project_pipeline(project)
    assert edges.reads["External/job001/"] >= {"ref.mrc", "vol1/particles.star"}
    assert edges.source(f"{run}/volume_001/map.mrc") == "External/job001/"
    for name in ("map", "map_half_A", "map_half_B", "mask"):
        assert (project / run / "volume_001" / f"{name}.mrc").is_file()
    check_aligned(project / run / "volume_001" / "map.mrc")
    check_poses(files.particles, project / run / "particles_for_map_1.star", TRUTHS[0])


def test_external_job_finds_a_refine3d_jobs_maps(tmp_path: Path) -> None:
    project = new_project(tmp_path / "project")
    files = write_volume(project / "Refine3D" / "job010", TRUTHS[1], seed=2, names=REFINE_NAMES)
    job = relion_run(
        project,
        {"in_3dref": "ref.mrc", "in_part": "Refine3D/job010/run_data.star"}
        | params(("max_shift_A", "15")),
    )
    assert (job / SUCCESS).is_file(), (job / "run.err").read_text()
    nodes = output_nodes(job)
    run = "External/job001/align3d"
    assert nodes[f"{run}/volume_001/map_half_A.mrc"][0] == 10
    assert nodes[f"{run}/volume_001/map_half_B.mrc"][0] == 10
    check_aligned(project / run / "volume_001" / "map.mrc")
    check_aligned(project / run / "volume_001" / "map_half_A.mrc", tolerance=0.95)
    check_poses(files.particles, project / run / "particles_for_map_1.star", TRUTHS[1])


def test_external_job_aligns_a_class3d_jobs_classes_as_a_group(tmp_path: Path) -> None:
    project = new_project(tmp_path / "project")
    folder = project / "Class3D" / "job011"
    for k, truth in enumerate(TRUTHS, start=1):
        names = dict(PLAIN_NAMES, map=f"run_it025_class{k:03d}.mrc", particles=f"unused{k}.star")
        write_volume(folder, truth, seed=10 + k, names=names)
    write_mrc(folder / "run_it024_class001.mrc", np.zeros((8, 8, 8)))  # an earlier iteration
    classes = np.array([1, 2] * 6)
    particles = write_particles(folder / "run_it025_data.star", seed=5, classes=classes)
    job = relion_run(
        project,
        {"in_3dref": "ref.mrc", "in_part": "Class3D/job011/run_it025_data.star"}
        | params(("max_shift_A", "15")),
    )
    assert (job / SUCCESS).is_file(), (job / "run.err").read_text()
    run = project / "External/job001/align3d"
    for k in (1, 2):
        check_aligned(run / f"volume_{k:03d}" / "map.mrc")
    assert output_nodes(job)["External/job001/align3d/all_particles.star"][0] == 3
    for k, truth in enumerate(TRUTHS, start=1):
        check_poses(particles, run / "all_particles.star", truth, rows=classes == k)


def test_a_failing_job_writes_the_failure_marker_and_relion_does_not_hang(tmp_path: Path) -> None:
    project = new_project(tmp_path / "project")
    job = relion_run(project, {"in_3dref": "ref.mrc"} | params(("maps", "no_such_map.mrc")))
    assert (job / FAILURE).is_file() and not (job / SUCCESS).exists()
    message = (job / "run.err").read_text()
    assert "no_such_map.mrc" in message and "no such file" in message
    assert "Traceback" not in message


def test_a_missing_reference_fails_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project(tmp_path / "project")
    write_volume(project / "vol1", TRUTHS[0], seed=1, names=PLAIN_NAMES)
    monkeypatch.chdir(project)
    code = external_main(
        ["--o", "External/job002/", "--in_3dref", "gone.mrc", "--maps", "vol1/map.mrc", "--j", "1"]
    )
    assert code == 2
    assert (project / "External/job002" / FAILURE).is_file()
    err = capsys.readouterr().err
    assert "gone.mrc" in err and "reference" in err


def test_an_unknown_parameter_is_refused_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project(tmp_path / "project")
    write_volume(project / "vol1", TRUTHS[0], seed=1, names=PLAIN_NAMES)
    monkeypatch.chdir(project)
    args = ["--o", "External/job003/", "--in_3dref", "ref.mrc", "--maps", "vol1/map.mrc"]
    assert external_main([*args, "--max_shift", "10"]) == 2
    assert "did you mean 'max_shift_A'" in capsys.readouterr().err
    assert (project / "External/job003" / FAILURE).is_file()


def test_relion5_labels_match_a_relion5_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a RELION 5 project the label column carries RELION 5's labels (those of the golden
    pipeline, written in RELION 5's format), and ``pipeline_control`` is accepted."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(GOLDEN / "relion5_default_pipeline.star", project / "default_pipeline.star")
    write_mrc(project / "ref.mrc", reference_map())
    write_volume(project / "vol1", TRUTHS[0], seed=1, names=PLAIN_NAMES)
    monkeypatch.chdir(project)
    args = ["--o", "External/job002/", "--in_3dref", "ref.mrc", "--in_parts", "vol1/particles.star"]
    args += ["--maps", "vol1/map.mrc", "--mask_to_align", "vol1/mask.mrc", "--max_shift_A", "15"]
    args += ["--half_maps", "vol1/half1_unfil.mrc,vol1/half2_unfil.mrc"]
    assert external_main([*args, "--j", "1", "--pipeline_control", "External/job002/"]) == 0
    golden = {}
    for line in (GOLDEN / "relion5_default_pipeline.star").read_text().splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0].startswith("External/"):
            golden[Path(fields[0]).name] = fields[1]
    labels = {
        Path(name).name: label
        for name, (_, label) in output_nodes(project / "External/job002").items()
    }
    assert labels["map.mrc"] == golden["out_map.mrc"] == "DensityMap.mrc"
    assert labels["map_half_A.mrc"] == golden["out_half1.mrc"] == "DensityMap.mrc.halfmap"
    assert labels["particles_for_map_1.star"] == golden["out_particles.star"]
    assert labels["mask.mrc"] == "Mask3D.mrc"
    assert "# version 50001" in (project / "External/job002" / OUTPUT_NODES).read_text()


def test_an_abort_from_the_gui_stops_the_job_and_writes_the_aborted_marker(tmp_path: Path) -> None:
    """RELION's GUI asks a job to stop by creating RELION_JOB_ABORT_NOW: the run stops as on
    Ctrl-C (no half-written results) and RELION_JOB_EXIT_ABORTED follows."""
    project = new_project(tmp_path / "project")
    maps = []
    for k in range(6):
        files = write_volume(project / f"vol{k}", TRUTHS[k % 2], seed=k, names=PLAIN_NAMES)
        maps.append(str(files.map.relative_to(project)))
    job = project / "External/job001"
    args = ["--o", "External/job001/", "--in_3dref", "ref.mrc", "--maps", ",".join(maps)]
    process = subprocess.Popen(
        [str(EXTERNAL), *args, "--max_shift_A", "15", "--j", "1"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (job / "align3d_job.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (job / "RELION_JOB_ABORT_NOW").touch()
    try:
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()  # never left running when the test fails
    if "clean-up at exit did not finish" in err:  # ended by the exit watchdog: show where
        warnings.warn(f"the aborted job's clean-up was stuck: {err}", stacklevel=1)
    assert (job / "RELION_JOB_EXIT_ABORTED").is_file(), err
    assert not (job / SUCCESS).exists() and not (job / FAILURE).exists()
    assert not (job / "align3d" / "result.json").exists()
    assert "interrupted" in err
