"""Parameters of Align 3D Maps: the alignment's own (declared once, in
:class:`engine.alignment.params.AlignmentParams`) plus the job's switches."""

from __future__ import annotations

from pydantic import Field, StrictBool

from engine.alignment.params import AlignmentParams


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

    def alignment(self) -> AlignmentParams:
        """The alignment's own parameters."""
        return AlignmentParams(**self.model_dump(include=set(AlignmentParams.model_fields)))
