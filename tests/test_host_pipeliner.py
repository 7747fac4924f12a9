"""Align 3D Maps as a CCP-EM pipeliner job, run by the real pipeliner (PyPI ccpem-pipeliner) in a
headless project: maps imported with ``relion.import``, two volumes with half maps, masks and
particles paired by where they came from; the pipeline graph, the aligned maps against the
truth, the particles against the pose formula, the results display, ``--check_jobs``, and an
ambiguous pairing refused before anything runs. The outputs are known when the job is created:
a schedule of the job and a pipeliner job that reads its aligned map runs through."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest

from align3d.jobs.align_3d_maps.hosts.outputs import output_files, read_result
from align3d.jobs.align_3d_maps.names import volume_folder
from tests.host_cases import (
    PLAIN_NAMES,
    TRUTHS,
    check_aligned,
    check_poses,
    read_mrc,
    reference_map,
    write_mrc,
    write_volume,
)

PROCESS = "align3d.map_utilities.align_3d_maps"


def require_pipeliner() -> None:
    try:
        importlib.metadata.version("ccpem-pipeliner")
    except importlib.metadata.PackageNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("ccpem-pipeliner is not installed; CI must run the pipeliner tests")
        pytest.skip("ccpem-pipeliner is not installed (pip install -e '.[pipeliner]')")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Any]:
    """A new pipeliner project in ``tmp_path/project`` (the current folder), with a private
    HOME for the pipeliner's settings."""
    require_pipeliner()
    root = tmp_path / "project"
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path / "home"))
        patch.chdir(root)
        from pipeliner.api.manage_project import PipelinerProject

        yield PipelinerProject(make_new_project=True)


def imported(project: Any, files: list[Path], node_type: str, keywords: str = "") -> list[str]:
    job = project.run_job(
        {
            "_rlnJobTypeLabel": "relion.import",
            "fn_in_other": ":::".join(str(f) for f in files),
            "is_relion": "No",
            "pipeliner_node_type": node_type,
            "kwds": keywords,
        },
        run_in_foreground=True,
    )
    return [n.name for n in job.output_nodes]


def names_for(volume: int) -> dict[str, str]:
    return {key: f"v{volume}_{name}" for key, name in PLAIN_NAMES.items()}


def test_the_pipeliner_runs_the_job_on_two_volumes(project: Any, tmp_path: Path) -> None:
    from pipeliner.project_graph import ProjectGraph

    data = tmp_path / "data"
    reference = write_mrc(data / "ref.mrc", reference_map())
    volumes = [
        write_volume(data / f"vol{k}", truth, seed=k, names=names_for(k))
        for k, truth in enumerate(TRUTHS, start=1)
    ]
    (ref_node,) = imported(project, [reference], "DensityMap")
    maps = imported(project, [v.map for v in volumes], "DensityMap")
    halves = imported(
        project, [f for v in volumes for f in (v.half1, v.half2)], "DensityMap", "halfmap"
    )
    sharpened = imported(project, [v.sharpened for v in volumes], "DensityMap")
    masks = imported(project, [v.mask for v in volumes], "Mask3D")
    particles = imported(project, [v.particles for v in volumes], "ParticleGroupMetadata", "relion")
    job = project.run_job(
        {
            "_rlnJobTypeLabel": PROCESS,
            "reference_map": ref_node,
            # the second volume first: pairing goes by origin, not by position
            "maps_to_align": ":::".join(reversed(maps)),
            "half_maps": ":::".join(halves),
            "sharpened_maps": ":::".join(sharpened),
            "masks_to_align": ":::".join(masks),
            "particles": ":::".join(particles),
            "max_shift_A": 15.0,
            "update_particle_alignments": "Yes",
            "create_mask_inputs": "Yes",
        },
        run_in_foreground=True,
    )
    name = job.output_dir
    with ProjectGraph(read_only=True) as pipe:
        process = pipe.find_process(name)
        assert process.status == "Succeeded", (Path(name) / "run.err").read_text()
        assert process.type == PROCESS
        inputs = {n.name for n in process.input_nodes}
        assert inputs == {ref_node, *maps, *halves, *sharpened, *masks, *particles}
        outputs = {n.name: n.type for n in process.output_nodes}
    run = f"{name}align3d"
    # maps_to_align was given as (volume 2, volume 1): volume 1 is the second map
    for index, truth_index in ((1, 1), (2, 0)):
        folder = f"{run}/{volume_folder(index)}"
        assert outputs[f"{folder}/map.mrc"] == "DensityMap.mrc.align3d.aligned"
        assert outputs[f"{folder}/map_half_A.mrc"] == "DensityMap.mrc.align3d.aligned.halfmap"
        assert outputs[f"{folder}/map_half_B.mrc"] == "DensityMap.mrc.align3d.aligned.halfmap"
        assert outputs[f"{folder}/map_sharp.mrc"] == "DensityMap.mrc.align3d.aligned.sharpened"
        assert outputs[f"{folder}/mask.mrc"] == "Mask3D.mrc.align3d.aligned"
        particle_node = f"{run}/particles_for_map_{index}.star"
        assert outputs[particle_node] == "ParticleGroupMetadata.star.relion.align3d.aligned"
        check_aligned(Path(folder) / "map.mrc")
        check_aligned(Path(folder) / "map_half_A.mrc", tolerance=0.95)
        check_aligned(Path(folder) / "map_sharp.mrc")  # 1.5 x the map: moved with it
        check_poses(volumes[truth_index].particles, Path(particle_node), TRUTHS[truth_index])
    assert outputs[f"{run}/job.log"].startswith("LogFile.")
    # declared when the job was created, before it ran: the very nodes the run filled, and
    # the files its result.json lists
    assert {n.name: n.type for n in job.output_nodes} == outputs
    written = {f"{run}/{item.path}" for item in output_files(read_result(Path(run)))}
    assert written | {f"{run}/job.log"} == set(outputs)
    # the results display Doppio shows: the alignment table and each volume's figures
    project.get_job(name).save_results_display_files()
    displays = sorted(Path(name).glob(".results_display*"))
    kinds = [d.name.split("_", 2)[-1] for d in displays]
    assert any("table" in k for k in kinds) and any("image" in k for k in kinds), kinds


