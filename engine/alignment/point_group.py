"""Finding the point group of a map: self-rotation scores of candidate axes.

A map ``V`` has an n-fold axis ``a`` through its centre ``c`` when ``V(c + R x) = V(c + x)``
for the rotations ``R`` by ``360° k / n`` about ``a``. The score of a rotation is the
correlation of the map with its rotated copy, over a sphere about ``c``. Before scoring, the
map is Fourier-cropped to a small working box (:data:`WORKING_BOX` voxels: the search is about
the shape, not the detail) and low-passed (:data:`SMOOTHING_VOXELS`), and its spherical average about ``c`` is removed: that part is the
same under every rotation, and would otherwise make every rotation score well. What is left
scores about 0 under an unrelated rotation and 1 under a symmetry.

The centre ``c`` is the centre of mass of the map's positive density (squared, so that the
background counts little); a symmetry's axes all pass through it. Positions are in Å about the
box centre (docs/conventions.md), directions unit ``(x, y, z)`` vectors.

:mod:`.point_group_search` assembles the axes into groups and chooses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.fourier import fourier_resize
from align3d.engine.alignment.geometry import box_centre, voxel_size_xyz
from align3d.engine.alignment.spline.affine import affine_linear
from align3d.slots.rotations import rotvec_matrix

WORKING_BOX = 32
"""Voxels along the longest side of the working map (a map already smaller is kept as it is)."""

SMOOTHING_VOXELS = 3.0
"""The working map is low-passed to this many of its voxels (1.5 x its Nyquist period), so
that trilinear interpolation, which damps what is near Nyquist, scores a symmetry near 1."""

MOVES_PER_STEP = 4
"""Moves of a pattern search at one step size before the step is halved (along a ridge, such
as about the axis of a cylindrical map, it would otherwise creep on)."""

FOLDS = tuple(range(2, 13))
"""The rotation orders searched (C2-C12, D2-D12; T, O and I are made of 2-, 3-, 4- and
5-folds)."""

Array = NDArray[np.float64]


@dataclass(frozen=True)
class SelfRotation:
    """A map prepared for self-rotation scores.

    ``grid``: the working map ``[z, y, x]``, its spherical average about the centre removed and
    0 outside the sphere; ``voxel_A``: its voxel size ``(x, y, z)`` in Å; ``centre_index``: the
    centre ``c`` in working-grid voxel indices ``(x, y, z)``; ``inside``: the voxels of the
    sphere about ``c`` over which scores are taken (flat indices) and ``values`` the map there
    (mean 0, norm 1); ``centre_A``: ``c`` in Å about the input
    map's box centre."""

    grid: NDArray[np.float32]
    voxel_A: Array
    centre_index: Array
    inside: NDArray[np.intp]
    values: Array
    centre_A: Array

    def score(self, rotation: Array) -> float:
        """Correlation of the map with its copy rotated by ``rotation`` (3 x 3) about ``c``."""
        p = self.voxel_A
        matrix = (rotation.T * p[None, :]) / p[:, None]  # index units, input of the output voxel
        offset = self.centre_index - matrix @ self.centre_index
        moved = affine_linear(self.grid, matrix, offset, self.grid.shape)  # type: ignore[arg-type]
        b = moved.ravel()[self.inside].astype(np.float64)
        b -= b.mean()
        norm = float(np.sqrt(b @ b))
        return float(self.values @ b) / norm if norm > 0 else 0.0

    def scores(self, rotations: Array) -> Array:
        """:meth:`score` of each rotation of a stack ``(m, 3, 3)``."""
        return np.array([self.score(r) for r in rotations])


def self_rotation(volume: NDArray[np.floating], voxel_A: float | Array) -> SelfRotation:
    """Prepare ``volume`` (``[z, y, x]``, voxel ``voxel_A`` Å) for self-rotation scores."""
    vol = np.asarray(volume, dtype=np.float32)
    p = voxel_size_xyz(voxel_A)
    shape = np.array(vol.shape)
    scale = max(1.0, float(shape.max()) / WORKING_BOX)
    new_shape = tuple(int(n) for n in np.maximum(4, np.round(shape / scale)))
    resolution_A = SMOOTHING_VOXELS * float(np.max(p * shape[::-1] / np.array(new_shape[::-1])))
    work, p_work = fourier_resize(vol, voxel_A=p, new_shape=new_shape, lowpass_A=resolution_A)  # type: ignore[arg-type]
    work = work - np.float32(np.median(work))
    weight = np.clip(work, 0.0, None).astype(np.float64) ** 2
    zz, yy, xx = np.indices(work.shape, dtype=np.float64)
    total = weight.sum()
    if not total > 0:
        raise ValueError("the map has no density above its median")
    centre = np.array([(weight * xx).sum(), (weight * yy).sum(), (weight * zz).sum()]) / total
    offset_A = np.stack([xx - centre[0], yy - centre[1], zz - centre[2]], -1) * p_work
    radius_A = np.linalg.norm(offset_A, axis=-1)
    # the sphere holds the density (99% of the weight) and stays inside the box
    order = np.argsort(radius_A, axis=None)
    cumulative = np.cumsum(weight.ravel()[order])
    r_density = radius_A.ravel()[order][np.searchsorted(cumulative, 0.99 * total)]
    r_box = float(np.min(np.minimum(centre, shape[::-1] - 1 - centre) * p_work))
    r_max = max(min(r_density + 2 * float(p_work.max()), r_box), 3 * float(p_work.max()))
    inside = radius_A <= r_max
    # the spherical average: shell means, linear in between (a staircase would leave steps
    # that no rotation keeps)
    shell = np.round(radius_A / float(p_work.min())).astype(np.int64)
    counts = np.bincount(shell[inside])
    sums = np.bincount(shell[inside], weights=work[inside].astype(np.float64))
    radii = np.bincount(shell[inside], weights=radius_A[inside])
    kept = counts > 0
    average = np.interp(radius_A, radii[kept] / counts[kept], sums[kept] / counts[kept])
    flat = np.where(inside, work - average, 0.0)
    centre_A = (centre - box_centre(work.shape)) * p_work
    index = np.flatnonzero(inside)
    values = flat.ravel()[index].astype(np.float64)
    values -= values.mean()
    values /= np.linalg.norm(values)
    return SelfRotation(flat.astype(np.float32), p_work, centre, index, values, centre_A)


