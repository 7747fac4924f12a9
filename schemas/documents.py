"""Documents that cross the boundary: job spec, workflow, result manifest.

JSON Schemas of these models are exported to ``schemas/*.schema.json`` (``align3d schema``;
a test fails when the committed files are stale). Unknown keys are errors everywhere.

Input references inside a job spec:

* a volume: ``{"map": "a.mrc", "map_half_A": "...", "map_half_B": "...", "map_sharp": "...",
  "mask": "...", "voxel_size_A": 1.1, "index": 3}`` (``index``: the stable number of an
  individual volume of ``maps_to_align``; by default its position, from 1);
* a volumes group: ``{"volumes": [volume, ...]}``;
* a mask or particles file: ``{"path": "m.mrc"}``;
* another job's output: ``{"from": "J1.aligned_volume_2"}``;
* for ``maps_to_align`` (and other multiple inputs): a list of the above.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
SCHEMA_VERSION = 3
"""The layout of ``result.json``: 3 holds the job's own findings under ``details``; 2 (earlier
align3d) had them beside the runtime's fields (still read, as 3, by
:func:`align3d.engine.store.parse_manifest`)."""
JOB_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


class FromRef(BaseModel):
    """An output slot of another job of the same workflow: ``"JOB.SLOT"``."""

    model_config = _STRICT
    from_: str = Field(
        alias="from",
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_]*$",
        description="JOB.SLOT, e.g. J1.aligned_volume_2",
    )
    index: int | None = Field(None, ge=1, description="Stable index in a multiple input.")

    @property
    def job(self) -> str:
        return self.from_.split(".", 1)[0]

    @property
    def slot(self) -> str:
        return self.from_.split(".", 1)[1]


class VolumeFiles(BaseModel):
    """A volume given as files (paths relative to the document's folder)."""

    model_config = _STRICT
    map: str = Field(description="The map (MRC).")
    map_sharp: str | None = Field(None, description="Sharpened map (MRC).")
    map_half_A: str | None = Field(None, description="Half map A (MRC).")
    map_half_B: str | None = Field(None, description="Half map B (MRC).")
    mask: str | None = Field(None, description="The volume's mask (MRC, values in [0, 1]).")
    voxel_size_A: float | None = Field(
        None, gt=0, description="Voxel size in Å, overriding the headers (for headers that say 0)."
    )


class VolumeRef(VolumeFiles):
    """A volume given as files, as an input of a job."""

    index: int | None = Field(None, ge=1, description="Stable index in maps_to_align.")


class GroupRef(BaseModel):
    """A volumes group given as files, in order."""

    model_config = _STRICT
    volumes: list[VolumeRef] = Field(min_length=1)


class FileRef(BaseModel):
    """A mask (MRC) or particles (RELION .star, CryoSPARC .cs) file."""

    model_config = _STRICT
    path: str = Field(description="The file (relative to the document's folder).")
    voxel_size_A: float | None = Field(
        None, gt=0, description="Voxel size in Å (masks), overriding the header."
    )


class PathRef(FileRef):
    """A mask or particles file, as an input of a job."""

    index: int | None = Field(None, ge=1, description="Stable index in a multiple input.")


_INPUT_FORMS = (
    'an input is {"map": ...} (a volume), {"volumes": [...]} (a volumes group), '
    '{"path": ...} (a mask or particles file) or {"from": "JOB.SLOT"}'
)


def _input_form(value: Any) -> str | None:
    """Which form an input takes, from its keys (so that errors name one form, not four)."""
    if isinstance(value, dict):
        for key, tag in (("from", "<from>"), ("map", "<volume>"), ("volumes", "<group>")):
            if key in value:
                return tag
        return "<path>" if "path" in value else None
    forms = {FromRef: "<from>", VolumeRef: "<volume>", GroupRef: "<group>", PathRef: "<path>"}
    return forms.get(type(value))


SingleInput = Annotated[
    Annotated[FromRef, Tag("<from>")]
    | Annotated[VolumeRef, Tag("<volume>")]
    | Annotated[GroupRef, Tag("<group>")]
    | Annotated[PathRef, Tag("<path>")],
    Discriminator(
        _input_form, custom_error_type="invalid_input", custom_error_message=_INPUT_FORMS
    ),
]
InputValue = Annotated[
    Annotated[SingleInput, Tag("<one>")] | Annotated[list[SingleInput], Tag("<list>")],
    Discriminator(lambda v: "<list>" if isinstance(v, list) else "<one>"),
]


class JobSpec(BaseModel):
    """One job: ``{"job": "align_3d_maps", "params": {...}, "inputs": {...}}``."""

    model_config = _STRICT
    job: str = Field(description="Job type, e.g. align_3d_maps.")
    params: dict[str, Any] = Field(default_factory=dict, description="Job parameters.")
    inputs: dict[str, InputValue] = Field(default_factory=dict, description="Input slots.")


class Workflow(BaseModel):
    """Named jobs whose inputs may reference other jobs' outputs (``{"from": "J1.slot"}``)."""

    model_config = _STRICT
    jobs: dict[str, JobSpec] = Field(min_length=1)


class GridRecord(BaseModel):
    """A map's grid as UCSF ChimeraX places it: voxel ``i`` (x, y, z indices) sits at
    ``origin_A + i * voxel_size_A`` Å. ``origin_A`` is the header origin (words 50-52) when the
    file is MRC2000 and that origin is set, else nstart x voxel size (ChimeraX's rule)."""

    model_config = _STRICT
    path: str = Field(description="Absolute path of the map as the job read it.")
    box: list[int] = Field(min_length=3, max_length=3, description="Box in voxels (x, y, z).")
    voxel_size_A: list[float] = Field(
        min_length=3, max_length=3, description="Voxel size used, Å (x, y, z)."
    )
    origin_A: list[float] = Field(
        min_length=3, max_length=3, description="Position of voxel 0, Å (x, y, z)."
    )
    voxel_size_from_header: bool = Field(
        True, description="False when voxel_size_A overrode the header (ChimeraX reads the header)."
    )


class AlignmentRecord(BaseModel):
    """One volume's alignment: ``y = R F^flip x + t`` (docs/conventions.md#the-transform)."""

    model_config = _STRICT
    index: int = Field(ge=1, description="Stable index of the volume.")
    rotation: list[list[float]] = Field(description="R, 3x3.")
    shift_A: list[float] = Field(min_length=3, max_length=3, description="t in Å.")
    hand_flipped: bool
    matrix: list[list[float]] = Field(description="[[R F^flip, t], [0, 1]], 4x4.")
    rotation_angle_deg: float = Field(ge=0, le=180, description="Rotation angle of R, degrees.")
    score: float = Field(description="NCC of the aligned, masked, low-passed maps.")
    alternative_score: float | None = Field(
        None, description="NCC of the best clearly different alignment (ambiguity check)."
    )
    chance_z: float | None = Field(
        None,
        description="Robust deviations by which the solution's score stands above the median "
        "score of random orientations (decoys); too few, and the alignment is not clearly better "
        "than chance (a warning says so).",
    )
    chance_gain: float | None = Field(
        None,
        description="Fraction of the room above the decoys' median score that the solution takes "
        "((s - m) / (1 - m)); too small, and the alignment is not clearly better than chance.",
    )
    fsc_0143_A: float | None = Field(
        None, description="FSC=0.143 resolution against the reference."
    )
    fsc_0143_before_A: float | None = Field(None, description="The same before alignment.")
    symmetry: str = Field(
        "C1", description="Point group the volume was aligned modulo (RELION's names and axes)."
    )
    symmetry_lowest_mate_score: float | None = Field(
        None,
        description="Lowest score of a symmetry mate of the solution (search grid): close to "
        "the solution's own when the reference has the symmetry.",
    )
    seconds: float = Field(ge=0, description="Wall time of this volume's alignment.")
    warnings: list[str] = Field(
        default_factory=list, description="What may be wrong with this alignment, in words."
    )
    map_grid: GridRecord | None = Field(
        None, description="The volume's map (the original, moving map) and its grid."
    )
    reference_grid: GridRecord | None = Field(
        None, description="The reference map and its grid (the frame of the aligned maps)."
    )


class SymmetryAxis(BaseModel):
    """An axis of a point group found on a map: its fold, unit direction ``(x, y, z)`` in the
    map's frame, and its score (the smallest over its turns)."""

    model_config = _STRICT
    fold: int
    direction: list[float]
    score: float


class SymmetryCandidate(BaseModel):
    """A candidate point group: RELION's name, its order, its score (the smallest over its
    operators), the score it must reach to hold, whether it does, and its axes."""

    model_config = _STRICT
    name: str
    order: int
    score: float
    threshold: float
    holds: bool
    axes: list[SymmetryAxis]


class DetectedSymmetry(BaseModel):
    """The point group found on a map (``align3d symmetry``; README, *Which symmetry?*)."""

    model_config = _STRICT
    point_group: str = Field(description="The group found, RELION's name (e.g. D7; I is I2).")
    axes: list[SymmetryAxis] = Field(description="The found group's axes, in the map's frame.")
    random_level: float = Field(description="Median score of seeded random rotations (C1).")
    centre_A: list[float] = Field(description="Symmetry centre, Å about the box centre (x, y, z).")
    to_relion_matrix: list[list[float]] = Field(
        description="4x4 [[R, t], [0, 1]] (docs/conventions.md) that moves the map into "
        "RELION's orientation of its group, the centre on the box centre (identity for C1)."
    )
    candidates: list[SymmetryCandidate]


class AlignmentDetails(BaseModel):
    """What Align 3D Maps found: the ``details`` of its result manifest (its ``details_model``):
    each volume's alignment, the symmetry, and how far apart the volumes' transforms are."""

    model_config = _STRICT
    alignments: list[AlignmentRecord] = Field(default_factory=list)
    symmetry: str | None = Field(None, description="Point group the volumes were aligned modulo.")
    largest_rotation_between_volumes_deg: float | None = Field(
        None,
        description="Largest rotation between the transforms of two aligned volumes, after the "
        "symmetry mates were chosen together (volumes of one frame should agree within a few "
        "degrees).",
    )
    volumes_furthest_apart: list[int] | None = Field(
        None, description="The two volumes of that largest rotation."
    )
    detected_symmetry: DetectedSymmetry | None = Field(
        None, description="The reference's point group, found (with detect_symmetry)."
    )


class FileFingerprint(BaseModel):
    """What a job read from one input file: its identity (``size``, ``mtime_ns``, ``ctime_ns``,
    ``inode``, ``device``) and its content (``sha256`` of every byte)."""

    model_config = _STRICT
    path: str = Field(description="Absolute path of the file.")
    size: int = Field(ge=0, description="Size in bytes.")
    mtime_ns: int = Field(description="Modification time, ns since the epoch.")
    ctime_ns: int = Field(description="Status-change time, ns (changes on every write).")
    inode: int
    device: int
    sha256: str = Field(description="SHA-256 of the file's contents (hex).")


DetailsT = TypeVar("DetailsT", bound=BaseModel)


class ResultManifest(BaseModel):
    """``result.json`` of a job: the runtime's record (its typed output slots, warnings and what
    made it) and ``details``, what the job found, in a document of the job's own whose model the
    job declares (``details_model``; :meth:`details_as` reads it)."""

    model_config = _STRICT
    schema_version: Literal[3] = SCHEMA_VERSION
    job: str = Field(description="Job name in the workflow.")
    job_type: str
    status: Literal["complete"] = "complete"
    align3d_version: str = Field(description="Version of align3d that ran the job.")
    command: list[str] = Field(
        default_factory=list, description="The command line that ran it (argv), when known."
    )
    spec_fingerprint: str = Field(
        description="Hash of what was asked: job name and type, parameters and input "
        "references. Another request in the same folder needs --force."
    )
    fingerprint: str = Field(
        description="Hash of everything the result depends on: the request, the align3d "
        "version, the contents of every input file and the fingerprints of the jobs it reads "
        "from. A rerun reuses this folder only when it is unchanged."
    )
    inputs: list[FileFingerprint] = Field(
        default_factory=list, description="Every input file the job read, as it was then."
    )
    upstream: dict[str, str] = Field(
        default_factory=dict, description="Fingerprint of each job this job reads from."
    )
    params: dict[str, Any]
    outputs: dict[str, dict[str, Any]] = Field(
        description="Output slot -> payload (kind and files; paths relative to the job folder)."
    )
    warnings: list[str] = Field(default_factory=list)
    details: dict[str, Any] | None = Field(
        None,
        description="What the job found, in a document of the job's own (its model: the job "
        "type's details_model, as this schema gives it per job_type); null for a job that "
        "records none.",
    )

    def details_as(self, model: type[DetailsT]) -> DetailsT:
        """``details`` read as the job's model (its defaults when the job recorded none)."""
        return model.model_validate(self.details or {})


DOCUMENTS: dict[str, type[BaseModel]] = {
    "job_spec": JobSpec,
    "workflow": Workflow,
    "result_manifest": ResultManifest,
}
