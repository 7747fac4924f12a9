"""The layout's rules, checked on the source (issue 15): imports go one way
(``slots`` <- ``schemas`` <- ``engine`` <- ``jobs``), no module imports itself back through
others (lazy imports inside functions included), no module is over 400 lines, and library
code logs instead of printing."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("slots", "schemas", "engine", "jobs")
MAX_LINES = 400
# command-line front ends, whose output is what the user asked for
PRINTS_ALLOWED = {
    "engine/cli.py",
    "engine/reference_doc.py",
    "jobs/align_3d_maps/commands.py",
    "jobs/align_3d_maps/apply_command.py",
    "jobs/align_3d_maps/symmetry_command.py",
    "jobs/align_3d_maps/demo.py",
    "jobs/align_3d_maps/hosts/relion_external.py",
    "jobs/align_3d_maps/hosts/cryosparc_job.py",
}


def modules() -> dict[str, Path]:
    found = {}
    for layer in LAYERS:
        for path in (REPO / layer).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(("align3d", *(parts[:-1] if parts[-1] == "__init__" else parts)))
            found[name] = path
    return found


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``path`` imports, anywhere in it (lazy imports too)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1]
                    + ([base] if base else [])
                )
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in known and t != name}


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    found = modules()
    known = set(found)
    g = nx.DiGraph()
    for name, path in found.items():
        g.add_node(name)
        for target in imported(path, name, known):
            # importing a submodule runs its package's __init__ too, which is not a dependency
            if not name.startswith(target + "."):
                g.add_edge(name, target)
    return g


def test_imports_go_one_way(graph: nx.DiGraph) -> None:
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    wrong = [
        f"{a} imports {b}" for a, b in graph.edges if rank[b.split(".")[1]] > rank[a.split(".")[1]]
    ]
    assert wrong == []


def test_every_import_names_the_one_package() -> None:
    """Product code, tests and benchmarks import align3d's modules as ``align3d.<layer>...``:
    a bare ``engine`` or ``jobs`` would load a second copy of a module from the checkout (or
    whatever module of that name the user's folder holds)."""
    sources = [
        p for layer in (*LAYERS, "tests", "benchmarks") for p in (REPO / layer).rglob("*.py")
    ]
    bare = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            bare += [
                f"{path.relative_to(REPO)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in LAYERS
            ]
    assert sources and bare == []


def test_no_import_circles_lazy_imports_included(graph: nx.DiGraph) -> None:
    cycles = [c for c in nx.simple_cycles(graph) if len(c) > 1]
    assert cycles == []


def test_no_module_over_400_lines() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


def test_library_code_logs_and_does_not_print() -> None:
    printing = []
    for path in modules().values():
        rel = str(path.relative_to(REPO))
        if rel in PRINTS_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                printing.append(f"{rel}:{node.lineno}")
    assert printing == []
