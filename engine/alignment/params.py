"""The parameters of one alignment: the single declaration of their names, defaults, limits and
help texts. The job's parameters extend this model; the command line, the JSON Schema, the
README's job reference and the host adapters are generated from it. Units: Å and degrees.
Importing this module loads no compiled kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

SYMMETRY_PATTERN = r"^[CcDd][1-9][0-9]?$|^[TtOo]$|^[Ii][1-4]?$"
"""Proper point groups as RELION and CryoSPARC name them (see align3d.engine.alignment.symmetry)."""
IMPROPER_PATTERN = (
    r"^([Cc][Ii]|[Cc][Ss]|[CcDd][0-9]+[VvHh]|[Ss][0-9]+|[Tt][Dd]|[Tt][Hh]|[Oo][Hh]|[Ii][0-9]?[Hh])$"
)


def symmetry_name(value: object) -> str:
    """A symmetry name, checked and in RELION's case (``c4`` -> ``C4``); ValueError with what to
    write instead for anything else."""
    text = str(value).strip()
    if re.match(IMPROPER_PATTERN, text):
        raise ValueError(
            f"symmetry {text!r} has mirrors or an inversion, which would change the hand of a "
            "chiral molecule; name its proper point group (Cn, Dn, T, O, I)"
        )
    if not re.match(SYMMETRY_PATTERN, text):
        raise ValueError(
            f"unknown symmetry {text!r}: use C1 (none), Cn, Dn (n up to 99), T, O, I or I1-I4, "
            "as RELION writes them"
        )
    return text.upper()


@dataclass(frozen=True)
class CliFlag:
    """How a parameter is spelled on the ``align3d align`` command line (a short, established
    flag where the parameter's own name would be long); ``negate``: a boolean whose default is
    on, switched off by the flag, which ``negated`` says in words (the flag's help)."""

    flag: str
    negate: bool = False
    negated: str = ""


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
    check_both_chiralities: Annotated[
        StrictBool,
        CliFlag(
            "--no-hand-check",
            negate=True,
            negated="Keep each map's hand as it is: do not try the mirrored hand (for maps whose "
            "hand is known to be right)",
        ),
    ] = Field(
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
    symmetry: Annotated[str, CliFlag("--symmetry")] = Field(
        "C1",
        title="Symmetry",
        description="Point group of the reference (RELION's names and axes: C1 for none, Cn, Dn, "
        "T, O, I, I1-I4). Every volume is aligned modulo it, and of the equally good symmetry "
        "mates the one closest to the identity is returned, the same mate for every volume of "
        "the job.",
        json_schema_extra={"pattern": SYMMETRY_PATTERN},
    )

    @field_validator("symmetry", mode="before")
    @classmethod
    def _symmetry(cls, value: object) -> str:
        return symmetry_name(value)
