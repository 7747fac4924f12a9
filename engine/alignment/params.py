"""The parameters of one alignment: the single declaration of their names, defaults, limits and
help texts. The job's parameters extend this model; the command line, the JSON Schema, the
README's job reference and the host adapters are generated from it. Units: Å and degrees.
Importing this module loads no compiled kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool


@dataclass(frozen=True)
class CliFlag:
    """How a parameter is spelled on the ``align3d align`` command line (a short, established
    flag where the parameter's own name would be long); ``negate``: a boolean whose default is
    on, switched off by the flag."""

    flag: str
    negate: bool = False


class AlignmentParams(BaseModel):
    """Parameters of one alignment. Units: Å and degrees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_shift_A: Annotated[float, CliFlag("--max-shift")] = Field(
        40.0,
        ge=0.0,
        le=1000.0,
        title="Maximum shift (Å)",
        description="Largest translation searched, in Å (the length of the shift vector).",
    )
    max_search_angle_deg: Annotated[float, CliFlag("--max-angle")] = Field(
        180.0,
        ge=0.0,
        le=180.0,
        title="Maximum search angle (°)",
        description="Largest rotation angle searched, in degrees; 180 searches all rotations.",
    )
    lowpass_resolution_A: Annotated[float, CliFlag("--lowpass")] = Field(
        10.0,
        gt=0.0,
        le=1000.0,
        title="Low-pass resolution (Å)",
        description="Both maps are low-pass filtered to this resolution (Å) before aligning.",
    )
    check_both_chiralities: Annotated[StrictBool, CliFlag("--no-hand-check", negate=True)] = Field(
        True,
        title="Check both hands",
        description="Also try the mirrored hand of each map to align (the better hand wins).",
    )
    rotation_candidates: Annotated[int, CliFlag("--rotation-candidates")] = Field(
        12,
        ge=1,
        le=200,
        title="Rotation candidates",
        description="Peaks of the rotation function examined per hand (more: slower, surer "
        "for pseudo-symmetric maps).",
    )
