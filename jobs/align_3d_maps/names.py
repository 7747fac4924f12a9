"""The names of what Align 3D Maps writes into its job folder, defined once: the job's code,
the report, the hosts (and tests) build paths from these.

A job folder holds ``report.html``, ``alignments.tsv``, ``chimerax.cxc``, the particle files
(named after their output slot) and, per volume, a folder ``volume_NNN`` (NNN: the volume's
index, three digits) with its moved maps, named by role (``map.mrc``, ``map_sharp.mrc``,
``map_half_A.mrc``, ``map_half_B.mrc``, ``mask.mrc``) and, with diagnostics on, the difference
map (``difference_map.mrc``) and the figures (``fsc.png``, ``difference_slices.png``,
``overlay_slices.png``). The runtime adds ``job.log`` and ``result.json``.
"""

from __future__ import annotations

from pathlib import Path

from align3d.slots.payloads import MapRole

REPORT = "report.html"
ALIGNMENTS_TABLE = "alignments.tsv"
CHIMERAX_SCRIPT = "chimerax.cxc"
FSC_FIGURE = "fsc.png"
DIFFERENCE_FIGURE = "difference_slices.png"
OVERLAY_FIGURE = "overlay_slices.png"


def volume_folder(index: int) -> str:
    """The folder of volume ``index`` in the job folder: ``volume_001``."""
    return f"volume_{index:03d}"


def particles_file(slot: str, source: Path) -> str:
    """The particle file written for output ``slot`` from ``source``, in source's format:
    ``particles_for_map_2.star``, ``all_particles.cs``."""
    return f"{slot}{source.suffix}"


def map_file(role: MapRole) -> str:
    """The file of a volume's map (or mask, or difference map) in its folder: ``map_sharp.mrc``."""
    return f"{role}.mrc"
