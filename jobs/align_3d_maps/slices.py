"""The central planes of a map, which the figures show: xy at ``z = N // 2``, xz at
``y = N // 2``, yz at ``x = N // 2`` (numpy only, so that a map read early can keep its slices
and let the map go before the numerical stack has loaded)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Slices = dict[str, NDArray[np.float32]]
"""The central ``xy``, ``xz`` and ``yz`` planes of a volume (copies: the volume may go)."""


def central_slices(volume: NDArray) -> Slices:
    """The central xy, xz and yz planes of a ``[z, y, x]`` volume (rows, columns as plotted)."""
    cz, cy, cx = (n // 2 for n in volume.shape)
    planes = {"xy": volume[cz], "xz": volume[:, cy, :], "yz": volume[:, :, cx]}
    return {name: np.array(plane, dtype=np.float32) for name, plane in planes.items()}
