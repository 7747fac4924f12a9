"""The first run on a fresh install compiles the kernels behind a one-line notice, and the
compiled kernels are kept even where the installed package is read-only (issue 13)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from align3d.engine.exit_codes import Exit

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
NOTICE = "compiling kernels, once per install"


def _align(
    env: dict[str, str], out: Path, user: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "align3d.engine.cli",
        "align",
        str(FIXTURES / "small_reference.mrc"),
        str(FIXTURES / "small_moving.mrc"),
        "--out",
        str(out),
        "--max-shift",
        "15",
    ]
    return subprocess.run(
        (user or []) + command, capture_output=True, text=True, env=env, cwd=REPO, check=False
    )


def test_a_fresh_install_compiles_once_behind_a_notice(tmp_path: Path) -> None:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))  # nothing compiled yet
    first = _align(env, tmp_path / "a.mrc")
    assert first.returncode == Exit.OK, first.stderr
    assert NOTICE in first.stderr
    assert list((tmp_path / "cache").rglob("*.nbi"))  # the kernels are on disk now
    second = _align(env, tmp_path / "b.mrc")
    assert second.returncode == Exit.OK, second.stderr
    assert NOTICE not in second.stderr


@contextmanager
def _reachable_by_others(path: Path) -> Iterator[None]:
    """Let other users pass through the folders above ``path`` (a checkout cloned into a
    private folder, as ``mktemp -d`` makes, is otherwise out of their reach), as a shared
    install is; each folder's mode is put back afterwards."""
    changed: list[tuple[Path, int]] = []
    try:
        for folder in path.parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(folder, mode | stat.S_IXOTH)
                changed.append((folder, mode))
        yield
    finally:
        for folder, mode in reversed(changed):
            os.chmod(folder, stat.S_IMODE(mode))


def test_a_read_only_install_keeps_its_kernels_in_the_users_cache(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run align3d as another user (a read-only install)")
    with _reachable_by_others(REPO):
        _read_only_install(tmp_path)


def _read_only_install(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="align3d-readonly-", dir="/tmp"))  # reachable by nobody
    os.chmod(base, 0o755)
    home = base / "home"
    home.mkdir()
    shutil.chown(home, "nobody")
    out = base / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), PYTHONDONTWRITEBYTECODE="1")
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = subprocess.run(
        [*nobody, "sh", "-c", f"test -w {REPO / 'engine' / 'alignment'} && echo writable"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "writable" not in probe.stdout  # the package is read-only for this user
    first = _align(env, out / "a.mrc", nobody)
    assert first.returncode == Exit.OK, first.stderr
    assert NOTICE in first.stderr
    cached = list((home / ".cache").rglob("*.nbi"))
    assert cached, "the kernels should be kept in the user's cache folder"
    second = _align(env, out / "b.mrc", nobody)
    assert second.returncode == Exit.OK, second.stderr
    assert NOTICE not in second.stderr
    # and a folder this user cannot write is a clear error, not a traceback
    locked = _align(env, tmp_path / "c.mrc", nobody)
    assert locked.returncode == Exit.CANNOT_WRITE, locked.stderr
    assert "permission denied" in locked.stderr and "Traceback" not in locked.stderr
    shutil.rmtree(base, ignore_errors=True)


def test_kernels_loaded_from_the_cache_leave_numbas_compiler_unloaded(tmp_path: Path) -> None:
    """numba refreshes its compiler's registries before a cache lookup, a quarter second of
    every command's start-up that a cached kernel never uses: a command with every kernel
    cached (the test session compiled them) runs without them, with the known answer; with an
    empty cache it compiles, with them."""
    import json

    import numpy as np

    truth = json.loads((FIXTURES / "small_truth.json").read_text())

    def run(env: dict[str, str], name: str) -> tuple[bool, dict]:
        """Whether the command loaded numba's compiler registries, and its summary."""
        summary = tmp_path / f"{name}.json"
        command = [
            sys.executable, "-X", "importtime", "-m", "align3d.engine.cli", "align",
            str(FIXTURES / "small_reference.mrc"), str(FIXTURES / "small_moving.mrc"),
            "--out", str(tmp_path / f"{name}.mrc"), "--json", str(summary), "--max-shift", "15",
        ]  # fmt: skip
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
        assert done.returncode == Exit.OK, done.stderr
        return "numba.np.arraymath" in done.stderr, json.loads(summary.read_text())

    cached = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    loaded, found = run(cached, "cached")
    assert not loaded
    assert np.allclose(found["rotation"], truth["rotation"], atol=0.01)
    assert np.allclose(found["shift_A"], truth["shift_A"], atol=0.25)
    assert found["hand_flipped"] == truth["hand_flipped"]
    # an empty cache: compiled (in the first-run helpers, numba's compiler and all) to the
    # same answer, and the kernels of the default cache stay in force
    _, again = run(dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache")), "fresh")
    assert list((tmp_path / "cache").rglob("*.nbi"))
    assert again["rotation"] == found["rotation"] and again["shift_A"] == found["shift_A"]
    assert run(cached, "cached_again")[0] is False


PROBE = """
import numpy as np
import align3d.engine
from align3d.engine.alignment.warmup import ensure_compiled
ensure_compiled(lambda line: print(line))
from align3d.engine.alignment.spline.affine import affine_linear
grid = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
moved = affine_linear(grid, np.eye(3), np.full(3, 0.5), (3, 4, 5))
print(align3d.engine.__file__)
print(float(moved[1, 2, 3]))
"""


@pytest.mark.slow
def test_a_changed_inline_helper_recompiles_the_kernels_built_from_it(tmp_path: Path) -> None:
    """numba checks a cached kernel against its own file only: after a change to a helper in
    another file (a checkout updated by ``git pull``), the kernels are built anew from it."""
    tree = tmp_path / "tree"
    for package in ("engine", "slots", "schemas", "jobs"):
        shutil.copytree(
            REPO / package,
            tree / "align3d" / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1")

    def probe() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=tree
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[-2].startswith(str(tree)), lines  # the copy runs, not the checkout
        return lines

    first = probe()
    assert any(NOTICE in line for line in first)
    assert float(first[-1]) == 63.5  # 30 z + 6 y + x at (1.5, 2.5, 3.5), blended linearly
    assert not any(NOTICE in line for line in probe())  # compiled once
    basis = tree / "align3d" / "engine" / "alignment" / "spline" / "basis.py"
    blend = "    return c0 * (1.0 - tz) + c1 * tz\n"
    assert blend in basis.read_text()
    basis.write_text(
        basis.read_text().replace(blend, "    return 2.0 * (c0 * (1.0 - tz) + c1 * tz)\n")
    )
    again = probe()
    assert any(NOTICE in line for line in again)
    assert float(again[-1]) == 127.0  # built from the changed helper, not loaded from the cache


def test_every_kernel_and_inline_helper_module_is_known_to_the_first_run_compile() -> None:
    """A kernel module missing from the warm-up compiles during a user's job instead; a helper
    module missing from the marker's key leaves stale kernels after it changes."""
    from align3d.engine.alignment.warmup import GROUPS, HELPERS

    kernels, helpers = set(), set()
    for path in (REPO / "engine").rglob("*.py"):
        module = ".".join(("align3d", *path.relative_to(REPO).with_suffix("").parts))
        text = path.read_text()
        if "\n@kernel(" in text:
            kernels.add(module)
        elif "\n@inline" in text:
            helpers.add(module)
    assert kernels == {m for group in GROUPS for m in group}
    assert helpers == set(HELPERS)
