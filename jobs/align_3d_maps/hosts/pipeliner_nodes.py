"""The CCP-EM pipeliner's output nodes of an Align 3D Maps job, from its output files
(:mod:`.outputs`): every moved map is a ``DensityMap`` (keywords ``align3d`` and ``aligned``;
half maps also ``halfmap``, sharpened maps ``sharpened``), a moved mask a ``Mask3D``, updated
particles ``ParticleGroupMetadata`` (``relion`` or ``cryosparc`` by the file's format), the run's
log a ``LogFile``. Names are relative to the pipeliner's job folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeliner.nodes import (
    NODE_DENSITYMAP,
    NODE_LOGFILE,
    NODE_MASK3D,
    NODE_PARTICLEGROUPMETADATA,
)

from align3d.engine.logs import JOB_LOG
from align3d.jobs.align_3d_maps.hosts.outputs import OutputFile
from align3d.jobs.align_3d_maps.hosts.run_folder import RUN_FOLDER
from align3d.slots.payloads import MapRole

KEYWORDS = ("align3d", "aligned")
NODE_OF_ROLE = {
    MapRole.MAP: (NODE_DENSITYMAP, KEYWORDS),
    MapRole.MAP_SHARP: (NODE_DENSITYMAP, (*KEYWORDS, "sharpened")),
    MapRole.MAP_HALF_A: (NODE_DENSITYMAP, (*KEYWORDS, "halfmap")),
    MapRole.MAP_HALF_B: (NODE_DENSITYMAP, (*KEYWORDS, "halfmap")),
    MapRole.MASK: (NODE_MASK3D, KEYWORDS),
}


@dataclass(frozen=True)
class OutputNodeDecl:
    """One output node: ``name``, relative to the job folder; the pipeliner's node type and
    keywords."""

    name: str
    node_type: str
    keywords: tuple[str, ...]


def output_node(item: OutputFile) -> OutputNodeDecl:
    """The node of one output file of the run (in the job folder's ``align3d/``)."""
    name = str(Path(RUN_FOLDER) / item.path)
    if item.role is MapRole.PARTICLES:
        tool = "relion" if item.path.suffix == ".star" else "cryosparc"
        return OutputNodeDecl(name, NODE_PARTICLEGROUPMETADATA, (tool, *KEYWORDS))
    node_type, keywords = NODE_OF_ROLE[item.role]
    return OutputNodeDecl(name, node_type, keywords)


LOG_NODE = OutputNodeDecl(str(Path(RUN_FOLDER) / JOB_LOG), NODE_LOGFILE, ("align3d",))
"""The run's log."""
