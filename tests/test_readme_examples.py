"""The README's command examples run as written, from a copy of the repository's layout (its
fixtures, and its virtual environment linked in): the demo, aligning two maps, both example
specs and the workflow, the CCP-EM pipeliner and RELION sections, many volumes (local processes
and a local Dask cluster), ChimeraX and apply. Left out: commands that install packages
(already installed here), run the test suite, need ChimeraX (not installed) or name a
placeholder (a Dask scheduler at ``tcp://HOST``). Every bash block of the README is run by one
of these tests, and none may warn of anything the README does not explain
(:mod:`tests.readme_warnings`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.readme_warnings import EXPLAINED, assert_explained, collected, readme_text, unexplained
from tests.relion_tools import require_relion
from tests.test_host_pipeliner import require_pipeliner

SKIPPED = ("python3 -m venv", ".venv/bin/pip install", "chimerax ", ".venv/bin/python -m pytest")
"""Commands left out (each line is split at ``&&`` first): installs, the test suite, ChimeraX."""
PLACEHOLDERS = ("tcp://HOST", "cryosparc.example.org")
"""Lines that name something a reader fills in, left out."""
SECTIONS = (
    "# align3d — Align 3D Maps",
    "## Aligning two maps",
    "## As a workflow job",
    "### CCP-EM pipeliner",
    "### RELION",
    "### CryoSPARC",
    "### Which symmetry",
    "## Many volumes",
    "### ChimeraX",
    "### Carrying a transform",
)
"""The README sections whose bash blocks the tests below run."""


def blocks(section: str) -> list[str]:
    """The bash blocks of one README section (heading text up to the next heading)."""
    readme = (REPO / "README.md").read_text()
    start = readme.index(section)
    end = readme.find("\n#", start + len(section))
    body = readme[start : end if end > 0 else None]
    return re.findall(r"```bash\n(.*?)```", body, re.S)


def _kept(line: str) -> str:
    """A line without the commands that are left out (empty when none is left)."""
    if any(p in line for p in PLACEHOLDERS):
        return ""
    parts = [p for p in line.split(" && ") if not p.strip().startswith(SKIPPED)]
    return " && ".join(parts)


def run_as_written(block: str, root: Path) -> subprocess.CompletedProcess[str]:
    lines = [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    kept = [_kept(line) for line in lines]
    script = "set -euo pipefail\n" + "\n".join(k for k in kept if k.strip()) + "\n"
    env = {**os.environ, "HOME": str(root / "home"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


def layout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "fixtures", root / "fixtures")
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def test_every_bash_block_of_the_readme_is_run() -> None:
    readme = (REPO / "README.md").read_text()
    everything = re.findall(r"```bash\n(.*?)```", readme, re.S)
    covered = [block for section in SECTIONS for block in blocks(section)]
    assert sorted(covered) == sorted(everything)


def test_each_allowed_warning_is_explained_in_the_readme() -> None:
    text = readme_text()
    for entry in EXPLAINED:
        assert " ".join(entry.passage.split()) in text, entry


def test_the_warning_sweep_finds_warnings_wherever_a_user_meets_them(tmp_path: Path) -> None:
    printed = subprocess.CompletedProcess(
        [],
        0,
        "[J1] WARNING: volume 1: at the search limit\n[J1] volume 1 aligned\n",
        "align3d: something odd\n/x.py:3: FutureWarning: going away\n",
    )
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "result.json").write_text(
        '{"warnings": ["job-wide"], "details": {"alignments": [{"warnings": ["per volume"]}]}}'
    )
    (tmp_path / "run.err").write_text("align3d: from a manager's job\n")
    found = collected([printed], tmp_path)
    assert found == {
        "volume 1: at the search limit",
        "something odd",
        "FutureWarning: going away",
        "job-wide",
        "per volume",
        "from a manager's job",
    }
    assert unexplained(found) == sorted(found)
    mirrored = "volume 1's hand is flipped: the moved model is mirrored as the map is (...)"
    assert unexplained([mirrored, "job-wide"]) == ["job-wide"]


def test_the_demo_and_many_volumes_examples(tmp_path: Path) -> None:
    root = layout(tmp_path)
    runs = []
    for block in blocks(SECTIONS[0]) + blocks("## Many volumes"):
        done = run_as_written(block, root)
        assert done.returncode == 0, block + done.stdout[-2000:] + done.stderr[-2000:]
        runs.append(done)
    assert (root / "demo_out/demo_summary.json").is_file()
    assert (root / "demo_out/sixteen_dask/volume_016/map.mrc").is_file()
    assert_explained(runs, root)


def test_aligning_two_maps_and_the_example_specs(tmp_path: Path) -> None:
    root = layout(tmp_path)
    runs = []
    for block in blocks("## Aligning two maps") + blocks("## As a workflow job"):
        done = run_as_written(block, root)
        assert done.returncode == 0, block + done.stdout[-2000:] + done.stderr[-2000:]
        runs.append(done)
    assert (root / "demo_out/small_aligned.mrc").is_file()
    assert (root / "demo_out/group/all_particles.star").is_file()
    assert (root / "demo_out/individual/volume_001/map_half_A.mrc").is_file()
    assert (root / "demo_out/workflow/check/result.json").is_file()
    assert_explained(runs, root)


def test_the_symmetry_example(tmp_path: Path) -> None:
    root = layout(tmp_path)
    runs = [run_as_written(block, root) for block in blocks("### Which symmetry")]
    assert [r.returncode for r in runs] == [0], runs[0].stderr[-2000:]
    assert "point group: C1" in runs[0].stdout  # the small reference has no symmetry
    assert_explained(runs, root)


def test_the_chimerax_and_apply_examples(tmp_path: Path) -> None:
    pytest.importorskip("gemmi")
    root = layout(tmp_path)  # the model apply moves is a fixture (fixtures/small_moving_model.cif)
    runs = []
    for block in blocks("### ChimeraX") + blocks("### Carrying a transform"):
        done = run_as_written(block, root)
        assert done.returncode == 0, block + done.stderr[-2000:]
        runs.append(done)
    assert (root / "demo_out/fixture/chimerax.cxc").is_file()
    for name in ("moved.mrc", "particles_moved.star", "model_aligned.cif"):
        assert (root / "demo_out" / name).is_file(), name
    assert "the moved model is mirrored" in runs[-1].stderr  # explained in the README
    assert_explained(runs, root)


def test_the_pipeliner_section(tmp_path: Path) -> None:
    require_pipeliner()
    root = layout(tmp_path)
    (done,) = [run_as_written(b, root) for b in blocks("### CCP-EM pipeliner")]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "align3d.map_utilities.align_3d_maps" in done.stdout
    assert "Succeeded" in done.stdout
    assert (root / "demo_out/pipeliner_project/Align3D/job003/align3d/result.json").is_file()
    # run again, as a user may: the same project gets new jobs (issue 26: no FileExistsError)
    (again,) = [run_as_written(b, root) for b in blocks("### CCP-EM pipeliner")]
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "the project of an earlier run" in again.stdout and "Traceback" not in again.stderr
    assert "Align3D/job006/ Succeeded" in again.stdout
    assert (root / "demo_out/pipeliner_project/Align3D/job003/align3d/result.json").is_file()
    assert (root / "demo_out/pipeliner_project/Align3D/job006/align3d/result.json").is_file()
    # a folder of other things is refused, untouched
    other = root / "demo_out/not_a_project"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    refused = subprocess.run(
        [str(REPO / ".venv/bin/python"), "fixtures/pipeliner_example.py", str(other)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "is not a pipeliner project" in refused.stderr
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    assert_explained([done, again], root)


def test_the_relion_section(tmp_path: Path) -> None:
    require_relion("relion_pipeliner")
    root = layout(tmp_path)
    (done,) = [run_as_written(b, root) for b in blocks("### RELION")]
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    job = root / "demo_out/relion_project/External/job001"
    assert (job / "RELION_JOB_EXIT_SUCCESS").is_file()
    assert "External/job001/align3d/volume_001/map.mrc 6 DensityMap.mrc" in done.stdout
    assert_explained([done], root)


def test_the_cryosparc_section(tmp_path: Path) -> None:
    """What runs without an instance: the command's help, with the align3d parameters; the
    command that needs a live instance names a placeholder host and is left out (the
    driver itself is tested against the real client in tests/test_host_cryosparc.py)."""
    root = layout(tmp_path)
    (done,) = [run_as_written(b, root) for b in blocks("### CryoSPARC")]
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for option in ("--project", "--workspace", "--reference", "--volumes", "--max_shift_A"):
        assert option in done.stdout
    assert not (root / "cryosparc.env").exists()
    assert_explained([done], root)
