"""Print pip constraints that pin every core dependency of pyproject.toml to its declared lower
bound (``numpy>=1.26`` -> ``numpy==1.26``), so that CI proves the floors are true."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
for requirement in project["project"]["dependencies"]:
    match = re.fullmatch(
        r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)", requirement
    )
    if not match:
        sys.exit(f"dependency {requirement!r} has no plain lower bound (NAME>=VERSION)")
    print(f"{match.group(1)}=={match.group(3)}")