MAP_SHIFT = "ccpem_utils.map_utilities.shift_origin_nstart"
"""A pipeliner job of the pipeliner's own that reads a DensityMap (and runs in Python only):
it copies the map with a new origin in its header."""


def test_a_job_on_the_aligned_map_is_scheduled_before_the_align_job_runs(
    project: Any, tmp_path: Path
) -> None:
    from pipeliner.project_graph import ProjectGraph

    data = tmp_path / "data"
    reference = write_mrc(data / "ref.mrc", reference_map())
    volume = write_volume(data / "vol", TRUTHS[0], seed=1, names=names_for(1))
    (ref_node,) = imported(project, [reference], "DensityMap")
    (map_node,) = imported(project, [volume.map], "DensityMap")
    align = project.schedule_job(
        {
            "_rlnJobTypeLabel": PROCESS,
            "reference_map": ref_node,
            "maps_to_align": map_node,
            "max_shift_A": 15.0,
        }
    )
    aligned = f"{align.output_dir}align3d/{volume_folder(1)}/map.mrc"
    declared = {n.name: n.type for n in align.output_nodes}
    assert declared == {
        aligned: "DensityMap.mrc.align3d.aligned",
        f"{align.output_dir}align3d/job.log": "LogFile.txt.align3d",
    }
    assert not Path(aligned).exists()
    shift = project.schedule_job(
        {
            "_rlnJobTypeLabel": MAP_SHIFT,
            "input_maps": aligned,
            "origin_or_nstart": "origin",
            "origin_x": 1.0,
            "origin_y": 2.0,
            "origin_z": 3.0,
        }
    )
    with ProjectGraph(read_only=True) as pipe:  # the edge Doppio draws, before either runs
        assert pipe.find_node(aligned).output_from_process.name == align.output_dir
        assert [n.name for n in pipe.find_process(shift.output_dir).input_nodes] == [aligned]
    with pytest.MonkeyPatch.context() as patch:
        # the map shift job runs ``python3``: the one with the pipeliner's packages
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        project.run_schedule(
            "align_then_shift", [align.output_dir, shift.output_dir], seconds_wait_after=0
        )
    with ProjectGraph(read_only=True) as pipe:
        done = {name: pipe.find_process(name) for name in (align.output_dir, shift.output_dir)}
        for name, process in done.items():
            assert process.status == "Succeeded", (Path(name) / "run.err").read_text()
        assert [n.name for n in done[shift.output_dir].input_nodes] == [aligned]
        assert aligned in {n.name for n in done[align.output_dir].output_nodes}
    check_aligned(Path(aligned))
    # the downstream job read the aligned map: its output is that map, with the new origin
    shifted = Path(shift.output_dir) / "map_shifted.mrc"
    np.testing.assert_array_equal(read_mrc(shifted), read_mrc(Path(aligned)))
    with mrcfile.open(shifted, permissive=True) as mrc:
        origin = mrc.header.origin
        assert (float(origin.x), float(origin.y), float(origin.z)) == (1.0, 2.0, 3.0)
    # a declared output that is not there after the run fails the job's post-run step, named
    Path(aligned).unlink()
    missing = re.escape(f"did not write {aligned.removeprefix(align.output_dir)},")
    with pytest.raises(FileNotFoundError, match=missing):
        project.get_job(align.output_dir).create_post_run_output_nodes()


