"""docs/conventions.md is the project's one statement of its geometry, pose and origin
conventions: no tracked file cites a design note outside it, every ``docs/conventions.md#...``
reference names a heading it has, and every test and file it names exists."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONVENTIONS = REPO / "docs" / "conventions.md"
# the old note's name, spelt so that this file does not match it
OLD_NOTE = re.compile(r"d[e]sign\.md", re.IGNORECASE)
ANCHOR_REFERENCE = re.compile(r"docs/conventions\.md#([A-Za-z0-9_-]+)")
TEST_REFERENCE = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")
FILE_REFERENCE = re.compile(
    r"`((?:engine|jobs|slots|schemas|tests|docs)/[\w/.-]+\.(?:py|md|json))`"
)


def tracked_texts() -> dict[str, str]:
    """Every tracked text file of the checkout, by path (binary files left out)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout, so no list of tracked files ({exc})")
    texts = {}
    for name in filter(None, listed.split("\0")):
        path = REPO / name
        if not path.is_file():
            continue
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def slugs(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation other than
    ``-`` and ``_`` dropped, spaces to ``-``; a repeated heading gets ``-1``, ``-2``, ...
    Lines inside fenced code blocks are not headings."""
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not match:
            continue
        base = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        slug, k = base, 0
        while slug in found:
            k += 1
            slug = f"{base}-{k}"
        found.add(slug)
    return found


def test_slugs_follow_githubs_rule() -> None:
    text = "# A: b, `c`\n```\n# not a heading\n```\n## Same\n## Same\n### The 4x4 matrix\n"
    assert slugs(text) == {"a-b-c", "same", "same-1", "the-4x4-matrix"}


def test_no_tracked_file_cites_the_old_design_note() -> None:
    cited = [
        f"{name}:{n}"
        for name, text in tracked_texts().items()
        for n, line in enumerate(text.splitlines(), 1)
        if OLD_NOTE.search(line)
    ]
    assert not cited, f"cite docs/conventions.md (a section anchor where useful) instead: {cited}"


def test_every_conventions_anchor_names_a_heading() -> None:
    headings = slugs(CONVENTIONS.read_text(encoding="utf-8"))
    texts = tracked_texts()
    assert "docs/conventions.md" in texts.get("README.md", ""), "README must point to it"
    broken = [
        f"{name}: #{anchor}"
        for name, text in texts.items()
        for anchor in ANCHOR_REFERENCE.findall(text)
        if anchor not in headings
    ]
    own = re.findall(r"\]\(#([A-Za-z0-9_-]+)\)", CONVENTIONS.read_text(encoding="utf-8"))
    broken += [f"docs/conventions.md: #{anchor}" for anchor in own if anchor not in headings]
    assert not broken, f"no such heading in docs/conventions.md ({sorted(headings)}): {broken}"


def test_every_test_named_in_the_conventions_exists() -> None:
    named = TEST_REFERENCE.findall(CONVENTIONS.read_text(encoding="utf-8"))
    assert len(named) >= 20, "the conventions name the tests that prove them"
    missing = []
    for file, function in sorted(set(named)):
        path = REPO / file
        if not path.is_file():
            missing.append(f"{file} (no such file)")
            continue
        defined = {
            node.name
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if function not in defined:
            missing.append(f"{file}::{function}")
    assert not missing, f"docs/conventions.md names tests that do not exist: {missing}"


def test_every_file_named_in_the_conventions_exists() -> None:
    named = set(FILE_REFERENCE.findall(CONVENTIONS.read_text(encoding="utf-8")))
    assert named, "the conventions name the modules that implement them"
    missing = sorted(name for name in named if not (REPO / name).is_file())
    assert not missing, f"docs/conventions.md names files that do not exist: {missing}"
