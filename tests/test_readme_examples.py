"""The README's command examples run as written, from a copy of the repository's layout (its
fixtures, and its virtual environment linked in): aligning two maps, both example specs, the
CCP-EM pipeliner and RELION sections, and apply. Lines that install packages (already installed
here) or need ChimeraX (not installed) are the only ones left out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.relion_tools import require_relion
from tests.test_host_pipeliner import require_pipeliner

SKIPPED = (".venv/bin/pip install", "chimerax ")


def blocks(section: str) -> list[str]:
    """The bash blocks of one README section (heading text up to the next heading)."""
    readme = (REPO / "README.md").read_text()
    start = readme.index(section)
    end = readme.find("\n#", start + len(section))
    body = readme[start : end if end > 0 else None]
    return re.findall(r"```bash\n(.*?)```", body, re.S)


def run_as_written(block: str, root: Path) -> subprocess.CompletedProcess[str]:
    lines = [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    kept = [line for line in lines if not line.strip().startswith(SKIPPED)]
    script = "set -euo pipefail\n" + "\n".join(kept) + "\n"
    env = {**os.environ, "HOME": str(root / "home"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


def layout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "fixtures", root / "fixtures")
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def test_aligning_two_maps_and_the_example_specs(tmp_path: Path) -> None:
    root = layout(tmp_path)
    for block in blocks("## Aligning two maps") + blocks("## As a workflow job"):
        done = run_as_written(block, root)
        assert done.returncode == 0, block + done.stdout[-2000:] + done.stderr[-2000:]
    assert (root / "demo_out/small_aligned.mrc").is_file()
    assert (root / "demo_out/group/all_particles.star").is_file()
    assert (root / "demo_out/individual/volume_001/map_half_A.mrc").is_file()


def test_the_chimerax_and_apply_examples(tmp_path: Path) -> None:
    gemmi = pytest.importorskip("gemmi")
    root = layout(tmp_path)
    structure = gemmi.Structure()
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    residue = gemmi.Residue()
    residue.name, residue.seqid = "ALA", gemmi.SeqId(1, " ")
    atom = gemmi.Atom()
    atom.name, atom.element, atom.pos = "CA", gemmi.Element("C"), gemmi.Position(60.0, 61.0, 62.0)
    residue.add_atom(atom)
    chain.add_residue(residue)
    model.add_chain(chain)
    structure.add_model(model)
    structure.setup_entities()
    structure.make_mmcif_document().write_file(str(root / "fitted.cif"))
    for block in blocks("### ChimeraX") + blocks("### Carrying a transform"):
        done = run_as_written(block, root)
        assert done.returncode == 0, block + done.stderr[-2000:]
    assert (root / "demo_out/fixture/chimerax.cxc").is_file()
    for name in ("moved.mrc", "particles_moved.star", "fitted_aligned.cif"):
        assert (root / "demo_out" / name).is_file(), name


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


def test_the_relion_section(tmp_path: Path) -> None:
    require_relion("relion_pipeliner")
    root = layout(tmp_path)
    (done,) = [run_as_written(b, root) for b in blocks("### RELION")]
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    job = root / "demo_out/relion_project/External/job001"
    assert (job / "RELION_JOB_EXIT_SUCCESS").is_file()
    assert "External/job001/align3d/volume_001/map.mrc 6 DensityMap.mrc" in done.stdout