def test_an_ambiguous_pairing_is_refused_before_anything_runs(project: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    reference = write_mrc(data / "ref.mrc", reference_map())
    # names that share nothing: the pairing cannot tell whose half maps these are
    plain = {**PLAIN_NAMES, "half1": "h1.mrc", "half2": "h2.mrc"}
    one = write_volume(data / "one", TRUTHS[0], seed=1, names={**plain, "map": "alpha.mrc"})
    two = write_volume(data / "two", TRUTHS[1], seed=2, names={**plain, "map": "beta.mrc"})
    (ref_node,) = imported(project, [reference], "DensityMap")
    maps = imported(project, [one.map, two.map], "DensityMap")
    halves = imported(project, [one.half1, one.half2], "DensityMap", "halfmap")
    with pytest.raises(ValueError, match="fits several maps to align"):
        project.run_job(
            {
                "_rlnJobTypeLabel": PROCESS,
                "reference_map": ref_node,
                "maps_to_align": ":::".join(maps),
                "half_maps": ":::".join(halves),
            },
            run_in_foreground=True,
        )
    assert not Path("Align3D").exists()


def test_an_out_of_bounds_parameter_is_refused_by_the_declaration(
    project: Any, tmp_path: Path
) -> None:
    (ref_node,) = imported(
        project, [write_mrc(tmp_path / "ref.mrc", reference_map())], "DensityMap"
    )
    with pytest.raises(ValueError, match="symmetry"):
        project.run_job(
            {
                "_rlnJobTypeLabel": PROCESS,
                "reference_map": ref_node,
                "maps_to_align": ref_node,
                "symmetry": "D2h",
            },
            run_in_foreground=True,
        )


def test_check_jobs_lists_the_job_as_available(tmp_path: Path) -> None:
    require_pipeliner()
    pipeliner = Path(sys.executable).with_name("pipeliner")
    done = subprocess.run(
        [str(pipeliner), "--check_jobs", "align3d"],
        env={**os.environ, "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    available = done.stdout.split("Unavailable jobs")[0]
    assert PROCESS in available, done.stdout


def test_both_packages_keep_working_side_by_side() -> None:
    """``pip check`` passes; align3d owns one top-level import package, ``align3d``, which no
    other installed distribution ships, and none of the generic names its folders carry in the
    repository (``engine``, ``jobs``, ...)."""
    require_pipeliner()
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    owners = importlib.metadata.packages_distributions()
    ours = {m for m, dists in owners.items() if "align3d" in dists}
    assert ours == {"align3d"} and set(owners["align3d"]) == {"align3d"}, ours
    theirs = {m for m, dists in owners.items() if "ccpem-pipeliner" in dists}
    assert "pipeliner" in theirs and not (theirs & ours)


def test_the_job_options_are_the_declared_parameters() -> None:
    """Same names, defaults, limits and help as align_3d_maps's declaration (generated, not
    retyped)."""
    require_pipeliner()
    from align3d.engine.describe import describe
    from align3d.jobs.align_3d_maps.hosts.pipeliner_job import Align3DMapsJob
    from align3d.jobs.align_3d_maps.job import JOB

    options = Align3DMapsJob().joboptions
    for param in describe(JOB).params:
        option = options[param.name]
        assert option.default_value == param.default, param.name
        assert option.label == param.title and option.help_text.startswith(param.help)
        if param.choices:
            assert option.choices == param.choices
        if param.type in ("integer", "number"):
            assert option.hard_min == param.minimum and option.hard_max == param.maximum
