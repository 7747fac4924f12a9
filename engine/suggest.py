"""'Did you mean ...?' for a misspelt name: the closest valid names, then the full list; and the
valid keys at a place in a document (for a misspelt key of a job spec or workflow)."""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


def unknown_name(
    kind: str,
    name: str,
    valid: Iterable[str],
    candidates: Iterable[str] | None = None,
    note: str = "",
) -> str:
    """A message for an unknown ``kind`` (job, parameter, slot, key) ``name``: the closest of
    ``candidates`` (by default the ``valid`` names; a per-volume slot suggests concrete names
    like ``NAME_1`` while the list shows ``NAME_N``), ``note`` after the suggestion,
    then the list of valid names."""
    names = sorted(valid)
    close = closest(name, sorted(candidates) if candidates is not None else names)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(names) or "none"
    return f"unknown {kind} {name!r}{hint}{note} (valid: {listing})"


def closest(name: str, names: Sequence[str]) -> list[str]:
    """Up to three of ``names`` close to ``name`` (a typo, a different case, a missing unit
    suffix or plural)."""
    same = [n for n in names if n.lower() == name.lower()]
    if same:  # only the case differs
        return same
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if not close:  # a different case or a missing unit suffix counts as close too
        close = [n for n in names if n.lower().startswith(name.lower()[:6]) and len(name) >= 4][:3]
    return close


def _unwrap(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(type, metadata)`` of an ``Annotated`` type (or ``(type, ())``)."""
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        return base, tuple(metadata)
    return annotation, ()


def _step(annotation: Any, part: str | int) -> Any | None:
    """The type found one step into ``annotation`` at ``part`` of a pydantic error location:
    a field of a model, an item of a list or dict, or the member of a tagged union named by
    its tag (``<volume>``). None when the location leaves the known types."""
    base, _ = _unwrap(annotation)
    origin = get_origin(base)
    if isinstance(part, str) and part.startswith("<"):
        if origin in (Union, types.UnionType):
            for member in get_args(base):
                _, metadata = _unwrap(member)
                if any(getattr(m, "tag", None) == part for m in metadata):
                    return member
        return None
    if isinstance(base, type) and issubclass(base, BaseModel):
        for name, info in base.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    if origin is list and isinstance(part, int):
        return get_args(base)[0]
    if origin is dict:
        return get_args(base)[1]
    return None


def keys_at(model: type[BaseModel], location: Sequence[str | int]) -> list[str] | None:
    """The keys a document of ``model`` allows at ``location`` (a pydantic error location,
    tags of tagged unions included), by their names in the document (aliases); None when the
    location is not inside a model."""
    annotation: Any = model
    for part in location:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    base, _ = _unwrap(annotation)
    if isinstance(base, type) and issubclass(base, BaseModel):
        return [info.alias or name for name, info in base.model_fields.items()]
    return None
