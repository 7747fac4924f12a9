"""Where compiled kernels and their markers can be kept (no numba import here: the cache folder
must be settled before numba is imported)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True
