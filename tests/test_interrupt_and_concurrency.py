"""Interrupts leave no partial output and the same command completes the work; two runs into
one folder do not collide. Real subprocesses and real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from align3d.engine.exit_codes import Exit
from tests.helpers import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def workflow(volumes: int) -> dict:
    maps = [{"map": str(FIXTURES / "small_moving.mrc"), "index": i + 1} for i in range(volumes)]
    return {
        "jobs": {
            "ref": {
                "job": "import_volume",
                "params": {"map": str(FIXTURES / "small_reference.mrc")},
            },
            "align": {
                "job": "align_3d_maps",
                "params": {"max_shift_A": 15},
                "inputs": {"reference_map": {"from": "ref.volume"}, "maps_to_align": maps},
            },
        }
    }


def start(spec: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "align3d.engine.cli", "run", str(spec), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the run did not reach the expected point")
        time.sleep(0.02)


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has finished


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) + sorted(
        p.name for p in out.glob(".*")
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_leaves_no_partial_output_and_a_rerun_completes(
    tmp_path: Path, sig: signal.Signals
) -> None:
    spec = tmp_path / "wf.json"
    spec.write_text(json.dumps(workflow(6)))
    out = tmp_path / "out"
    proc = start(spec, out)
    # interrupt while the alignment job works in its temporary folder
    wait_for(lambda: any(p.name.startswith(".align.tmp-") for p in out.glob(".align.tmp-*")))
    time.sleep(0.3)
    workers = children(proc.pid)
    assert workers  # the volumes are being aligned in worker processes too
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == Exit.INTERRUPTED, err
    assert not [pid for pid in workers if alive(pid)]  # no worker outlives the run
    assert "interrupted" in err and "Traceback" not in err
    assert (out / "ref" / "result.json").exists()  # the completed job stays, whole
    assert not (out / "align").exists()  # the unfinished one left nothing in place
    assert leftovers(out) == []
    rerun = cli("run", str(spec), "--out", str(out))
    assert rerun.returncode == Exit.OK, rerun.stderr
    assert "[ref] complete already" in rerun.stdout
    assert (
        len(json.loads((out / "align" / "result.json").read_text())["details"]["alignments"]) == 6
    )


def test_workers_die_with_a_killed_run(tmp_path: Path) -> None:
    """Even SIGKILL, which the run cannot handle, leaves no worker process behind."""
    spec = tmp_path / "wf.json"
    spec.write_text(json.dumps(workflow(6)))
    proc = start(spec, tmp_path / "out")
    wait_for(lambda: bool(children(proc.pid)))
    workers = children(proc.pid)
    proc.kill()
    proc.communicate(timeout=60)
    wait_for(lambda: not [pid for pid in workers if alive(pid)], timeout=30)


def test_two_runs_into_one_folder_do_not_collide(tmp_path: Path) -> None:
    spec = tmp_path / "wf.json"
    spec.write_text(json.dumps(workflow(4)))
    out = tmp_path / "out"
    first = start(spec, out)
    wait_for(lambda: (tmp_path / ".out.lock").exists() and any(out.glob(".*tmp-*")))
    second = cli("run", str(spec), "--out", str(out))
    assert second.returncode == Exit.BUSY
    assert "being written by another align3d run" in second.stderr
    elsewhere = cli("run", str(spec), "--out", str(tmp_path / "other"), "--quiet")
    assert elsewhere.returncode == Exit.OK, elsewhere.stderr  # another folder works meanwhile
    _, err = first.communicate(timeout=180)
    assert first.returncode == Exit.OK, err
    for folder in (out, tmp_path / "other"):
        manifest = json.loads((folder / "align" / "result.json").read_text())
        assert [r["index"] for r in manifest["details"]["alignments"]] == [1, 2, 3, 4]
    assert not (tmp_path / ".out.lock").exists()
