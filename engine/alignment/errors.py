"""Errors of the numerical core (importable without loading any compiled kernel)."""

from __future__ import annotations


class InvalidMapError(ValueError):
    """A map or mask given to the core cannot be aligned (the message says why)."""
