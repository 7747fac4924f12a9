"""The first run on a fresh install compiles the kernels behind a one-line notice, and the
compiled kernels are kept even where the installed package is read-only (issue 13)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from engine.exit_codes import Exit

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
NOTICE = "compiling kernels, once per install"


def _align(
    env: dict[str, str], out: Path, user: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "engine.cli",
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


def test_a_read_only_install_keeps_its_kernels_in_the_users_cache(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run align3d as another user (a read-only install)")
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
