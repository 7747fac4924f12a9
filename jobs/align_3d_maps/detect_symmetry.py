"""The align job's ``detect_symmetry``: the reference's point group, found as ``align3d
symmetry`` finds it, for ``result.json`` (``details.detected_symmetry``) and ``job.log``."""

from __future__ import annotations

from collections.abc import Callable

from align3d.engine.alignment.point_group_search import find_point_group
from align3d.jobs.align_3d_maps.symmetry_command import detected_symmetry, summary_lines
from align3d.jobs.align_3d_maps.task import absolute
from align3d.schemas.documents import DetectedSymmetry
from align3d.slots.mrc import read_map
from align3d.slots.payloads import VolumePayload


def reference_symmetry(reference: VolumePayload, log: Callable[[str], None]) -> DetectedSymmetry:
    """The point group of the reference's map (its voxel size as the job reads it), logged."""
    data = read_map(absolute(reference).map, reference.voxel_size_A)
    found = detected_symmetry(find_point_group(data.data, data.voxel_size_A))
    log(f"reference's point group (detect_symmetry): {found.point_group}")
    for line in summary_lines(found)[1:]:
        log(f"  {line}")
    return found
