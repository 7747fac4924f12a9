"""align3d installs as one import package, ``align3d``: a wheel built from the repository holds
``align3d/`` and its metadata only (issue 24), its entry points name ``align3d.`` modules, and the
README's Python example runs in a folder whose own ``engine.py``, ``jobs.py``, ``slots.py`` and
``schemas.py`` would shadow generic top-level names."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO

LAYERS = ("engine", "jobs", "slots", "schemas")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built, as pip builds one, from a copy of the tracked files (the checkout itself
    is left as it was)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((REPO / name).read_bytes())
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(root / "dist"), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = (root / "dist").glob("align3d-*.whl")
    return found


def test_the_wheel_installs_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    (info,) = [t for t in tops if t.endswith(".dist-info")]
    assert tops == {"align3d", info}
    top_level = zipfile.ZipFile(wheel).read(f"{info}/top_level.txt").decode().split()
    assert top_level == ["align3d"]
    # every package folder of the checkout is in the wheel, under align3d/
    for layer in LAYERS:
        for init in (REPO / layer).rglob("__init__.py"):
            assert f"align3d/{init.relative_to(REPO).as_posix()}" in names
    assert "align3d/schemas/result_manifest.schema.json" in names


def test_entry_points_name_modules_of_the_package(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (info,) = {n.split("/")[0] for n in archive.namelist() if ".dist-info/" in n}
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(archive.read(f"{info}/entry_points.txt").decode())
    assert set(parser["console_scripts"]) == {
        "align3d",
        "align3d-relion-external",
        "align3d-cryosparc",
    }
    targets = [value for section in parser.sections() for value in parser[section].values()]
    assert targets and all(t.strip().startswith("align3d.") for t in targets), targets
    assert "align3d.map_utilities.align_3d_maps" in parser["ccpem_pipeliner.jobs"]


def python_example() -> str:
    readme = (REPO / "README.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", readme, re.S)[:1]
    return block


def shadowing_folder(root: Path) -> Path:
    folder = root / "work"
    folder.mkdir()
    for layer in LAYERS:  # a user's own scripts of these names, first on sys.path
        (folder / f"{layer}.py").write_text(f"raise ImportError('the user\\'s {layer}.py')\n")
    return folder


def run_example(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    probe = "\nimport align3d.engine.alignment.align as m\nprint('FROM', m.__file__)\n"
    return subprocess.run(
        [sys.executable, "-c", python_example() + probe],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def check_example_output(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr[-3000:]
    # the demo's moving map is mirrored: the matrix printed is a proper rotation times a flip,
    # and the score of the answer is printed before the score of the other hand
    numbers = [float(x) for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", done.stdout.split("FROM")[0])]
    score, alternative = numbers[-2:]
    assert 0.9 < score <= 1.0 and alternative < score
    return done.stdout.split("FROM", 1)[1].strip()


def test_the_python_example_runs_beside_files_named_like_the_layers(tmp_path: Path) -> None:
    done = run_example(shadowing_folder(tmp_path), dict(os.environ))
    assert Path(check_example_output(done)).name == "align.py"


@pytest.mark.slow
def test_the_python_example_runs_from_the_wheel(tmp_path: Path, wheel: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel's install, scripts aside
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "NUMBA_CACHE_DIR": str(tmp_path / "numba"),  # the wheel's kernels compile here
    }
    origin = check_example_output(run_example(shadowing_folder(tmp_path), env))
    assert Path(origin).is_relative_to(site)
