"""Commands that do no numerical work load none of the numerical stack: ``--help``,
``describe``, ``schema`` and ``validate --no-files`` stay quick (numba, matplotlib, scipy and
pandas take most of a second to import)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO

HEAVY = ("numba", "llvmlite", "matplotlib", "scipy", "pandas", "starfile", "mrcfile", "dask")
PROBE = """
import contextlib, io, json, sys
from align3d.engine.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        [],
        ["version"],
        ["--version"],
        ["describe"],
        ["describe", "align_3d_maps", "--json"],
        ["schema"],
        ["validate", "fixtures/align_spec.json", "--no-files"],
    ],
)
def test_commands_without_numerical_work_load_no_numerical_stack(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "align3d" in loaded  # the probe ran align3d
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
