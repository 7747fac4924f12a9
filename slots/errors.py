"""Errors of reading slot files (importable without numpy, mrcfile or pandas)."""

from __future__ import annotations


class MapReadError(ValueError):
    """A map file cannot be used; the message names the file and says what to do."""


class ParticleFileError(ValueError):
    """A particle file cannot be used; the message names the file and says what to do."""
