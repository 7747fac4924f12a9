"""One map-role enum (issue 24): its values are the names documents and files already use, so
that typing the roles changed no file and no JSON."""

from __future__ import annotations

from align3d.jobs.align_3d_maps.names import map_file, volume_folder
from align3d.schemas.documents import VolumeFiles
from align3d.slots.payloads import VOLUME_FILES, VOLUME_MAPS, MapRole, VolumePayload


def test_the_roles_of_a_volume_are_the_fields_of_its_payload_and_of_the_job_spec() -> None:
    fields = [name for name in VolumePayload.model_fields if name not in ("kind", "voxel_size_A")]
    assert list(VOLUME_FILES) == fields
    assert [name for name in VolumeFiles.model_fields if name != "voxel_size_A"] == fields
    payload = VolumePayload(map="a.mrc", map_half_A="h1.mrc", map_half_B="h2.mrc", mask="m.mrc")
    assert list(payload.maps()) == [MapRole.MAP, MapRole.MAP_HALF_A, MapRole.MAP_HALF_B]
    assert set(payload.maps()) <= set(VOLUME_MAPS)  # the mask is not one of the maps


def test_roles_read_as_the_strings_files_and_json_use() -> None:
    assert map_file(MapRole.MAP_HALF_A) == "map_half_A.mrc"
    assert map_file(MapRole.DIFFERENCE_MAP) == "difference_map.mrc"
    assert volume_folder(7) == "volume_007" and volume_folder(123) == "volume_123"
    assert f"{MapRole.MAP_SHARP}" == "map_sharp" and MapRole("mask") is MapRole.MASK
    assert [role.label for role in VOLUME_FILES] == [
        "map",
        "sharpened map",
        "half map A",
        "half map B",
        "mask",
    ]
