"""The console commands' quick exit: the exit code, the output and every clean-up of a normal
exit survive skipping the interpreter's teardown; a reader that goes away is not a bug."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from align3d.engine.exit_codes import Exit
from tests.helpers import REPO


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )


def test_exit_process_keeps_the_code_the_output_and_the_clean_up(tmp_path: Path) -> None:
    proc = _python(
        f"""
        import atexit, logging, pathlib, sys, threading, time, tempfile
        from concurrent.futures import ThreadPoolExecutor
        from align3d.engine.process_end import exit_process

        folder = pathlib.Path({str(tmp_path)!r})
        def late_write():  # a non-daemon thread still working when the command returns
            time.sleep(0.3)
            (folder / "thread.txt").write_text("joined")
        threading.Thread(target=late_write).start()
        pool = ThreadPoolExecutor(1)
        pool.submit(lambda: (time.sleep(0.2), (folder / "pool.txt").write_text("done")))
        atexit.register(lambda: (folder / "atexit.txt").write_text("ran"))
        scratch = tempfile.TemporaryDirectory(dir=folder)  # removed by its finaliser at exit
        handler = logging.FileHandler(folder / "log.txt", delay=False)
        logging.getLogger("t").addHandler(handler)
        logging.getLogger("t").warning("logged")
        unclosed = open(folder / "unclosed.txt", "w")  # never closed: collected at exit
        unclosed.write("flushed")
        del unclosed
        sys.stdout.write("buffered, no newline")
        exit_process(3)
        """
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "buffered, no newline"
    assert (tmp_path / "thread.txt").read_text() == "joined"
    assert (tmp_path / "pool.txt").read_text() == "done"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "log.txt").read_text() == "logged\n"
    assert (tmp_path / "unclosed.txt").read_text() == "flushed"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == []  # scratch removed


def test_garbage_is_collected_at_exit_while_a_file_is_open_for_writing(tmp_path: Path) -> None:
    """An object in a reference cycle (freed by the collector only) is finalised at exit while
    a file is open for writing: here its finaliser writes to that file's descriptor."""
    proc = _python(
        f"""
        import os
        from align3d.engine.process_end import exit_process

        class Holder:
            def __del__(self):
                os.write(self.fd, b"finalised")
        holder = Holder()
        holder.me = holder
        holder.fd = os.open({str(tmp_path / "cycle.txt")!r}, os.O_WRONLY | os.O_CREAT)
        del holder
        exit_process(0)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cycle.txt").read_text() == "finalised"


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="needs Linux's /proc")
def test_files_open_for_writing_sees_a_writer_and_nothing_else(tmp_path: Path) -> None:
    proc = _python(  # a child: only the standard streams are open (subprocess closes the rest)
        f"""
        from align3d.engine.process_end import files_open_for_writing

        print(files_open_for_writing())
        reader = open({str(REPO / "README.md")!r})
        print(files_open_for_writing())
        writer = open({str(tmp_path / "w.txt")!r}, "w")
        print(files_open_for_writing())
        writer.close()
        print(files_open_for_writing())
        """
    )
    assert proc.stdout.split() == ["False", "False", "True", "False"], proc.stderr


def test_a_clean_up_that_never_ends_does_not_hang_the_process() -> None:
    """A workflow manager waits for the process to end: a thread that the clean-up would wait
    for forever is reported, with where it waits, and the process ends with its code."""
    proc = _python(
        """
        import threading
        from align3d.engine.process_end import exit_process

        def waits_forever():
            threading.Event().wait()
        threading.Thread(target=waits_forever, name="stuck").start()
        print("work done", flush=True)
        exit_process(130, cleanup_limit_s=1.0)
        """
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == "work done\n"
    assert "the clean-up at exit did not finish in 1 s" in proc.stderr
    assert "waits_forever" in proc.stderr  # the stuck thread's stack is shown


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    # ``align3d describe --json | head -1``: the pipe closes after the first line. The pipe holds one
    # page (Linux's smallest), less than the output, so the command is still writing when its
    # reader goes away (a 64 KiB pipe would take all of it and the race would be lost)
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("needs Linux's F_SETPIPE_SZ to make the pipe smaller than the output")
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen(
        [sys.executable, "-m", "align3d.engine.cli", "describe", "--json"],  # 13 KB
        stdout=write_end,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb", buffering=0) as reader:
        first = reader.readline()  # unbuffered: the rest stays in the pipe
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == Exit.INTERRUPTED, stderr
    assert first == b"[\n"
    assert "Traceback" not in stderr and "internal error" not in stderr