def fibonacci_hemisphere(count: int) -> Array:
    """``count`` nearly evenly spaced unit directions ``(count, 3)`` with ``z >= 0`` (an axis
    and its opposite are the same axis)."""
    k = np.arange(count) + 0.5
    z = 1.0 - k / count
    angle = np.pi * (1.0 + np.sqrt(5.0)) * k
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(angle), r * np.sin(angle), z], -1)


def turns(fold: int) -> tuple[Fraction, ...]:
    """The turns ``k / n`` (``1 <= k <= n / 2``) whose rotations an n-fold axis has: ``k`` and
    ``n - k`` score alike (``corr(V, R V) = corr(R⁻¹ V, V)``); the generator ``1 / n`` first."""
    return tuple(Fraction(k, fold) for k in range(1, fold // 2 + 1))


def axis_scores(maps: SelfRotation, directions: Array, folds: tuple[int, ...] = FOLDS) -> Array:
    """Score of each direction ``(m, 3)`` as an n-fold axis for each fold, by the turn of
    360°/n (the group's generator; the other turns are checked when groups are scored);
    ``(m, len(folds))``."""
    return np.stack(
        [maps.scores(rotvec_matrix(directions * (2 * np.pi / n))) for n in folds], axis=-1
    )


def axis_score(maps: SelfRotation, direction: Array, fold: int, every_turn: bool = True) -> float:
    """Score of one direction as an n-fold axis: the smallest over its turns (only the turn
    of 360°/n unless ``every_turn``)."""
    unit = direction / np.linalg.norm(direction)
    chosen = turns(fold) if every_turn else turns(fold)[:1]
    return float(min(maps.score(rotvec_matrix(unit * 2 * np.pi * float(t))) for t in chosen))


def local_maxima(directions: Array, values: Array, radius_rad: float) -> NDArray[np.intp]:
    """Indices of the directions (hemisphere, an axis the same as its opposite) whose value is
    the largest within ``radius_rad`` of them, best first."""
    cosine = np.abs(directions @ directions.T)
    near = cosine >= np.cos(radius_rad)
    best = np.array([values[i] >= values[near[i]].max() for i in range(len(values))])
    found = np.flatnonzero(best)
    return found[np.argsort(-values[found], kind="stable")]


def perpendicular_basis(axis: Array) -> tuple[Array, Array]:
    """Two unit vectors ``u, v`` with ``(u, v, axis)`` right-handed and orthonormal."""
    a = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(helper, a)
    u /= np.linalg.norm(u)
    return u, np.cross(a, u)


def refine_axis(
    maps: SelfRotation, direction: Array, fold: int, step_deg: float, final_deg: float = 0.1
) -> tuple[Array, float]:
    """Pattern search on the sphere from ``direction``: the best n-fold axis nearby (steps in
    degrees, halved when no neighbour is better or after :data:`MOVES_PER_STEP` moves, until
    ``final_deg``) and its score by the turn of 360°/n."""
    best = direction / np.linalg.norm(direction)
    best_score = axis_score(maps, best, fold, every_turn=False)
    step, moves = np.radians(step_deg), 0
    while step >= np.radians(final_deg):
        u, v = perpendicular_basis(best)
        improved = False
        for du, dv in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)):
            trial = best + step * (du * u + dv * v)
            trial /= np.linalg.norm(trial)
            score = axis_score(maps, trial, fold, every_turn=False)
            if score > best_score:
                best, best_score, improved = trial, score, True
        moves += 1
        if not improved or moves >= MOVES_PER_STEP:
            step, moves = step / 2, 0
    return (best if best[2] >= 0 else -best), best_score


def best_perpendicular_two_fold(maps: SelfRotation, axis: Array) -> tuple[Array, float]:
    """The best 2-fold axis perpendicular to ``axis``: 2° steps over the half circle, then a
    search along the circle down to 0.05°."""
    u, v = perpendicular_basis(axis)
    angles = np.radians(np.arange(0.0, 180.0, 2.0))
    circle = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v
    values = maps.scores(rotvec_matrix(circle * np.pi))
    angle, step = float(angles[int(np.argmax(values))]), np.radians(1.0)
    best = float(values.max())
    while step >= np.radians(0.05):
        for trial in (angle - step, angle + step):
            d = np.cos(trial) * u + np.sin(trial) * v
            score = maps.score(rotvec_matrix(d * np.pi))
            if score > best:
                angle, best = trial, score
        step /= 2
    return np.cos(angle) * u + np.sin(angle) * v, best
