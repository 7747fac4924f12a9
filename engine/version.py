"""The installed align3d version (recorded in every result manifest and output header)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def align3d_version() -> str:
    try:
        return version("align3d")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"
