"""Copy the tables the benchmark scripts wrote into the README, between its markers
``<!-- benchmark: PATH -->`` and ``<!-- end of benchmark -->`` (PATH relative to the repository
root), so that every number in the README is one a script measured, with its date and machine.

    .venv/bin/python benchmarks/readme_tables.py          # after running the benchmarks
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"(<!-- benchmark: (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- end of benchmark -->)", re.S
)


def splice(readme: str) -> tuple[str, list[str]]:
    """The README with each block replaced by its file's text; the files that are missing."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        source = REPO / match.group("path")
        if not source.is_file():
            missing.append(match.group("path"))
            return match.group(0)
        return match.group(1) + "\n" + source.read_text().strip() + "\n\n" + match.group(4)

    return BLOCK.sub(replace, readme), missing


def main() -> int:
    path = REPO / "README.md"
    text, missing = splice(path.read_text())
    path.write_text(text)
    for name in missing:
        print(f"not run yet: {name} (the README keeps its old table)", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
