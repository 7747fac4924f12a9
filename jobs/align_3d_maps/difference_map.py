"""The difference map of a volume (aligned map - reference, low-passed), with diagnostics on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from align3d.engine.alignment.difference import difference_from_spectra, difference_lowpass_A
from align3d.engine.alignment.fsc import FSCCurve
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.resample import Owned
from align3d.jobs.align_3d_maps.provenance import map_labels
from align3d.jobs.align_3d_maps.reference import PreparedReference
from align3d.jobs.align_3d_maps.slices import Slices, central_slices
from align3d.slots.mrc import write_map
from align3d.slots.payloads import MapRole


@dataclass(frozen=True)
class Diagnostics:
    """With diagnostics on: where the difference map goes and the alignment's low-pass (Å), the
    finest the difference map is low-passed to (:func:`difference_lowpass_A`)."""

    difference_map: Path
    lowpass_A: float


@dataclass(frozen=True)
class DifferenceWritten:
    """The difference map written: its file, its central slices (for the figure) and the
    low-pass it was given (Å)."""

    path: Path
    slices: Slices
    lowpass_A: float


def write_difference_map(
    diagnostics: Diagnostics,
    reference: PreparedReference,
    spectrum: Owned,
    fsc_after: FSCCurve,
    index: int,
    t: RigidTransform,
) -> DifferenceWritten:
    """The difference between the aligned map (its ``spectrum`` on the reference's grid, handed
    over and let go once used) and the reference, low-passed to where they agree
    (``fsc_after``), written to ``diagnostics.difference_map`` with volume ``index``'s labels
    (transform ``t``)."""
    p = float(reference.voxel_size_A[0])
    extent_A = min(reference.shape) * p
    lowpass = difference_lowpass_A(diagnostics.lowpass_A, fsc_after, extent_A)
    aligned = spectrum.take()
    difference = difference_from_spectra(
        reference.spectrum,
        aligned,
        shape=reference.shape,
        voxel_A=p,
        lowpass_A=lowpass,
        overwrite=True,
    )
    del aligned
    path = write_map(
        diagnostics.difference_map,
        difference,
        reference.voxel_size_A,
        reference.header,
        map_labels(index, MapRole.DIFFERENCE_MAP, t),
    )
    return DifferenceWritten(path, central_slices(difference), lowpass)
