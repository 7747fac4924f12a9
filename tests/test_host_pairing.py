"""Pairing a host's files with their maps by the job that made them, never by position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align3d.jobs.align_3d_maps.hosts.outputs import planned_outputs
from align3d.jobs.align_3d_maps.hosts.pairing import (
    HostFile,
    HostInputs,
    PairingError,
    job_spec,
    plan_volumes,
)
from align3d.jobs.align_3d_maps.hosts.run_folder import SPEC_NAME, write_spec
from align3d.schemas.documents import GroupRef, PathRef, VolumeRef
from align3d.slots.payloads import MapRole


def made_by(path: str, job: str, *upstream: str, known: bool = True) -> HostFile:
    return HostFile(Path("/p") / path, job, frozenset(upstream), path, known_source=known)


REF = made_by("ref.mrc", "Import/job001/")


def refinement(n: int) -> dict[str, HostFile]:
    """A Refine3D job's map, half maps and particles; a PostProcess of it (sharpened map) and a
    MaskCreate from its map."""
    job = f"Refine3D/job0{n}0/"
    return {
        "map": made_by(f"{job}run_class001.mrc", job, "Class3D/job005/"),
        "half1": made_by(f"{job}run_half1_class001_unfil.mrc", job, "Class3D/job005/"),
        "half2": made_by(f"{job}run_half2_class001_unfil.mrc", job, "Class3D/job005/"),
        "particles": made_by(f"{job}run_data.star", job, "Class3D/job005/"),
        "sharp": made_by(f"PostProcess/job0{n}1/postprocess.mrc", f"PostProcess/job0{n}1/", job),
        "mask": made_by(f"MaskCreate/job0{n}2/mask.mrc", f"MaskCreate/job0{n}2/", job),
    }


def test_files_follow_their_refinement_whatever_the_order() -> None:
    one, two = refinement(1), refinement(2)
    inputs = HostInputs(
        reference=REF,
        maps=[one["map"], two["map"]],
        halves=[two["half2"], one["half1"], two["half1"], one["half2"]],
        sharpened=[two["sharp"], one["sharp"]],
        masks=[two["mask"], one["mask"]],
        particles=[two["particles"], one["particles"]],
    )
    plan = plan_volumes(inputs)
    assert not plan.group
    for volume, files in zip(plan.volumes, (one, two), strict=True):
        assert volume.map == files["map"]
        assert volume.halves == [files["half1"], files["half2"]]
        assert volume.sharpened == [files["sharp"]] and volume.masks == [files["mask"]]
        assert volume.particles == [files["particles"]]
    switches = {"update_particle_alignments": True, "create_mask_inputs": True}
    spec = job_spec(inputs, plan, switches, particles=True, masks=True)
    assert spec.job == "align_3d_maps" and spec.params == switches
    first = spec.inputs["maps_to_align"][0]
    assert isinstance(first, VolumeRef) and first.index == 1
    assert first.map_half_A is not None and first.map_sharp is not None
    assert first.map_half_A.endswith("job010/run_half1_class001_unfil.mrc")
    assert first.map_half_B.endswith("job010/run_half2_class001_unfil.mrc")
    assert first.map_sharp.endswith("job011/postprocess.mrc")
    assert spec.inputs["mask_2"] == PathRef(path=str(two["mask"].path))
    assert spec.inputs["particles_1"] == PathRef(path=str(one["particles"].path))
    # without the switches, the paired masks and particles are left unconnected
    bare = job_spec(inputs, plan, {}, particles=False, masks=False)
    assert set(bare.inputs) == {"reference_map", "maps_to_align"}


def test_particles_upstream_of_two_refinements_are_refused() -> None:
    one, two = refinement(1), refinement(2)
    shared = made_by("Class3D/job005/run_it025_data.star", "Class3D/job005/")
    with pytest.raises(PairingError, match="fits several maps"):
        plan_volumes(HostInputs(REF, [one["map"], two["map"]], particles=[shared]))


def test_a_file_from_an_unrelated_job_is_refused() -> None:
    one, two = refinement(1), refinement(2)
    stray = made_by("Refine3D/job090/run_half1_class001_unfil.mrc", "Refine3D/job090/")
    with pytest.raises(PairingError, match="made none of the maps"):
        plan_volumes(HostInputs(REF, [one["map"], two["map"]], halves=[stray]))


def test_the_classes_of_one_job_with_their_particles_are_a_group() -> None:
    job = "Class3D/job005/"
    classes = [made_by(f"{job}run_it025_class{k:03d}.mrc", job) for k in (2, 1, 3)]
    particles = made_by(f"{job}run_it025_data.star", job)
    plan = plan_volumes(HostInputs(REF, classes, particles=[particles]))
    assert plan.group and plan.particles_all == particles
    assert [v.index for v in plan.volumes] == [1, 2, 3]
    assert [v.map.class_number for v in plan.volumes] == [1, 2, 3]
    switches = {"update_particle_alignments": True}
    spec = job_spec(HostInputs(REF, classes), plan, switches, particles=True, masks=False)
    group = spec.inputs["maps_to_align_group"]
    assert isinstance(group, GroupRef)
    assert [Path(v.map).name[-12:] for v in group.volumes] == [
        "class001.mrc",
        "class002.mrc",
        "class003.mrc",
    ]
    assert spec.inputs["particles_all"] == PathRef(path=str(particles.path))


def test_a_subset_of_classes_sharing_particles_is_refused() -> None:
    job = "Class3D/job005/"
    classes = [made_by(f"{job}run_it025_class{k:03d}.mrc", job) for k in (1, 3)]
    particles = made_by(f"{job}run_it025_data.star", job)
    with pytest.raises(PairingError, match="connect every class from 1 to 3"):
        plan_volumes(HostInputs(REF, classes, particles=[particles]))


def test_classes_without_particles_keep_their_class_numbers() -> None:
    job = "Class3D/job005/"
    classes = [made_by(f"{job}run_it025_class{k:03d}.mrc", job) for k in (4, 2)]
    mask = made_by("MaskCreate/job003/mask.mrc", "MaskCreate/job003/")
    upstream_mask = HostFile(mask.path, mask.source, frozenset(), mask.name)
    classes = [
        HostFile(c.path, c.source, frozenset({"MaskCreate/job003/"}), c.name) for c in classes
    ]
    plan = plan_volumes(HostInputs(REF, classes, masks=[upstream_mask]))
    assert not plan.group and [v.index for v in plan.volumes] == [2, 4]
    assert all(v.masks == [upstream_mask] for v in plan.volumes)  # one mask for sibling classes


def test_imported_files_pair_by_a_shared_name_or_are_refused() -> None:
    maps = [made_by(f"Import/job002/v{k}_map.mrc", "Import/job002/", known=False) for k in (1, 2)]
    halves = [
        made_by(f"Import/job003/v{k}_half{h}.mrc", "Import/job003/", known=False)
        for k in (2, 1)
        for h in (1, 2)
    ]
    plan = plan_volumes(HostInputs(REF, maps, halves=halves))
    assert [h.name for h in plan.volumes[0].halves] == [
        "Import/job003/v1_half1.mrc",
        "Import/job003/v1_half2.mrc",
    ]
    nameless = [
        made_by(f"Import/job003/half{h}.mrc", "Import/job003/", known=False) for h in (1, 2)
    ]
    with pytest.raises(PairingError, match="never by position"):
        plan_volumes(HostInputs(REF, maps, halves=nameless))


def test_one_map_takes_every_file_but_counts_are_checked() -> None:
    one = refinement(1)
    stray = made_by("Elsewhere/x_half.mrc", "Elsewhere/")
    plan = plan_volumes(HostInputs(REF, [one["map"]], halves=[one["half1"], stray]))
    assert len(plan.volumes[0].halves) == 2
    with pytest.raises(PairingError, match="give both half maps or none"):
        plan_volumes(HostInputs(REF, [one["map"]], halves=[one["half1"]]))
    with pytest.raises(PairingError, match="at most one"):
        plan_volumes(HostInputs(REF, [one["map"]], masks=[one["mask"], one["mask"]]))


def test_a_rewritten_spec_counts_as_changed_only_when_its_content_changed(tmp_path: Path) -> None:
    one = refinement(1)
    inputs = HostInputs(REF, [one["map"]], halves=[one["half1"], one["half2"]])
    plan = plan_volumes(inputs)
    spec = job_spec(inputs, plan, {"symmetry": "C1"}, particles=False, masks=False)
    assert write_spec(tmp_path, spec)  # the first spec
    assert not write_spec(tmp_path, spec)
    # the same content with its keys in another order (as an earlier release wrote it)
    written = json.loads((tmp_path / SPEC_NAME).read_text())
    reordered = {key: written[key] for key in reversed(list(written))}
    (tmp_path / SPEC_NAME).write_text(json.dumps(reordered, indent=2) + "\n")
    assert not write_spec(tmp_path, spec)
    assert json.loads((tmp_path / SPEC_NAME).read_text()) == written
    other = job_spec(inputs, plan, {"symmetry": "C2"}, particles=False, masks=False)
    assert write_spec(tmp_path, other)
    (tmp_path / SPEC_NAME).write_text('{"job": ')  # cut short
    assert write_spec(tmp_path, other)


def test_a_groups_outputs_are_known_before_the_run() -> None:
    """Each class's moved map and the one mask moved with each, then the particles of all
    classes (the layout the run writes: names.py); the switches off, the maps alone."""
    job = "Class3D/job005/"
    classes = [made_by(f"{job}run_it025_class{k:03d}.mrc", job) for k in (2, 1)]
    particles = made_by(f"{job}run_it025_data.star", job)
    mask = made_by(f"{job}mask.mrc", job)
    plan = plan_volumes(HostInputs(REF, classes, masks=[mask], particles=[particles]))
    planned = planned_outputs(plan, particles=True, masks=True)
    assert [(str(f.path), f.role, f.volume) for f in planned] == [
        ("volume_001/map.mrc", MapRole.MAP, 1),
        ("volume_001/mask.mrc", MapRole.MASK, 1),
        ("volume_002/map.mrc", MapRole.MAP, 2),
        ("volume_002/mask.mrc", MapRole.MASK, 2),
        ("all_particles.star", MapRole.PARTICLES, None),
    ]
    bare = planned_outputs(plan, particles=False, masks=False)
    assert [str(f.path) for f in bare] == ["volume_001/map.mrc", "volume_002/map.mrc"]
