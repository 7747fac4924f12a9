"""RELION's side of an External job: the project's ``default_pipeline.star`` (which job made a
file, and what is upstream of it), ``RELION_OUTPUT_NODES.star`` and the exit markers.

``RELION_OUTPUT_NODES.star`` carries both node-type columns: RELION 3.1 reads only the integer
``_rlnPipeLineNodeType`` (3 particles, 6 3D map, 7 mask, 10 half map, 11 final map) and RELION 4
and 5 read only ``_rlnPipeLineNodeTypeLabel`` (``DensityMap.mrc``, ...), each ignoring the
other. The labels follow the project's RELION version, read from its ``default_pipeline.star``
(RELION 5 writes ``# version 50001``; RELION 4 writes the label columns with ``30001``;
RELION 3.1 only integers); particles are ``ParticlesData.star.relion`` up to RELION 4 and
``ParticleGroupMetadata.star.relion`` from RELION 5 (RELION's ``src/pipeline_jobs.h``).
RELION reads the node list when it sees ``RELION_JOB_EXIT_SUCCESS``, so the list is written
first. Without one exit marker ``relion_pipeliner --RunJobs`` waits forever.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import starfile

from align3d.slots.atomic import atomic_write

SUCCESS = "RELION_JOB_EXIT_SUCCESS"
FAILURE = "RELION_JOB_EXIT_FAILURE"
ABORTED = "RELION_JOB_EXIT_ABORTED"
ABORT_NOW = "RELION_JOB_ABORT_NOW"
"""Created by RELION's GUI to ask a running job to stop."""
OUTPUT_NODES = "RELION_OUTPUT_NODES.star"


PROCESS_LABEL = "rlnPipeLineProcessTypeLabel"
"""The column of job types by name, which RELION 4 and 5 write (RELION 3.1 numbers them)."""


@dataclass(frozen=True)
class EdgeTable:
    """A table of a pipeline file's edges: its block, and its node and job columns."""

    block: str
    node: str
    job: str


INPUT_EDGES = EdgeTable("pipeline_input_edges", "rlnPipeLineEdgeFromNode", "rlnPipeLineEdgeProcess")
"""The nodes each job read (the same columns in RELION 3.1, 4 and 5)."""
OUTPUT_EDGES = EdgeTable("pipeline_output_edges", "rlnPipeLineEdgeToNode", "rlnPipeLineEdgeProcess")
"""The nodes each job wrote."""


class NodeType(Enum):
    """RELION node types: (3.1 integer, RELION 4 label, RELION 5 label)."""

    PARTICLES = (3, "ParticlesData.star.relion", "ParticleGroupMetadata.star.relion")
    MAP = (6, "DensityMap.mrc", "DensityMap.mrc")
    MASK = (7, "Mask3D.mrc", "Mask3D.mrc")
    HALF_MAP = (10, "DensityMap.mrc.halfmap", "DensityMap.mrc.halfmap")
    FINAL_MAP = (11, "DensityMap.mrc", "DensityMap.mrc")

    @property
    def integer(self) -> int:
        return self.value[0]

    def label(self, relion_major: int) -> str:
        return self.value[2] if relion_major >= 5 else self.value[1]


@dataclass(frozen=True)
class OutputNode:
    """A file the job wrote (``name`` relative to the project, as RELION wants it)."""

    name: str
    type: NodeType


def relion_major_version(project: Path) -> int:
    """The RELION version (3, 4 or 5) that wrote the project's ``default_pipeline.star``
    (5 when there is none: the newest labels)."""
    path = project / "default_pipeline.star"
    if not path.is_file():
        return 5
    if re.search(r"^#\s*version\s+5\d{4}", path.read_text(errors="replace"), re.MULTILINE):
        return 5
    processes = _pipeline_tables(path).get("pipeline_processes")
    labelled = isinstance(processes, pd.DataFrame) and PROCESS_LABEL in processes.columns
    return 4 if labelled else 3


