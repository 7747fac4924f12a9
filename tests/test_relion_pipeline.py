"""A RELION project's ``default_pipeline.star`` read by column name: one written by RELION 3.1.3's
own ``relion_pipeliner`` (two External jobs, the second reading the first's map), RELION 5's
format (the golden pipeline), the same with its columns in another order, and files that cannot
be read, which stop the External job with a clear error instead of a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from align3d.engine.hosts.relion_pipeline import (
    FAILURE,
    PipelineFileError,
    read_project_pipeline,
    relion_major_version,
)
from align3d.jobs.align_3d_maps.hosts.relion_external import main as external_main
from tests.relion_tools import require_relion

GOLDEN = Path(__file__).parent / "golden" / "relion5_default_pipeline.star"
EMPTY_PIPELINE = "\n# version 30001\n\ndata_pipeline_general\n\n_rlnPipeLineJobCounter 1\n\n"
# an External job's program that only declares one output map and succeeds
FAKE_JOB = """#!/bin/sh
out=$2
touch "${out}out.mrc"
printf 'data_output_nodes\\nloop_\\n_rlnPipeLineNodeName #1\\n_rlnPipeLineNodeType #2\\n%sout.mrc 6\\n' \
    "$out" > "${out}RELION_OUTPUT_NODES.star"
touch "${out}RELION_JOB_EXIT_SUCCESS"
"""


def _pipeliner(project: Path, *args: str) -> None:
    done = subprocess.run(
        ["relion_pipeliner", *args], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_relion31_pipeline_gives_each_nodes_job_and_what_is_upstream(tmp_path: Path) -> None:
    require_relion("relion_pipeliner")
    project = tmp_path / "project"
    project.mkdir()
    (project / "default_pipeline.star").write_text(EMPTY_PIPELINE)
    (project / "ref.mrc").touch()
    fake = project / "fake_job.sh"
    fake.write_text(FAKE_JOB)
    fake.chmod(0o755)
    for job, reference in (("job001", "ref.mrc"), ("job002", "External/job001/out.mrc")):
        _pipeliner(
            project,
            "--addJob",
            "External",
            "--addJobOptions",
            f"fn_exe == {fake};in_3dref == {reference}",
        )
        _pipeliner(project, "--RunJobs", f"External/{job}/", "--sec_wait_after", "1")
    pipeline = read_project_pipeline(project)
    assert pipeline.reads == {
        "External/job001/": frozenset({"ref.mrc"}),
        "External/job002/": frozenset({"External/job001/out.mrc"}),
    }
    assert pipeline.source("External/job001/out.mrc") == "External/job001/"
    assert pipeline.source("External/job002/out.mrc") == "External/job002/"
    assert pipeline.source("ref.mrc") is None
    assert pipeline.upstream("External/job002/") == {"External/job001/"}
    assert relion_major_version(project) == 3


def _relion5_project(root: Path, text: str) -> Path:
    root.mkdir()
    (root / "default_pipeline.star").write_text(text)
    return root


def _check_golden(pipeline_project: Path) -> None:
    pipeline = read_project_pipeline(pipeline_project)
    assert pipeline.reads == {
        "External/job001/": frozenset({"particles.star", "ref.mrc", "mask.mrc"})
    }
    for name in ("out_map.mrc", "out_half1.mrc", "out_particles.star"):
        assert pipeline.source(f"External/job001/{name}") == "External/job001/"
    assert pipeline.upstream("External/job001/") == frozenset()
    assert relion_major_version(pipeline_project) == 5


def test_a_relion5_pipeline_is_read(tmp_path: Path) -> None:
    _check_golden(_relion5_project(tmp_path / "project", GOLDEN.read_text()))


def test_columns_are_found_by_name_not_by_position(tmp_path: Path) -> None:
    """The output edges with their two columns swapped (header and rows) read the same."""
    text = GOLDEN.read_text()
    head, edges = text.split("data_pipeline_output_edges")
    swapped = []
    for line in edges.splitlines():
        fields = line.split()
        if line.startswith("_rlnPipeLineEdgeProcess"):
            line = "_rlnPipeLineEdgeToNode #1 "
        elif line.startswith("_rlnPipeLineEdgeToNode"):
            line = "_rlnPipeLineEdgeProcess #2 "
        elif len(fields) == 2 and not line.startswith("#"):
            line = f"{fields[1]} {fields[0]} "
        swapped.append(line)
    changed = head + "data_pipeline_output_edges" + "\n".join(swapped) + "\n"
    assert changed != text
    _check_golden(_relion5_project(tmp_path / "project", changed))


def test_a_pipeline_without_an_edge_column_is_refused_by_name(tmp_path: Path) -> None:
    text = GOLDEN.read_text().replace("_rlnPipeLineEdgeFromNode", "_rlnPipeLineEdgeFrom")
    project = _relion5_project(tmp_path / "project", text)
    with pytest.raises(PipelineFileError, match="no column _rlnPipeLineEdgeFromNode"):
        read_project_pipeline(project)


def test_an_unreadable_pipeline_fails_the_external_job_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = "data_pipeline_input_edges\nloop_\n_rlnPipeLineEdgeFromNode #1\n_rlnPipeLineEdgeProcess #2\nref.mrc\n"
    project = _relion5_project(tmp_path / "project", broken)
    monkeypatch.chdir(project)
    code = external_main(["--o", "External/job002/", "--in_3dref", "ref.mrc", "--maps", "m.mrc"])
    assert code == 2
    err = capsys.readouterr().err
    assert "default_pipeline.star" in err and "cannot be read" in err
    assert "Traceback" not in err
    assert (project / "External/job002" / FAILURE).is_file()
