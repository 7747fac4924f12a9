"""Parameters of Align 3D Maps: the alignment's own (declared once, in
:class:`align3d.engine.alignment.params.AlignmentParams`) plus the job's switches."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from align3d.engine.alignment.params import AlignmentParams

OutputGridChoice = Literal["reference", "own"]
"""Where the moved maps go (:mod:`align3d.jobs.align_3d_maps.grids`)."""


class AlignParams(AlignmentParams):
    """Parameters of Align 3D Maps (hard limits in the field constraints)."""

    update_particle_alignments: StrictBool = Field(
        False,
        title="Update particle alignments",
        description="Rewrite each volume's particles (RELION STAR or CryoSPARC .cs) with poses "
        "that follow their moved volume; adds a particles input per volume (particles_N, or "
        "particles_all for a volumes group).",
    )
    create_mask_inputs: StrictBool = Field(
        False,
        title="Create mask inputs",
        description="Add a mask input per volume (mask_N, or masks_all_classes for a volumes "
        "group); each mask moves with its volume.",
    )
    apply_mask_to_volumes: StrictBool = Field(
        True,
        title="Apply masks to volumes",
        description="Use the masks (the reference's and each volume's) to restrict the "
        "alignment; masks move with their volumes either way.",
    )
    log_diagnostics: StrictBool = Field(
        True,
        title="Log diagnostics",
        description="Write per-volume figures (FSC, difference and overlay slices) and the "
        "difference map, and draw them in report.html.",
    )
    detect_symmetry: StrictBool = Field(
        False,
        title="Detect symmetry",
        description="Find the reference's point group (C1-C12, D2-D12, T, O, I; as align3d "
        "symmetry) and report it, with its axes and a score per candidate, in result.json and "
        "job.log. The alignment itself uses 'symmetry'.",
    )

    output_grid: OutputGridChoice = Field(
        "reference",
        title="Output grid",
        description="Where the moved maps go: 'reference', the reference's box and voxel size "
        "(maps on a finer grid are low-passed to its Nyquist first, never aliased); or 'own', "
        "each map's own voxel size and a box that holds it, in the reference's frame (no "
        "detail lost; the header origin places it on the reference).",
    )

    def alignment(self) -> AlignmentParams:
        """The alignment's own parameters."""
        return AlignmentParams(**self.model_dump(include=set(AlignmentParams.model_fields)))
