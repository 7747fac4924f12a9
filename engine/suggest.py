"""'Did you mean ...?' for a misspelt name: the closest valid names, then the full list."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> str:
    """A message for an unknown ``kind`` (job, parameter, slot) ``name``."""
    names = sorted(valid)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if not close:  # a different case or a missing unit suffix counts as close too
        close = [n for n in names if n.lower().startswith(name.lower()[:6]) and len(name) >= 4][:3]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(names) or "none"
    return f"unknown {kind} {name!r}{hint} (valid: {listing})"
