"""A job's inputs as payloads: file references of a spec and outputs of earlier jobs, with
absolute, normalised paths (``specs/../maps/a.mrc`` becomes ``/abs/maps/a.mrc``; symbolic links
are kept as the user named them)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from align3d.engine.jobdef import SlotSpec
from align3d.engine.resolver import ResolvedJob, as_list, item_index
from align3d.schemas.documents import (
    FileRef,
    FromRef,
    GroupRef,
    ResultManifest,
    SingleInput,
    VolumeFiles,
)
from align3d.slots.payloads import (
    PAYLOAD_OF_KIND,
    MaskPayload,
    ParticlesPayload,
    SlotKind,
    VolumePayload,
    VolumesGroupPayload,
)

Done = Mapping[str, tuple[Path, ResultManifest]]
"""Completed jobs of a run: name -> (folder, manifest)."""


def absolute(base: Path, value: str | os.PathLike) -> Path:
    """``value`` (relative to ``base`` unless absolute) as an absolute, normalised path."""
    return Path(os.path.abspath(Path(base) / value))


def volume_payload(ref: VolumeFiles, base: Path) -> VolumePayload:
    def path(value: str | None) -> Path | None:
        return None if value is None else absolute(base, value)

    return VolumePayload(
        map=absolute(base, ref.map),
        map_sharp=path(ref.map_sharp),
        map_half_A=path(ref.map_half_A),
        map_half_B=path(ref.map_half_B),
        mask=path(ref.mask),
        voxel_size_A=ref.voxel_size_A,
    )


def file_payload(ref: FileRef, kind: SlotKind, base: Path) -> BaseModel:
    if kind == SlotKind.PARTICLES:
        return ParticlesPayload(path=absolute(base, ref.path))
    return MaskPayload(path=absolute(base, ref.path), voxel_size_A=ref.voxel_size_A)


def _absolute_paths(payload: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Output payload paths are relative to their job folder; make them absolute."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "volumes":
            out[key] = [_absolute_paths(v, folder) for v in value]
        elif isinstance(value, str) and key != "kind":
            out[key] = str(absolute(folder, value))
        else:
            out[key] = value
    return out


def _materialise(item: SingleInput, slot: SlotSpec, base: Path, done: Done) -> BaseModel:
    if isinstance(item, FromRef):
        folder, manifest = done[item.job]
        payload = _absolute_paths(manifest.outputs[item.slot], folder)
        return PAYLOAD_OF_KIND[slot.kind].model_validate(payload)
    if isinstance(item, VolumeFiles):
        return volume_payload(item, base)
    if isinstance(item, GroupRef):
        return VolumesGroupPayload(volumes=[volume_payload(v, base) for v in item.volumes])
    assert isinstance(item, FileRef)
    return file_payload(item, slot.kind, base)


def job_inputs(job: ResolvedJob, base: Path, done: Done) -> dict[str, Any]:
    """The job's inputs as payloads: one per slot, or ``[(index, payload), ...]`` for a
    multiple input."""
    slots = {s.name: s for s in job.inputs}
    inputs: dict[str, Any] = {}
    for name, value in job.spec.inputs.items():
        slot = slots[name]
        items = as_list(value)
        if slot.multiple:
            inputs[name] = [
                (item_index(it, i), _materialise(it, slot, base, done))
                for i, it in enumerate(items)
            ]
        else:
            inputs[name] = _materialise(items[0], slot, base, done)
    return inputs


def reads_only_files(job: ResolvedJob) -> bool:
    """Whether every input of the job is a file reference (none comes from another job)."""
    return not any(isinstance(i, FromRef) for v in job.spec.inputs.values() for i in as_list(v))


def _payload_paths(payload: BaseModel) -> Iterator[Path]:
    for value in payload.__dict__.values():
        if isinstance(value, Path):
            yield value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    yield from _payload_paths(item)


def literal_input_files(job: ResolvedJob, inputs: Mapping[str, Any]) -> list[Path]:
    """The files a job's spec names directly (files from earlier jobs are covered by those
    jobs' fingerprints)."""
    files: list[Path] = []
    for name, value in job.spec.inputs.items():
        literal = [not isinstance(item, FromRef) for item in as_list(value)]
        payloads = inputs[name] if isinstance(inputs[name], list) else [(None, inputs[name])]
        for is_literal, (_, payload) in zip(literal, payloads, strict=True):
            if is_literal:
                files.extend(_payload_paths(payload))
    return files
