"""A misspelt parameter, slot or key in a job spec or workflow gets a "did you mean ...?" and the
list of valid names, from ``align3d validate`` as a user runs it (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from align3d.engine.exit_codes import Exit
from align3d.jobs.align_3d_maps.params import AlignParams
from tests.helpers import cli

VOLUME = {"map": "ref.mrc"}


def validate(tmp_path: Path, document: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues ``align3d validate --no-files --json`` reports (it must exit 2)."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document))
    proc = cli("validate", str(path), "--no-files", "--json")
    assert proc.returncode == Exit.INVALID_INPUT, proc.stderr
    return json.loads(proc.stdout)


def spec(params: dict[str, Any] | None = None, **inputs: Any) -> dict[str, Any]:
    return {
        "job": "align_3d_maps",
        "params": params or {},
        "inputs": {"reference_map": VOLUME, "maps_to_align": [VOLUME], **inputs},
    }


def only(issues: list[dict[str, Any]], code: str) -> dict[str, Any]:
    found = [i for i in issues if i["code"] == code]
    assert len(found) == 1, issues
    return found[0]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("max_shift", "max_shift_A"),
        ("lowpass_resolution", "lowpass_resolution_A"),
        ("update_particle_alignment", "update_particle_alignments"),
        ("Symmetry", "symmetry"),
    ],
)
def test_a_misspelt_parameter_gets_the_closest_name_and_every_valid_one(
    tmp_path: Path, typo: str, meant: str
) -> None:
    issue = only(validate(tmp_path, spec({typo: 1})), "unknown_param")
    assert issue["param"] == typo and issue["path"] == f"$.params.{typo}"
    assert f"did you mean {meant!r}?" in issue["message"]
    listed = issue["message"].split("(valid: ")[1].rstrip(")").split(", ")
    assert listed == sorted(AlignParams.model_fields)  # the declaration's names, all of them


def test_a_name_close_to_nothing_gets_the_list_without_a_guess(tmp_path: Path) -> None:
    issue = only(validate(tmp_path, spec({"zzz": 1})), "unknown_param")
    assert "did you mean" not in issue["message"] and "max_shift_A" in issue["message"]


def test_a_misspelt_slot_gets_the_closest_slot_and_when_it_appears(tmp_path: Path) -> None:
    issues = validate(
        tmp_path,
        spec(referance_mask={"path": "m.mrc"}, particle_1={"path": "p.star"}),
    )
    by_slot = {i["slot"]: i["message"] for i in issues if i["code"] == "unknown_slot"}
    assert "did you mean 'reference_mask'" in by_slot["referance_mask"]
    assert (
        "(valid: maps_to_align, maps_to_align_group, mask_N, particles_N"
        in (by_slot["referance_mask"])
    )
    # a per-volume slot: the concrete name for that volume, and the parameter it needs
    assert "did you mean 'particles_1'?" in by_slot["particle_1"]
    assert "update_particle_alignments" in by_slot["particle_1"]


@pytest.mark.parametrize(
    ("document", "path", "meant"),
    [
        ({**spec(), "param": {}}, "$.param", "params"),
        (
            spec(maps_to_align=[{"map": "a.mrc", "half_map_A": "h.mrc"}]),
            "$.inputs.maps_to_align[0].half_map_A",
            "map_half_A",
        ),
        (
            spec(maps_to_align_group={"volumes": [{"map": "a.mrc", "map_half_a": "h.mrc"}]}),
            "$.inputs.maps_to_align_group.volumes[0].map_half_a",
            "map_half_A",
        ),
        ({"jobs": {"J1": {"job": "align_3d_maps", "inptus": {}}}}, "$.jobs.J1.inptus", "inputs"),
        (
            spec(reference_mask={"path": "m.mrc", "voxel": 1.0}),
            "$.inputs.reference_mask.voxel",
            "voxel_size_A",
        ),
    ],
)
def test_a_misspelt_key_of_the_document_gets_the_closest_key_there(
    tmp_path: Path, document: dict[str, Any], path: str, meant: str
) -> None:
    issues = validate(tmp_path, document)
    issue = next(i for i in issues if i["path"] == path)
    assert issue["code"] == "invalid_document"
    assert f"did you mean {meant!r}?" in issue["message"] and "(valid: " in issue["message"]


def test_the_text_output_says_it_too(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec({"max_shif_A": 10})))
    proc = cli("validate", str(path), "--no-files")
    assert proc.returncode == Exit.INVALID_INPUT
    assert "unknown parameter 'max_shif_A'; did you mean 'max_shift_A'?" in proc.stderr


def _run(tmp_path: Path, document: dict[str, Any]) -> str:
    """What ``align3d validate`` (files checked) prints for ``document`` (it must exit 2)."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document))
    proc = cli("validate", str(path))
    assert proc.returncode == Exit.INVALID_INPUT, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_a_single_job_spec_is_reported_at_its_own_paths_each_name_once(tmp_path: Path) -> None:
    """Issue 26: not ``$.jobs.J1.params.max_shift_A`` (a path the file does not have), and the
    parameter's name once (it read ``J1.max_shift_A: max_shift_A: ...``)."""
    err = _run(tmp_path, spec({"max_shift_A": 2000, "max_shif_A": 3}))
    lines = err.splitlines()
    (out_of_range,) = [x for x in lines if "[param_out_of_range]" in x]
    assert out_of_range == (
        "error: $.params.max_shift_A: [param_out_of_range] Input should be less than or equal "
        "to 1000 (got 2000)"
    )
    (unknown,) = [x for x in lines if "[unknown_param]" in x]
    assert unknown.startswith("error: $.params.max_shif_A: [unknown_param] unknown parameter")
    assert "J1" not in err
    issues = validate(tmp_path, spec({"max_shift_A": 2000}))
    assert issues[0]["path"] == "$.params.max_shift_A" and issues[0]["job"] is None


def test_a_file_problem_is_reported_at_the_element_that_names_it(tmp_path: Path) -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    ref, mov = str(fixtures / "small_reference.mrc"), str(fixtures / "small_moving.mrc")
    err = _run(
        tmp_path,
        {
            "job": "align_3d_maps",
            "inputs": {
                "reference_map": {"map": ref},
                "maps_to_align": [{"map": mov}, {"map": mov, "map_sharp": "gone.mrc"}],
            },
        },
    )
    assert (
        f"error: $.inputs.maps_to_align[1].map_sharp: [unreadable_map] {tmp_path}/gone.mrc" in err
    )
    group = {"volumes": [{"map": mov}, {"map": "lost.mrc"}]}
    err = _run(
        tmp_path,
        {"jobs": {"align": {"job": "align_3d_maps", "inputs": {
            "reference_map": {"map": ref}, "maps_to_align_group": group}}}},
    )  # fmt: skip
    # in a workflow, the job's name is part of the path the file has
    assert "error: $.jobs.align.inputs.maps_to_align_group.volumes[1].map: [unreadable_map]" in err
