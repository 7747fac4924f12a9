"""The warnings the README's examples give, and the ones the README explains (issue 26, item
11): an example that warns of something the README does not explain fails its test.

Warnings are collected where a user meets them: the job log's ``WARNING:`` lines (on stdout,
and in a manager's ``run.out``/``run.err``), the library's ``align3d: ...`` lines on stderr,
Python's ``...Warning:`` lines, and every ``warnings`` list of every JSON file the examples
wrote (``result.json``, the ``align`` summary, the demo's summary).

:data:`EXPLAINED` is the allow-list: each entry names the warning (a pattern), the example that
gives it and the README passage that explains it (which must be in the README, whitespace
aside). Nothing else is allowed; in particular not the false alarms of issue 26 (a perfect
match "not clearly better than chance", two classes of one map "163.1° apart"), which are to
be fixed, not explained.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import REPO


@dataclass(frozen=True)
class Explained:
    """A warning the README explains: ``pattern`` (a regular expression searched in the
    warning's text), the example that gives it, and the README ``passage`` explaining it."""

    pattern: str
    example: str
    passage: str


EXPLAINED = (
    Explained(
        r"volume \d+'s hand is flipped: the moved model is mirrored as the map is",
        "apply --model with the fixture model (the fixture's hand is flipped)",
        "When the hand was flipped, the model comes out mirrored and apply says so",
    ),
    Explained(
        r"^will ignore \(but maintain\) values for the unknown label: rlnPipeLineNodeTypeLabel$",
        "the RELION section (RELION 3.1's relion_pipeliner reading RELION_OUTPUT_NODES.star)",
        "RELION 3.1 reads the file with a harmless `WARNING: will ignore (but maintain) values "
        "for the unknown label: rlnPipeLineNodeTypeLabel` (as in the example above): the label "
        "column is for RELION 4 and 5, and 3.1 keeps it.",
    ),
    Explained(
        r"^compiling kernels, once per install",
        "the first command of a fresh install (or after an update that changes a kernel)",
        "the first run compiles align3d's kernels once (a few seconds, with a notice",
    ),
)
"""Every warning a README example may give, with the README passage that explains it."""

_LOG_WARNING = re.compile(r"WARNING:\s*(.+)")
_LIBRARY = re.compile(r"^align3d: (.+)")
_PYTHON_WARNING = re.compile(r"\b\w*Warning: .+")


def _from_lines(text: str, library: bool) -> Iterator[str]:
    """Warnings in printed text; ``library``: the stream (stderr) where the library's
    ``align3d: ...`` lines go."""
    for line in text.splitlines():
        if found := _LOG_WARNING.search(line):
            yield found.group(1).strip()
        elif library and (found := _LIBRARY.match(line)):
            yield found.group(1).strip()
        elif found := _PYTHON_WARNING.search(line):
            yield found.group(0).strip()


def _from_json(value: Any) -> Iterator[str]:
    """Every string of every ``warnings`` list in a JSON document, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "warnings" and isinstance(item, list):
                yield from (str(w) for w in item)
            else:
                yield from _from_json(item)
    elif isinstance(value, list):
        for item in value:
            yield from _from_json(item)


def collected(runs: Iterable[subprocess.CompletedProcess[str]], root: Path) -> set[str]:
    """The warnings of the examples ``runs`` (run in ``root``): printed, and in the files
    they wrote under ``root``."""
    found: set[str] = set()
    for run in runs:
        found.update(_from_lines(run.stdout, library=False))
        found.update(_from_lines(run.stderr, library=True))
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or ".venv" in path.parts:
            continue
        if path.suffix == ".json":
            try:
                found.update(_from_json(json.loads(path.read_text())))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
        elif path.name in ("run.out", "run.err"):  # a manager's job: its output streams
            found.update(_from_lines(path.read_text(errors="replace"), path.name == "run.err"))
    return found


def unexplained(warnings: Iterable[str]) -> list[str]:
    """The warnings no entry of :data:`EXPLAINED` covers."""
    return sorted(w for w in warnings if not any(re.search(e.pattern, w) for e in EXPLAINED))


def assert_explained(runs: Iterable[subprocess.CompletedProcess[str]], root: Path) -> None:
    """Fail, listing them, on warnings of the examples that the README does not explain."""
    left = unexplained(collected(runs, root))
    assert not left, "README examples warn of what the README does not explain:\n" + "\n".join(
        f"  - {w}" for w in left
    )


def readme_text() -> str:
    """The README with its whitespace folded (a passage may break across lines)."""
    return " ".join((REPO / "README.md").read_text().split())
