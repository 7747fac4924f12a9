"""The numerical core of align3d: arrays and voxel sizes in, a rigid transform and scores out.

It knows nothing of jobs, slots or files. Conventions: see :mod:`engine.alignment.geometry`.
"""

from engine.alignment.align import AlignmentParams, AlignmentResult, InvalidMapError, align_maps
from engine.alignment.fsc import FSCCurve, fsc
from engine.alignment.geometry import RigidTransform, random_transform
from engine.alignment.resample import resample_map

__all__ = [
    "AlignmentParams",
    "AlignmentResult",
    "FSCCurve",
    "InvalidMapError",
    "RigidTransform",
    "align_maps",
    "fsc",
    "random_transform",
    "resample_map",
]
