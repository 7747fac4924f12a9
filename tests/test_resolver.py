"""The resolver reports every problem at once, as structured issues with JSON paths."""

from __future__ import annotations

from typing import Any

import pytest

from align3d.engine.executor import validate_document
from align3d.engine.graph import WorkflowGraph
from align3d.engine.issues import Issue
from align3d.engine.jobdef import discover_jobs

REGISTRY = discover_jobs()
VOL = {"map": "a.mrc"}


def issues_of(doc: Any) -> list[Issue]:
    res = validate_document(doc, REGISTRY)
    return res if isinstance(res, list) else res.issues


def codes(doc: Any) -> set[str]:
    return {i.code for i in issues_of(doc) if i.level == "error"}


def align(inputs: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"job": "align_3d_maps", "params": params, "inputs": inputs}


def test_a_valid_spec_has_no_issues() -> None:
    doc = align({"reference_map": VOL, "maps_to_align": [VOL, VOL]})
    assert issues_of(doc) == []


@pytest.mark.parametrize(
    ("doc", "code", "path"),
    [
        ({"job": "align_3d_mapz"}, "unknown_job", "$.jobs.J1.job"),
        (
            align({"reference_map": VOL, "maps_to_align": [VOL]}, max_shfit_A=3),
            "unknown_param",
            "$.jobs.J1.params.max_shfit_A",
        ),
        (
            align({"reference_map": VOL, "maps_to_align": [VOL]}, max_shift_A="far"),
            "invalid_param",
            "$.jobs.J1.params.max_shift_A",
        ),
        (
            align({"reference_map": VOL, "maps_to_align": [VOL]}, max_search_angle_deg=200),
            "param_out_of_range",
            "$.jobs.J1.params.max_search_angle_deg",
        ),
        (
            align(
                {"reference_map": VOL, "maps_to_align": [VOL], "reference_maks": {"path": "m.mrc"}}
            ),
            "unknown_slot",
            "$.jobs.J1.inputs.reference_maks",
        ),
        (
            align({"reference_map": {"path": "m.mrc"}, "maps_to_align": [VOL]}),
            "type_mismatch",
            "$.jobs.J1.inputs.reference_map",
        ),
        (
            align({"maps_to_align": [VOL]}),
            "missing_required_input",
            "$.jobs.J1.inputs.reference_map",
        ),
        (
            align(
                {
                    "reference_map": VOL,
                    "maps_to_align": [VOL],
                    "maps_to_align_group": {"volumes": [VOL]},
                }
            ),
            "group_and_individual",
            "$.jobs.J1.inputs.maps_to_align",
        ),
        (
            align(
                {"reference_map": VOL, "maps_to_align": [VOL], "particles_3": {"path": "p.star"}},
                update_particle_alignments=True,
            ),
            "per_volume_without_volume",
            "$.jobs.J1.inputs.particles_3",
        ),
        (
            align(
                {
                    "reference_map": VOL,
                    "maps_to_align_group": {"volumes": [VOL, VOL, VOL]},
                    "masks_all_classes": [{"path": "1.mrc"}, {"path": "2.mrc"}],
                },
                create_mask_inputs=True,
            ),
            "wrong_mask_count",
            "$.jobs.J1.inputs.masks_all_classes",
        ),
        (
            align({"reference_map": [VOL, VOL], "maps_to_align": [VOL]}),
            "multiple_connections",
            "$.jobs.J1.inputs.reference_map",
        ),
        (
            align(
                {
                    "reference_map": VOL,
                    "maps_to_align": [{"map": "a", "index": 2}, {"map": "b", "index": 2}],
                }
            ),
            "duplicate_index",
            "$.jobs.J1.inputs.maps_to_align[1].index",
        ),
        (
            {
                "jobs": {
                    "A": align(
                        {"reference_map": {"from": "B.reference_volume"}, "maps_to_align": [VOL]}
                    ),
                    "B": align(
                        {"reference_map": {"from": "A.reference_volume"}, "maps_to_align": [VOL]}
                    ),
                }
            },
            "cycle",
            None,
        ),
        (
            {"jobs": {"A": align({"reference_map": {"from": "X.volume"}, "maps_to_align": [VOL]})}},
            "unknown_source",
            "$.jobs.A.inputs.reference_map.from",
        ),
        (
            {
                "jobs": {
                    "I": {"job": "import_mask", "params": {"path": "m.mrc"}},
                    "A": align({"reference_map": {"from": "I.mask"}, "maps_to_align": [VOL]}),
                }
            },
            "type_mismatch",
            "$.jobs.A.inputs.reference_map.from",
        ),
        (
            {"job": "align_3d_maps", "inputs": {"reference_map": {"map": "a", "mapp": 1}}},
            "invalid_document",
            "$.inputs.reference_map.mapp",
        ),
    ],
)
def test_each_issue_code(doc: Any, code: str, path: str | None) -> None:
    found = [i for i in issues_of(doc) if i.code == code]
    assert found, f"expected {code}, got {[str(i) for i in issues_of(doc)]}"
    if path is not None:
        assert path in {i.path for i in found}
    assert all(i.message for i in found)


