"""Golden slot sets of align_3d_maps: every mode x update-particles x create-masks x connections.

Slots are pure functions of (params, connected inputs); these tables are the contract.
"""

from __future__ import annotations

import itertools

import pytest

from align3d.engine.jobdef import Connected
from align3d.jobs.align_3d_maps.job import JOB
from align3d.jobs.align_3d_maps.params import AlignParams

BASE_IN = ["reference_map", "reference_mask", "maps_to_align_group", "maps_to_align"]
BASE_OUT = ["reference_volume", "aligned_volumes"]


def connected(group: bool, volumes: tuple[int, ...], extra: dict[str, int] | None = None):
    counts = {"reference_map": 1}
    indices: dict[str, tuple[int, ...]] = {}
    if group:
        counts["maps_to_align_group"] = 1
    if volumes:
        counts["maps_to_align"] = len(volumes)
        indices["maps_to_align"] = volumes
    counts.update(extra or {})
    return Connected(counts, indices, {"maps_to_align_group": 3} if group else {})


@pytest.mark.parametrize(("update", "masks"), list(itertools.product([False, True], repeat=2)))
def test_group_mode(update: bool, masks: bool) -> None:
    params = AlignParams(update_particle_alignments=update, create_mask_inputs=masks)
    conn = connected(True, ())
    inputs = [s.name for s in JOB.input_slots(params, conn)]
    outputs = [s.name for s in JOB.output_slots(params, conn)]
    assert inputs == BASE_IN + (["particles_all"] if update else []) + (
        ["masks_all_classes"] if masks else []
    )
    assert outputs == BASE_OUT + (["all_particles"] if update else [])


@pytest.mark.parametrize(("update", "masks"), list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("volumes", [(1,), (1, 2), (1, 3)], ids=["one", "two", "gap"])
@pytest.mark.parametrize("per_volume_connected", [False, True])
def test_individual_mode(
    update: bool, masks: bool, volumes: tuple[int, ...], per_volume_connected: bool
) -> None:
    params = AlignParams(update_particle_alignments=update, create_mask_inputs=masks)
    extra = {}
    if per_volume_connected:
        for n in volumes:
            if update:
                extra[f"particles_{n}"] = 1
            if masks:
                extra[f"mask_{n}"] = 1
    conn = connected(False, volumes, extra)
    inputs = [s.name for s in JOB.input_slots(params, conn)]
    outputs = [s.name for s in JOB.output_slots(params, conn)]
    expected_in = list(BASE_IN)
    expected_out = list(BASE_OUT)
    for n in volumes:
        expected_in += ([f"particles_{n}"] if update else []) + ([f"mask_{n}"] if masks else [])
        expected_out.append(f"aligned_volume_{n}")
        if masks and per_volume_connected:
            expected_out.append(f"mask_aligned_{n}")
        if update and per_volume_connected:
            expected_out.append(f"particles_for_map_{n}")
    assert inputs == expected_in
    assert outputs == expected_out


def test_per_volume_slots_carry_their_stable_index() -> None:
    params = AlignParams(update_particle_alignments=True, create_mask_inputs=True)
    slots = JOB.input_slots(params, connected(False, (2, 5)))
    assert {s.name: s.volume_index for s in slots if s.volume_index} == {
        "particles_2": 2,
        "mask_2": 2,
        "particles_5": 5,
        "mask_5": 5,
    }


def test_job_parameters_extend_the_alignment_parameters_declared_once() -> None:
    # one declaration: every alignment parameter of the job is the core's own field, with the
    # same default, limits and help text (they had drifted apart when declared twice)
    from align3d.engine.alignment.params import AlignmentParams

    for name, core in AlignmentParams.model_fields.items():
        job = AlignParams.model_fields[name]
        assert (job.default, job.metadata, job.description) == (
            core.default,
            core.metadata,
            core.description,
        )
    assert AlignParams(max_shift_A=12.5).alignment() == AlignmentParams(max_shift_A=12.5)


def test_slots_depend_on_nothing_but_params_and_connections() -> None:
    """Equal parameters and connections, built anew and in another order, after calls with
    other parameters, give the same slots: no state is kept between calls."""
    first = JOB.input_slots(AlignParams(create_mask_inputs=True), connected(False, (1, 2)))
    JOB.input_slots(AlignParams(update_particle_alignments=True), connected(False, (1, 2, 3)))
    JOB.output_slots(AlignParams(), connected(True, ()))
    again = JOB.input_slots(AlignParams(create_mask_inputs=True), connected(False, (2, 1)))
    assert sorted(first, key=lambda s: s.name) == sorted(again, key=lambda s: s.name)
    assert {s.name for s in again} == {
        "reference_map",
        "reference_mask",
        "maps_to_align_group",
        "maps_to_align",
        "mask_1",
        "mask_2",
    }


def test_params_have_descriptions_defaults_and_limits() -> None:
    fields = AlignParams.model_fields
    assert set(fields) == {
        "update_particle_alignments",
        "create_mask_inputs",
        "apply_mask_to_volumes",
        "log_diagnostics",
        "detect_symmetry",
        "check_both_chiralities",
        "max_shift_A",
        "max_search_angle_deg",
        "lowpass_resolution_A",
        "rotation_candidates",
        "symmetry",
        "output_grid",
    }
    assert all(f.description and f.title for f in fields.values())
    p = AlignParams()
    assert (p.update_particle_alignments, p.create_mask_inputs, p.apply_mask_to_volumes) == (
        False,
        False,
        True,
    )
    assert (p.log_diagnostics, p.check_both_chiralities) == (True, True)
    assert p.detect_symmetry is False
    assert (p.max_shift_A, p.max_search_angle_deg, p.lowpass_resolution_A) == (40, 180, 10)
    with pytest.raises(ValueError):
        AlignParams(max_search_angle_deg=181)
    with pytest.raises(ValueError):
        AlignParams(update_particle_alignments="true")  # no stringly typed booleans
    with pytest.raises(ValueError):
        AlignParams(max_shift_A=-1)
