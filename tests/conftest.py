"""Shared fixtures: the real-data folder and seeded generators.

Real maps live outside the repository, in ``../shared/data`` (or ``$ALIGN3D_DATA``). Tests that
need them skip with the reason printed when the folder is absent; under CI (``CI`` set) a
missing folder is an error instead, so that CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from align3d.slots.mrc import MapData, read_map

REPO = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the kernels first, as a command does: kernels cached from other sources (an
    edited inline helper) are rebuilt before any test imports them."""
    from align3d.engine.alignment.warmup import ensure_compiled

    ensure_compiled(lambda line: print(f"align3d: {line}", file=sys.stderr))


def data_dir() -> Path:
    return Path(os.environ.get("ALIGN3D_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = data_dir()
    if not (folder / "maps").is_dir():
        reason = f"real data not found at {folder} (set ALIGN3D_DATA to its folder)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the real-data tests")
        pytest.skip(reason)
    return folder


# voxel sizes for files whose header is wrong (documented in ../shared/data/README.md)
VOXEL_OVERRIDES = {"ribosome70S_65px.mrc": 5.0}


@pytest.fixture(scope="session")
def real_map(shared_data: Path) -> Callable[[str], MapData]:
    """Loader of a real map by file name (voxel size fixed where the header lacks it)."""

    def load(name: str) -> MapData:
        return read_map(shared_data / "maps" / name, VOXEL_OVERRIDES.get(name))

    return load


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261129)