def test_all_problems_are_reported_at_once() -> None:
    doc = align(
        {"maps_to_align": [VOL], "particles_7": {"path": "p.star"}, "reference_mask": {"map": "x"}},
        update_particle_alignments=True,
        lowpass_resolution_A=-1,
    )
    # a bad parameter does not hide the slot problems: every problem, always, at once
    slot_problems = {"missing_required_input", "per_volume_without_volume", "type_mismatch"}
    assert codes(doc) >= {"param_out_of_range"} | slot_problems
    doc["params"]["lowpass_resolution_A"] = 8
    assert codes(doc) >= slot_problems and "param_out_of_range" not in codes(doc)


def test_parameter_errors_missing_reference_and_orphan_mask_all_reported() -> None:
    # the case of issue 11: bad parameters, no reference_map, and mask_3 without volume 3
    doc = align(
        {"maps_to_align": [VOL], "mask_3": {"path": "m3.mrc"}},
        create_mask_inputs=True,
        max_shift_A="far",
        max_search_angle_deg=400,
        lowpas_resolution_A=8,
    )
    found = issues_of(doc)
    by_code = {i.code: i for i in found}
    assert {"invalid_param", "param_out_of_range", "unknown_param"} <= by_code.keys()
    assert {"missing_required_input", "per_volume_without_volume"} <= by_code.keys()
    assert any(i.slot == "reference_map" for i in found if i.code == "missing_required_input")
    assert by_code["per_volume_without_volume"].slot == "mask_3"
    # a misspelt parameter gets the closest valid name and the list of valid ones
    assert "did you mean 'lowpass_resolution_A'" in by_code["unknown_param"].message
    assert "max_shift_A" in by_code["unknown_param"].message


def test_hidden_and_misspelt_slots_are_explained() -> None:
    hidden = [
        i
        for i in issues_of(
            align({"reference_map": VOL, "maps_to_align": [VOL], "particles_1": {"path": "p.star"}})
        )
        if i.code == "unknown_slot"
    ]
    assert "appears only" in hidden[0].message and "update_particle_alignments" in hidden[0].message
    typo = [
        i
        for i in issues_of(align({"reference_map": VOL, "maps_to_alignn": [VOL]}))
        if i.code == "unknown_slot"
    ]
    assert "did you mean 'maps_to_align'" in typo[0].message


def test_removing_a_volume_never_repairs_its_particles() -> None:
    g = WorkflowGraph(REGISTRY)
    g.add_job("ref", "import_volume", {"map": "r.mrc"})
    for n in (1, 2, 3):
        g.add_job(f"v{n}", "import_volume", {"map": f"v{n}.mrc"})
        g.add_job(f"p{n}", "import_particles", {"path": f"p{n}.star"})
    g.add_job("align", "align_3d_maps", {"update_particle_alignments": True})
    g.connect("ref", "volume", "align", "reference_map")
    for n in (1, 2, 3):
        g.connect(f"v{n}", "volume", "align", "maps_to_align")
        g.connect(f"p{n}", "particles", "align", f"particles_{n}")
    assert g.resolve().ok
    g.disconnect("align", "maps_to_align", index=2)
    assert "particles_3" in g.input_slots("align") and "particles_2" not in g.input_slots("align")
    assert "aligned_volume_3" in g.output_slots("align")
    problems = [i for i in g.resolve().issues if i.level == "error"]
    assert [(i.code, i.slot) for i in problems] == [("per_volume_without_volume", "particles_2")]


def test_connecting_a_group_drops_individual_volumes_and_says_so() -> None:
    g = WorkflowGraph(REGISTRY)
    g.add_job("ref", "import_volume", {"map": "r.mrc"})
    g.add_job("v1", "import_volume", {"map": "v1.mrc"})
    g.add_job("grp", "import_volumes_group", {"volumes": [{"map": "a.mrc"}, {"map": "b.mrc"}]})
    g.add_job("align", "align_3d_maps")
    g.connect("ref", "volume", "align", "reference_map")
    assert g.connect("v1", "volume", "align", "maps_to_align") == []
    notices = g.connect("grp", "volumes_group", "align", "maps_to_align_group")
    assert [n.code for n in notices] == ["group_replaces_individual"]
    assert "maps_to_align" not in g.document()["jobs"]["align"]["inputs"]
    assert g.resolve().ok
    assert "aligned_volume_1" not in g.output_slots("align")


def test_graph_has_slot_names_on_edges() -> None:
    doc = {
        "jobs": {
            "r": {"job": "import_volume", "params": {"map": "r.mrc"}},
            "a": align({"reference_map": {"from": "r.volume"}, "maps_to_align": [VOL]}),
        }
    }
    res = validate_document(doc, REGISTRY)
    assert not isinstance(res, list) and res.ok
    edges = list(res.graph.edges(data=True))
    assert edges == [
        ("r", "a", {"source_slot": "volume", "target_slot": "reference_map", "index": 1})
    ]
    assert res.order() == ["r", "a"]
