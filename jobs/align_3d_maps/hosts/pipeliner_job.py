"""Align 3D Maps as a CCP-EM pipeliner job, ``align3d.map_utilities.align_3d_maps``
(registered in the entry-point group ``ccpem_pipeliner.jobs``; Doppio shows it under *Map
Utilities*).

Options: the job's parameters, generated from its declaration (same names, defaults, limits and
help), and the inputs: ``reference_map`` (DensityMap), ``reference_mask`` (Mask3D) and
``maps_to_align`` (DensityMap nodes, as many as wanted), with each map's ``half_maps``
(``halfmap`` nodes), ``sharpened_maps``, ``masks_to_align`` and ``particles``
(ParticleGroupMetadata). Those are paired with their map by the job that produced them (see
:mod:`.pairing`): the pipeline knows every node's source job. A file that ``relion.import``
brought in from outside keeps no trace of its origin; it pairs by a shared file name
(``v1_map.mrc``, ``v1_half1.mrc``), or is refused. The classes of one Class3D job with its
particles become a volumes group.

The command runs ``align3d run`` on a spec the job writes into its folder (:mod:`.run_folder`).
Outputs are declared when the job is created, from the paired inputs
(:func:`.outputs.planned_outputs`), so that a job that takes an aligned map can be scheduled
before this one has run: every moved map (``DensityMap``, keywords ``align3d`` and ``aligned``;
half maps also ``halfmap``, sharpened maps ``sharpened``), every moved mask (``Mask3D``), the
updated particles (``ParticleGroupMetadata``) and the log (:mod:`.pipeliner_nodes`). After the
run, the same declaration is checked against the files: a missing one fails the job, named.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeliner.display_tools import create_results_display_object
from pipeliner.external_program_utils import ExternalProgram
from pipeliner.job_options import (
    FileDescription,
    InputNodeJobOption,
    JobOptionCondition,
    JobOptionValidationResult,
    MultiInputNodeJobOption,
)
from pipeliner.nodes import NODE_DENSITYMAP, NODE_MASK3D, NODE_PARTICLEGROUPMETADATA
from pipeliner.pipeliner_job import PipelinerCommand, PipelinerJob
from pipeliner.project_graph import ProjectGraph
from pipeliner.results_display_objects import ResultsDisplayObject
from pydantic import ValidationError

from align3d.engine.describe import describe
from align3d.engine.hosts.pipeliner_options import job_option, option_value
from align3d.engine.version import align3d_version
from align3d.jobs.align_3d_maps.hosts.outputs import planned_outputs, read_result
from align3d.jobs.align_3d_maps.hosts.pairing import (
    HostFile,
    HostInputs,
    PairingError,
    SpecPlan,
    job_spec,
    plan_volumes,
)
from align3d.jobs.align_3d_maps.hosts.pipeliner_nodes import (
    LOG_NODE,
    OutputNodeDecl,
    output_node,
)
from align3d.jobs.align_3d_maps.hosts.run_folder import RUN_FOLDER, run_arguments, write_spec
from align3d.jobs.align_3d_maps.job import JOB
from align3d.jobs.align_3d_maps.names import (
    DIFFERENCE_FIGURE,
    FSC_FIGURE,
    OVERLAY_FIGURE,
    volume_folder,
)
from align3d.jobs.align_3d_maps.params import AlignParams
from align3d.schemas.documents import AlignmentDetails

MAP_FILES = FileDescription("MRC map", [".mrc", ".map"])
FILE_INPUTS = ("half_maps", "sharpened_maps", "masks_to_align", "particles")


def align3d_program() -> str:
    """The ``align3d`` command of the environment the pipeliner runs in."""
    beside = Path(sys.executable).with_name("align3d")
    return str(beside) if beside.exists() else "align3d"


def _off(switch: str) -> JobOptionCondition:
    return JobOptionCondition([(switch, "=", False)])


def _maps_option(
    label: str,
    help_text: str,
    *,
    single: bool = False,
    node_type: str = NODE_DENSITYMAP,
    **options: Any,
) -> InputNodeJobOption | MultiInputNodeJobOption:
    """An input of MRC maps (density maps unless ``node_type`` says masks): one file, or as
    many as the user gives."""
    kind = InputNodeJobOption if single else MultiInputNodeJobOption
    return kind(label=label, node_type=node_type, pattern=MAP_FILES, help_text=help_text, **options)


class Align3DMapsJob(PipelinerJob):
    PROCESS_NAME = "align3d.map_utilities.align_3d_maps"
    OUT_DIR = "Align3D"
    CATEGORY_LABEL = "Map Utilities"

    def __init__(self) -> None:
        super().__init__()
        self.jobinfo.display_name = "Align 3D maps (align3d)"
        self.jobinfo.version = align3d_version()
        self.jobinfo.job_author = "align3d"
        self.jobinfo.short_desc = "Put maps in register with a reference: rotation, shift, hand"
        self.jobinfo.long_desc = JOB.description
        self.jobinfo.programs = [ExternalProgram(command=align3d_program())]
        self.params = describe(JOB).params
        self.joboptions["reference_map"] = _maps_option(
            "Reference map",
            "Every map is moved onto this map's frame and grid.",
            single=True,
            is_required=True,
        )
        self.joboptions["reference_mask"] = _maps_option(
            "Reference mask",
            "Mask of the reference (values in [0, 1]); optional.",
            single=True,
            node_type=NODE_MASK3D,
        )
        self.joboptions["maps_to_align"] = _maps_option(
            "Maps to align",
            "One or more maps; each is aligned onto the reference. The classes of one Class3D job "
            "with its particles are aligned as a volumes group.",
            is_required=True,
        )
        self.joboptions["half_maps"] = _maps_option(
            "Half maps of the maps to align",
            "Both half maps of each map, from the job that made the map (paired by job, never by "
            "position); they move with their map.",
            node_kwds=["halfmap"],
        )
        self.joboptions["sharpened_maps"] = _maps_option(
            "Sharpened maps of the maps to align",
            "A sharpened map per map (e.g. a PostProcess of its refinement); moves with its map.",
        )
        for param in self.params:
            self.joboptions[param.name] = job_option(param, group="Alignment")
        self.joboptions["masks_to_align"] = _maps_option(
            "Masks of the maps to align",
            "A mask per map (one for all the classes of one job), from the job that made it or "
            "its map; each moves with its map.",
            node_type=NODE_MASK3D,
            deactivate_if=_off("create_mask_inputs"),
        )
        self.joboptions["particles"] = MultiInputNodeJobOption(
            label="Particles of the maps to align",
            node_type=NODE_PARTICLEGROUPMETADATA,
            pattern=FileDescription("Particles", [".star", ".cs"]),
            help_text="The particles of each map (RELION STAR or CryoSPARC .cs); their poses "
            "follow their map. A Class3D job's particles follow their class's volume.",
            deactivate_if=_off("update_particle_alignments"),
        )
        self.get_runtab_options()

    # --- what the pipeline knows about the inputs --------------------------------------------

    def _host_file(self, pipe: ProjectGraph, name: str) -> HostFile:
        node = pipe.find_node(name)
        path = Path(name).resolve()
        process = node.output_from_process if node is not None else None
        if process is None:  # a file the pipeline does not know: its folder is its origin
            return HostFile(path, str(path.parent), frozenset(), name)
        # a file imported from outside the project keeps no trace of where it came from
        known = process.type != "relion.import"
        return HostFile(path, process.name, _upstream(process), name, known_source=known)

    def host_inputs(self) -> HostInputs:
        """The connected files, each with its source job."""
        options = self.joboptions

        def listed(key: str) -> list[str]:
            return [v for v in options[key].get_list() if v]

        with ProjectGraph(read_only=True) as pipe:

            def files(key: str) -> list[HostFile]:
                return [self._host_file(pipe, name) for name in listed(key)]

            mask = options["reference_mask"].get_string()
            return HostInputs(
                reference=self._host_file(pipe, options["reference_map"].get_string()),
                maps=files("maps_to_align"),
                reference_mask=self._host_file(pipe, mask) if mask else None,
                halves=files("half_maps"),
                sharpened=files("sharpened_maps"),
                masks=files("masks_to_align") if self._param("create_mask_inputs") else [],
                particles=files("particles") if self._param("update_particle_alignments") else [],
            )

    def _param(self, name: str) -> object:
        param = next(p for p in self.params if p.name == name)
        return option_value(param, self.joboptions[name])

    def job_params(self) -> dict[str, object]:
        return {p.name: option_value(p, self.joboptions[p.name]) for p in self.params}

    def plan(self) -> tuple[HostInputs, SpecPlan]:
        inputs = self.host_inputs()
        return inputs, plan_volumes(inputs)

    # --- the pipeliner's hooks ---------------------------------------------------------------

    def additional_joboption_validation(self) -> list[JobOptionValidationResult]:
        """Parameters checked by the job's own model; inputs paired (or refused) now, before
        anything is scheduled."""
        problems: list[JobOptionValidationResult] = []
        values = {}
        for param in self.params:
            try:
                values[param.name] = option_value(param, self.joboptions[param.name])
            except (ValueError, TypeError) as exc:
                problems.append(_error(self.joboptions[param.name], f"{param.name}: {exc}"))
        try:
            AlignParams(**values)
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else ""
                option = self.joboptions.get(name, self.joboptions["maps_to_align"])
                problems.append(_error(option, f"{name}: {error['msg']}"))
        if not problems and self.joboptions["maps_to_align"].get_list():
            try:
                self.plan()
            except PairingError as exc:
                problems.append(_error(self.joboptions["maps_to_align"], str(exc)))
        return problems

    def declared_outputs(self) -> list[OutputNodeDecl]:
        """Every output node, known from the paired inputs before the run: each volume's
        moved maps and mask, the particles, the log."""
        _, plan = self.plan()
        files = planned_outputs(plan, particles=self._particles_on, masks=self._masks_on)
        return [*(output_node(item) for item in files), LOG_NODE]

    @property
    def _particles_on(self) -> bool:
        return bool(self._param("update_particle_alignments"))

    @property
    def _masks_on(self) -> bool:
        return bool(self._param("create_mask_inputs"))

    def create_output_nodes(self) -> None:
        """Declared when the job is created, so that later jobs can take them as inputs while
        this one is scheduled (``maps_to_align`` empty: no job to plan yet, nothing
        declared)."""
        if not self.joboptions["maps_to_align"].get_list():
            return
        for node in self.declared_outputs():
            self.add_output_node(node.name, node.node_type, list(node.keywords))

    def get_commands(self) -> list[PipelinerCommand]:
        inputs, plan = self.plan()
        job_dir = Path(self.output_dir).resolve()
        job_dir.mkdir(parents=True, exist_ok=True)
        spec = job_spec(
            inputs,
            plan,
            self.job_params(),
            particles=self._particles_on,
            masks=self._masks_on,
        )
        replace = write_spec(job_dir, spec)
        return [PipelinerCommand([align3d_program(), *run_arguments(job_dir, replace)])]

    def create_post_run_output_nodes(self) -> None:
        """The declared outputs, checked against the files the run wrote: a missing one fails
        the job (the pipeliner writes the message to ``run.err``), named."""
        declared = self.declared_outputs()
        job_dir = Path(self.output_dir)
        missing = [node.name for node in declared if not (job_dir / node.name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{job_dir}: the run did not write {', '.join(missing)}, declared as the "
                f"job's outputs when it was created; {job_dir / LOG_NODE.name} says why it "
                "stopped short. Run the job again"
            )
        known = {node.name for node in self.output_nodes}
        for node in declared:
            if os.path.join(self.output_dir, node.name) not in known:
                self.add_output_node(node.name, node.node_type, list(node.keywords))

    def create_results_display(self) -> Sequence[ResultsDisplayObject]:
        run_dir = Path(self.output_dir) / RUN_FOLDER
        manifest = read_result(run_dir)
        alignments = manifest.details_as(AlignmentDetails).alignments
        rows = [
            [
                str(r.index),
                f"{r.rotation_angle_deg:.2f}",
                " ".join(f"{x:.2f}" for x in r.shift_A),
                "yes" if r.hand_flipped else "no",
                f"{r.score:.3f}",
                "" if r.alternative_score is None else f"{r.alternative_score:.3f}",
                "" if r.fsc_0143_A is None else f"{r.fsc_0143_A:.2f}",
                "; ".join(r.warnings),
            ]
            for r in alignments
        ]
        displays: list[ResultsDisplayObject] = [
            create_results_display_object(
                "table",
                title="Alignments (y = R F x + t about the box centres, Å)",
                headers=[
                    "volume",
                    "rotation (°)",
                    "shift x y z (Å)",
                    "hand flipped",
                    "score",
                    "next best",
                    "FSC 0.143 (Å)",
                    "warnings",
                ],
                table_data=rows,
                associated_data=[str(run_dir / "result.json")],
            )
        ]
        if manifest.warnings:
            displays.append(
                create_results_display_object(
                    "text",
                    title="Warnings",
                    display_data="\n".join(manifest.warnings),
                    associated_data=[str(run_dir / "result.json")],
                )
            )
        for record in alignments:
            folder = run_dir / volume_folder(record.index)
            for figure, title in (
                (FSC_FIGURE, "FSC against the reference"),
                (DIFFERENCE_FIGURE, "Difference map slices (aligned - reference)"),
                (OVERLAY_FIGURE, "Overlay slices (reference magenta, aligned green)"),
            ):
                if (folder / figure).is_file():
                    displays.append(
                        create_results_display_object(
                            "image",
                            title=f"Volume {record.index}: {title}",
                            image_path=str(folder / figure),
                            image_desc=title,
                            associated_data=[str(folder / figure)],
                        )
                    )
        return displays


def _error(option: object, message: str) -> JobOptionValidationResult:
    return JobOptionValidationResult("error", [option], message)


def _upstream(process: object) -> frozenset[str]:
    """Every job upstream of ``process`` (a pipeliner Process)."""
    seen: set[str] = set()
    todo = [process]
    while todo:
        current = todo.pop()
        for node in getattr(current, "input_nodes", []):
            parent = node.output_from_process
            if parent is not None and parent.name not in seen:
                seen.add(parent.name)
                todo.append(parent)
    return frozenset(seen)
