"""A job that is not align3d's, for tests of the runtime/job contract: it turns a volume's map
into a mask (voxels at or above a threshold, in the map's units), records how much of the box
the mask covers in a details document of its own, and checks its input file before any work.

tests/test_job_contract.py installs it through the ``align3d.jobs`` entry point of a throwaway
distribution (a ``*.dist-info`` folder on the path of an ``align3d`` subprocess); nothing in
align3d names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from align3d.engine.issues import JobProblem
from align3d.engine.jobdef import DeclaredJob, JobOutcome, RunContext, SlotDecl
from align3d.slots.errors import MapReadError
from align3d.slots.mrc import read_map, write_map
from align3d.slots.payloads import MaskPayload, SlotKind, VolumePayload

MASK_FILE = "mask.mrc"


class ThresholdParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    threshold: float = Field(description="Voxels at or above this value (map units) are in.")
    dilate_voxels: int = Field(0, ge=0, le=5, description="Grow the mask by this many voxels.")


class ThresholdDetails(BaseModel):
    """What the job found: how much of the box the mask covers."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    voxels_in_mask: int = Field(ge=0)
    fraction_in_mask: float = Field(ge=0, le=1)
    map_range: list[float] = Field(min_length=2, max_length=2, description="Lowest, highest.")


@dataclass(frozen=True)
class ThresholdJob(DeclaredJob):
    details_model: ClassVar[type[BaseModel] | None] = ThresholdDetails
    error_codes: ClassVar[Mapping[str, str]] = {
        "threshold_outside_map": "the threshold is above every voxel of the map (an empty mask)"
    }

    def preflight(
        self, params: BaseModel, inputs: Mapping[str, Any], base_dir: Path
    ) -> list[JobProblem]:
        assert isinstance(params, ThresholdParams)
        volume = inputs["volume"]
        assert isinstance(volume, VolumePayload)
        try:
            data = read_map(volume.map, volume.voxel_size_A).data
        except MapReadError as exc:
            return [JobProblem(code="unreadable_map", slot="volume", message=str(exc))]
        if params.threshold > float(data.max()):
            return [
                JobProblem(
                    code="threshold_outside_map",
                    param="threshold",
                    message=f"{params.threshold} is above the map's highest value "
                    f"{float(data.max()):g}; choose a lower threshold",
                )
            ]
        return []

    def run(self, params: BaseModel, inputs: Mapping[str, Any], context: RunContext) -> JobOutcome:
        assert isinstance(params, ThresholdParams)
        volume = inputs["volume"]
        loaded = read_map(volume.map, volume.voxel_size_A)
        inside = loaded.data >= params.threshold
        for _ in range(params.dilate_voxels):
            grown = inside.copy()
            for axis in range(3):
                grown |= np.roll(inside, 1, axis) | np.roll(inside, -1, axis)
            inside = grown
        write_map(context.workdir / MASK_FILE, inside.astype(np.float32), loaded.voxel_size_A)
        context.log(f"mask: {int(inside.sum())} voxels")
        details = ThresholdDetails(
            voxels_in_mask=int(inside.sum()),
            fraction_in_mask=float(inside.mean()),
            map_range=[float(loaded.data.min()), float(loaded.data.max())],
        )
        return JobOutcome({"mask": MaskPayload(path=Path(MASK_FILE))}, details=details)


JOB = ThresholdJob(
    name="threshold_mask",
    description="A mask of the voxels of a volume's map at or above a threshold.",
    params_model=ThresholdParams,
    inputs=(SlotDecl("volume", SlotKind.VOLUME, "The volume whose map is thresholded.", True),),
    outputs=(SlotDecl("mask", SlotKind.MASK, "The mask (1 inside, 0 outside)."),),
)
