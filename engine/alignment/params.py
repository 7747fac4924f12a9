"""The parameters of one alignment: the single declaration of their names, defaults, limits and
help texts (the job's parameters, the command line, the JSON Schema and the host adapters are
all generated from it). Units: Å and degrees. Importing this module loads no compiled kernel.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AlignmentParams(BaseModel):
    """Parameters of one alignment. Units: Å and degrees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_shift_A: float = Field(40.0, ge=0.0, description="Largest translation searched, in Å.")
    max_search_angle_deg: float = Field(
        180.0, ge=0.0, le=180.0, description="Largest rotation angle searched; 180 = all of SO(3)."
    )
    lowpass_resolution_A: float = Field(
        10.0,
        gt=0.0,
        description="Maps are low-pass filtered to this resolution (Å) before aligning.",
    )
    check_both_chiralities: bool = Field(
        True, description="Also try the mirrored hand of the moving map."
    )
    rotation_candidates: int = Field(
        12, ge=1, le=200, description="Rotation-function peaks examined per hand."
    )
