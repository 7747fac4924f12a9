"""The rule a mask must follow, in one place: values in [0, 1] (soft edges allowed), some voxel
above 0. The numerical core and the job's preflight both apply it, so a mask that one refuses
the other does not silently clip."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from align3d.engine.alignment.errors import InvalidMapError

MASK_TOLERANCE = 1e-3
"""Values this far outside [0, 1] are rounding (as interpolated or rescaled masks carry) and
are clipped; values further out are an error."""


def mask_value_problem(mask: ArrayLike) -> str | None:
    """Why ``mask`` is not a usable mask (in words, without the file name), or None."""
    m = np.asarray(mask)
    if not np.all(np.isfinite(m)):
        return "the mask has NaN or infinite values"
    low, high = float(m.min()), float(m.max())
    if low < -MASK_TOLERANCE or high > 1.0 + MASK_TOLERANCE:
        return (
            f"mask values run from {low:.3g} to {high:.3g}, outside [0, 1]; give a soft mask in "
            "[0, 1] (e.g. relion_mask_create output)"
        )
    if high <= 0:
        return "the mask is empty (no voxel above 0)"
    return None


def checked_mask(
    name: str, mask: ArrayLike | None, shape: tuple[int, ...]
) -> NDArray[np.float32] | None:
    """``mask`` as float32 for a map of ``shape``, rounding outside [0, 1] clipped; an
    :class:`InvalidMapError` naming ``name`` when it breaks the rule or has another shape."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=np.float32)
    if m.shape != tuple(shape):
        raise InvalidMapError(f"{name} has shape {m.shape} but its map has shape {tuple(shape)}")
    problem = mask_value_problem(m)
    if problem is not None:
        raise InvalidMapError(f"{name}: {problem}")
    if float(m.min()) < 0.0 or float(m.max()) > 1.0:
        m = np.clip(m, 0.0, 1.0)  # rounding within the tolerance of the rule
    return m
