"""How kernels run on a process's threads (align3d.engine.alignment.jit): every block once, the same
numbers for any thread count, nested calls that finish, errors that reach the caller only once
no block is still running."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from align3d.engine.alignment import jit
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.spline.affine import affine_cubic, affine_linear
from align3d.engine.alignment.spline.prefilter import spline_coefficients
from align3d.engine.alignment.translation import shift_candidates
from align3d.slots.rotations import seeded_random_rotations


@pytest.fixture
def thread_count() -> Iterator[None]:
    before = jit.threads()
    yield
    jit.set_threads(before)


def test_every_block_runs_once_on_several_threads(thread_count: None) -> None:
    jit.set_threads(2)
    seen: list[int] = []
    names: set[str] = set()
    lock = threading.Lock()

    def work(block: int, lo: int, hi: int) -> None:
        time.sleep(0.002)  # long enough for the other thread to take blocks
        with lock:
            seen.append(block)
            names.add(threading.current_thread().name)

    count = jit.run_ranges(work, 1000)
    assert sorted(seen) == list(range(count)) and count == jit.BLOCKS
    assert len(names) == 2  # the caller and the kernel thread both took blocks


def test_a_nested_call_from_a_kernel_thread_finishes(thread_count: None) -> None:
    jit.set_threads(2)
    inner: list[int] = []
    lock = threading.Lock()

    def outer(block: int, lo: int, hi: int) -> None:
        # as a search's candidates run kernels that split their own work
        n = jit.run_ranges(lambda b, lo2, hi2: None, 64)
        with lock:
            inner.append(n)

    done = threading.Event()

    def run() -> None:
        jit.run_ranges(outer, 8)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60), "a nested run_ranges waited on its own thread"
    assert inner == [jit.BLOCKS] * 8


@pytest.mark.parametrize("failing", [0, 20])
def test_an_error_reaches_the_caller_with_no_block_left_running(
    thread_count: None, failing: int
) -> None:
    jit.set_threads(2)
    finished: list[int] = []

    def work(block: int, lo: int, hi: int) -> None:
        time.sleep(0.001)
        if block == failing:
            raise ValueError(f"block {block} failed")
        finished.append(block)

    with pytest.raises(ValueError, match=f"block {failing} failed"):
        jit.run_ranges(work, 64)
    snapshot = len(finished)
    time.sleep(0.05)
    assert len(finished) == snapshot  # nothing was still running when the error came back


def test_kernels_and_candidates_give_the_same_numbers_on_one_thread_and_two(
    thread_count: None,
) -> None:
    rng = np.random.default_rng(5)
    volume = rng.standard_normal((40, 38, 41)).astype(np.float32)
    matrix = np.array([[0.9, -0.3, 0.1], [0.3, 0.95, 0.0], [0.0, 0.05, 1.0]])
    offset = np.array([1.5, -2.0, 0.7])
    hypotheses = [
        RigidTransform(r, np.zeros(3), bool(k % 2))
        for k, r in enumerate(seeded_random_rotations(12, 3))
    ]
    cube = volume[:36, :36, :36].copy()
    runs = []
    for count in (1, 2):
        jit.set_threads(count)
        cubic = affine_cubic(spline_coefficients(volume), matrix, offset, (37, 35, 33))
        linear = affine_linear(volume, matrix, offset, (37, 35, 33))
        found = shift_candidates(cube, np.roll(cube, 3, axis=0), 2.0, hypotheses, 12.0)
        runs.append((cubic, linear, [(c.transform.shift_A, c.score) for c in found]))
    (c1, l1, f1), (c2, l2, f2) = runs
    assert np.array_equal(c1, c2) and np.array_equal(l1, l2)
    assert len(f1) == len(f2) == len(hypotheses)
    for (s1, v1), (s2, v2) in zip(f1, f2, strict=True):
        assert np.array_equal(s1, s2) and v1 == v2
