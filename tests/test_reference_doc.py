"""The README's job reference is generated from the declarations and kept fresh; every error
code the code can raise is declared (with its meaning) and every declared code is raised."""

from __future__ import annotations

import re
from pathlib import Path

from align3d.engine.issues import ERROR_CODES
from align3d.engine.jobdef import discover_jobs
from align3d.engine.reference_doc import reference, stale

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "jobs", "slots", "schemas")
CODE_LITERAL = re.compile(r'code(?:=|, message = )"([a-z_]+)"|problem\(\s*"([a-z_]+)"')


def test_the_readme_job_reference_is_current() -> None:
    readme = (REPO / "README.md").read_text()
    assert not stale(readme), (
        "README.md's job reference is stale: regenerate it with "
        "`.venv/bin/python -c 'import pathlib, align3d.engine.reference_doc as r; "
        'p = pathlib.Path("README.md"); p.write_text(r.refresh(p.read_text()))\'`'
    )


def test_the_reference_names_every_parameter_slot_and_code() -> None:
    text = reference()
    for name in (
        "maps_to_align_group",
        "particles_all",
        "masks_all_classes",
        "reference_mask",
        "apply_mask_to_volumes",
        "check_both_chiralities",
        "particles_N",
        "mask_N",
        "aligned_volume_N",
        "mask_aligned_N",
        "particles_for_map_N",
        "map_half_A",
    ):
        assert f"`{name}`" in text, name
    for code in declared_codes():
        assert f"`{code}`" in text


def declared_codes() -> set[str]:
    codes = set(ERROR_CODES)
    for job in discover_jobs().values():
        codes |= set(job.error_codes)
    return codes


def test_every_raised_code_is_declared_and_every_declared_code_is_raised() -> None:
    used: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for match in CODE_LITERAL.finditer(path.read_text()):
                used.add(match.group(1) or match.group(2))
    assert used - declared_codes() == set(), "codes raised but declared nowhere"
    assert declared_codes() - used == set(), "codes declared but never raised"
