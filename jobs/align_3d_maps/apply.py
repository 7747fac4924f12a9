"""The work of ``align3d apply`` (:mod:`.apply_command`): one more map, mask, particle file or
atomic model moved by a volume's transform from a finished job, with the job's own functions
(:func:`align3d.engine.alignment.resample.move_map`, :func:`align3d.engine.alignment.poses.move_poses`,
:func:`.chimerax.placement`), so that the numbers are the job's.

Every mistake raises :class:`align3d.engine.cli_options.InvalidInput` (or the slots' read errors)
naming the file or option: the command line turns them into one line and exit code 2.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.cli_options import InvalidInput
from align3d.engine.store import parse_manifest
from align3d.jobs.align_3d_maps.chimerax import placement, transform_of
from align3d.jobs.align_3d_maps.provenance import map_labels
from align3d.schemas.documents import AlignmentDetails, AlignmentRecord, ResultManifest
from align3d.slots.atomic import atomic_write
from align3d.slots.errors import MapReadError

logger = logging.getLogger(__name__)

JOB_TYPE = "align_3d_maps"
GRID_RTOL = 1e-3
"""Voxel sizes closer than this (relative) count as one grid (as the job's grid check)."""


def load_result(path: Path) -> tuple[Path, ResultManifest]:
    """Read a job's ``result.json`` (``path`` may be the job's folder; the current layout or
    the earlier one, version 2): ``(path, manifest)``."""
    if path.is_dir():
        path = path / "result.json"
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file; give the result.json of an align job")
    try:
        manifest = parse_manifest(path.read_bytes())
        alignments = manifest.details_as(AlignmentDetails).alignments
    except (OSError, ValueError, ValidationError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise InvalidInput(f"{path}: not a result.json align3d wrote ({first})") from None
    if manifest.job_type != JOB_TYPE or not alignments:
        raise InvalidInput(
            f"{path}: a {manifest.job_type} job's result, with no alignments; give the "
            f"result.json of an {JOB_TYPE} job"
        )
    return path, manifest


def record_for(result: Path, manifest: ResultManifest, index: int) -> AlignmentRecord:
    """Volume ``index``'s alignment record."""
    alignments = manifest.details_as(AlignmentDetails).alignments
    for record in alignments:
        if record.index == index:
            return record
    known = ", ".join(str(r.index) for r in alignments)
    raise InvalidInput(f"--volume {index}: {result} has no volume {index} (its volumes: {known})")


def aligned_map_path(result: Path, manifest: ResultManifest, index: int) -> Path:
    """The map the job wrote for volume ``index`` (its grid is where ``apply --map`` goes)."""
    position = [r.index for r in manifest.details_as(AlignmentDetails).alignments].index(index)
    volumes = manifest.outputs.get("aligned_volumes", {}).get("volumes", [])
    if position >= len(volumes) or "map" not in volumes[position]:
        raise InvalidInput(f"{result}: lists no aligned map for volume {index}")
    return result.parent / volumes[position]["map"]


def apply_map(
    result: Path,
    manifest: ResultManifest,
    index: int,
    source: Path,
    out: Path,
    kind: str = "map",
    voxel_size_A: float | None = None,
) -> Path:
    """Move the map (``kind="map"``, cubic B-spline as the job) or mask (``"mask"``, trilinear)
    ``source`` by volume ``index``'s transform onto the grid of its aligned map; write ``out``.
    ``voxel_size_A``: the source's voxel size in Å (default: the job's override for the volume's
    maps, if it had one, else the header's)."""
    from align3d.engine.alignment.resample import GridMove, Owned, move_map, resample_map
    from align3d.slots.mrc import read_grid, read_map, write_map

    record = record_for(result, manifest, index)
    transform = transform_of(record)
    target = aligned_map_path(result, manifest, index)
    try:
        grid = read_grid(target)
    except MapReadError as exc:
        raise InvalidInput(
            f"volume {index}'s aligned map cannot be read ({exc}): apply puts maps on its grid"
        ) from None
    moving = record.map_grid
    if voxel_size_A is None and moving is not None and not moving.voxel_size_from_header:
        voxel_size_A = moving.voxel_size_A[0]
    data = read_map(source, voxel_size_A, constant_ok=kind == "mask")
    if moving is not None and (
        list(data.shape[::-1]) != moving.box
        or not np.allclose(data.voxel_size_A, moving.voxel_size_A, rtol=GRID_RTOL)
    ):
        logger.warning(
            "%s: its grid (%s voxels of %.4g Å) is not volume %d's (%s of %.4g Å, %s): it is "
            "moved about its own box centre, which is right only if the two boxes share a centre",
            source,
            " x ".join(map(str, data.shape[::-1])),
            data.voxel_size_A[0],
            index,
            " x ".join(map(str, moving.box)),
            moving.voxel_size_A[0],
            moving.path,
        )
    move = GridMove(
        transform=transform,
        in_voxel_A=data.voxel_size_A,
        out_shape=grid.shape,
        out_voxel_A=grid.voxel_size_A,
    )
    if kind == "mask":
        moved = resample_map(data.data, move, kind="mask")
    else:
        owned = Owned(data.data)
        del data
        moved = move_map(owned, move)
    labels = map_labels(index, source.name, transform, "apply")
    return write_map(out, moved, grid.voxel_size_A, grid.header, labels)


def apply_particles(
    result: Path, manifest: ResultManifest, index: int, source: Path, out: Path
) -> Path:
    """Write ``source``'s particles with poses that follow volume ``index`` (every particle,
    whatever its class) to ``out``; as the job, an identity transform keeps every value."""
    from align3d.engine.alignment.poses import move_poses
    from align3d.slots.particles import read_particles

    transform = transform_of(record_for(result, manifest, index))
    particles = read_particles(source)
    if _is_identity(transform):
        return particles.write(out)
    return particles.updated(lambda a, o, rows: move_poses(a, o, transform=transform)).write(out)


def _is_identity(t: RigidTransform) -> bool:
    return not t.flip and bool(np.all(t.rotation == np.eye(3))) and not np.any(t.shift_A)


def apply_model(
    result: Path, manifest: ResultManifest, index: int, source: Path, out: Path
) -> Path:
    """Move an atomic model fitted into volume ``index``'s original map into the aligned map's
    frame (Å, the reference's header origin), anisotropic displacements too; write ``out``
    (mmCIF for ``.cif``/``.mmcif``, else PDB)."""
    try:
        import gemmi
    except ImportError:
        raise InvalidInput(
            "--model needs gemmi to read and write models: pip install 'align3d[models]'"
        ) from None
    record = record_for(result, manifest, index)
    if record.map_grid is None or record.reference_grid is None:
        raise InvalidInput(
            f"{result}: written by an older align3d, without the maps' grids that --model "
            "needs; run the job again"
        )
    if not source.is_file():
        raise InvalidInput(f"--model {source}: file not found")
    transform = transform_of(record)
    matrix = placement(transform, record.map_grid, record.reference_grid).model_matrix
    try:
        structure = gemmi.read_structure(str(source))
    except (RuntimeError, ValueError, OSError) as exc:
        raise InvalidInput(f"--model {source}: not a readable mmCIF or PDB model ({exc})") from None
    if sum(1 for model in structure for chain in model for residue in chain) == 0:
        raise InvalidInput(f"--model {source}: holds no atoms")
    move = gemmi.Transform(gemmi.Mat33(matrix[:, :3].tolist()), gemmi.Vec3(*matrix[:, 3]))
    for model in structure:
        model.transform_pos_and_adp(move)
    if len(structure.ncs):
        logger.warning("%s: its NCS operators are left as they were (not moved)", source)
    if transform.flip:
        logger.warning(
            "volume %d's hand is flipped: the moved model is mirrored as the map is (its hand "
            "inverted: L amino acids become D); refit a model of the right hand into the "
            "aligned map",
            index,
        )
    cif_out = out.name.lower().endswith((".cif", ".mmcif"))

    def write(tmp: Path) -> None:
        if cif_out:
            structure.setup_entities()
            structure.make_mmcif_document().write_file(str(tmp))
        else:
            structure.write_pdb(str(tmp))

    written = atomic_write(out, write)
    logger.info("%s: model moved by volume %d's transform", written, index)
    return written
