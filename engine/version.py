"""The installed align3d version (recorded in every result manifest and output header), and
the versions ``align3d version`` prints."""

from __future__ import annotations

import platform
import re
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, requires, version


@cache
def align3d_version() -> str:
    try:
        return version("align3d")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0]


def _extra(requirement: str) -> str | None:
    found = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
    return found.group(1) if found else None


def versions_text() -> str:
    """What ``align3d version`` prints: align3d's version, the Python running it, and the
    version of each library align3d needs (its requirements, read from the installed
    distribution, so the list never goes stale) and of the optional ones (``pipeliner``,
    ``dask``, ``models`` extras), installed or not. Nothing is imported."""
    lines = [
        f"align3d {align3d_version()}",
        f"Python {platform.python_version()} ({sys.executable})",
    ]
    try:
        requirements = requires("align3d") or []
    except PackageNotFoundError:
        requirements = []
    for requirement in requirements:
        extra = _extra(requirement)
        if extra == "test":
            continue
        name = _name(requirement)
        try:
            found = version(name)
        except PackageNotFoundError:
            found = "not installed"
        lines.append(f"{name} {found}" + (f" (optional: {extra})" if extra else ""))
    return "\n".join(lines)