def write_output_nodes(job_dir: Path, nodes: Iterable[OutputNode], relion_major: int) -> Path:
    """``RELION_OUTPUT_NODES.star`` in ``job_dir`` with both type columns (atomically)."""
    version = "50001" if relion_major >= 5 else "30001"
    lines = [
        "",
        f"# version {version}",
        "",
        "data_output_nodes",
        "",
        "loop_ ",
        "_rlnPipeLineNodeName #1 ",
        "_rlnPipeLineNodeType #2 ",
        "_rlnPipeLineNodeTypeLabel #3 ",
    ]
    for node in nodes:
        if re.search(r"\s", node.name):
            raise ValueError(f"{node.name!r}: RELION cannot read a node name with white space")
        lines.append(f"{node.name} {node.type.integer} {node.type.label(relion_major)} ")
    lines += [" ", ""]
    target = job_dir / OUTPUT_NODES
    atomic_write(target, lambda tmp: tmp.write_text("\n".join(lines)))
    return target


def write_exit_marker(job_dir: Path, marker: str) -> None:
    """Touch one of the exit markers (removing the other two)."""
    for other in (SUCCESS, FAILURE, ABORTED):
        if other != marker:
            (job_dir / other).unlink(missing_ok=True)
    (job_dir / marker).touch()


@dataclass(frozen=True)
class ProjectPipeline:
    """What a project's ``default_pipeline.star`` says: the job that wrote each node, and the
    nodes each job read."""

    producer: dict[str, str] = field(default_factory=dict)
    reads: dict[str, frozenset[str]] = field(default_factory=dict)

    def source(self, node: str) -> str | None:
        """The job (``Refine3D/job012/``) that wrote ``node``, if the pipeline knows it."""
        return self.producer.get(node)

    def upstream(self, job: str) -> frozenset[str]:
        """Every job upstream of ``job``."""
        seen: set[str] = set()
        todo = [job]
        while todo:
            for node in self.reads.get(todo.pop(), ()):
                parent = self.producer.get(node)
                if parent is not None and parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return frozenset(seen)


PIPELINE_HINT = "run the job in a RELION project whose pipeline RELION itself opens"


class PipelineFileError(ValueError):
    """A project's ``default_pipeline.star`` that cannot be read (the message says which)."""


def _pipeline_tables(path: Path) -> dict[str, Any]:
    """The blocks of a RELION pipeline file, read by ``starfile`` (loops as DataFrames)."""
    try:
        return dict(starfile.read(path, always_dict=True))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise PipelineFileError(
            f"{path}: RELION's pipeline file cannot be read ({exc}); {PIPELINE_HINT}"
        ) from exc


class Edge(NamedTuple):
    """A row of an edge table: a node, and the job that read or wrote it."""

    node: str
    job: str


def _edges(tables: dict[str, Any], path: Path, table: EdgeTable) -> list[Edge]:
    """The rows of an edge table, by column name (none when the table is absent)."""
    block, node_column, job_column = table.block, table.node, table.job
    frame = tables.get(block)
    if not isinstance(frame, pd.DataFrame):
        return []
    missing = [c for c in (node_column, job_column) if c not in frame.columns]
    if missing:
        raise PipelineFileError(
            f"{path}: the table data_{block} has no column _{missing[0]} (it has "
            f"{', '.join('_' + str(c) for c in frame.columns)}); {PIPELINE_HINT}"
        )
    nodes, jobs = frame[node_column].astype(str), frame[job_column].astype(str)
    return [Edge(node, job) for node, job in zip(nodes, jobs, strict=True)]


def read_project_pipeline(project: Path) -> ProjectPipeline:
    """The edges of ``project/default_pipeline.star`` (empty when there is none), read by column
    name (RELION 3.1 to 5 write the same edge columns); :class:`PipelineFileError` when the file
    cannot be read."""
    path = project / "default_pipeline.star"
    if not path.is_file():
        return ProjectPipeline()
    tables = _pipeline_tables(path)
    producer = {edge.node: edge.job for edge in _edges(tables, path, OUTPUT_EDGES)}
    reads: dict[str, set[str]] = {}
    for edge in _edges(tables, path, INPUT_EDGES):
        reads.setdefault(edge.job, set()).add(edge.node)
    return ProjectPipeline(producer, {k: frozenset(v) for k, v in reads.items()})
