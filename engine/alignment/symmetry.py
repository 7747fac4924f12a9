"""Point groups in RELION's conventions, and the choice among the symmetry mates of a solution.

Names as RELION and CryoSPARC write them: ``C1`` (no symmetry), ``Cn``, ``Dn``, ``T``, ``O``,
``I`` (= ``I2``), ``I1``, ``I2``, ``I3``, ``I4``; case does not matter. Axes, as in RELION
(``relion_refine --sym G --print_symmetry_ops`` prints the same operators; a test checks it):

* ``Cn``: the n-fold along z.
* ``Dn``: the n-fold along z, a 2-fold along x (the others in the xy plane, 180°/n apart).
* ``T``: a 3-fold along z, a 2-fold along (0, √(2/3), √(1/3)).
* ``O``: 4-folds along x, y and z.
* ``I2`` (``I``): 2-folds along x, y and z, a 5-fold along (1, 0, φ)/|.|, in the xz plane.
  ``I1`` is I2 turned 90° about z; ``I3`` has a 5-fold along z and a 2-fold along y (I2 turned
  about y so that its 5-fold lies on z); ``I4`` is I3 turned 180° about z.

Axes pass through the box centre, the origin of align3d's coordinates (as RELION symmetrises
about voxel N // 2). Groups with mirrors or an inversion (Ci, Cs, CnV, CnH, Sn, DnV, DnH, Td,
Th, Oh, Ih) are not the symmetry of a chiral molecule and would change its hand: they are
refused.

A reference with symmetry ``G`` (``V(S y) = V(y)`` for every ``S`` in ``G``) makes every mate
``(S R, S t)`` of a solution ``(R, t)`` equally good: each moves the volume onto the same
reference. Of them, :func:`closest_mate` picks the one whose rotation is closest to the identity,
the smallest change of the volume and of its particles' poses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from align3d.engine.alignment.geometry import RigidTransform, rotation_angle_deg
from align3d.engine.alignment.params import symmetry_name
from align3d.slots.rotations import rotvec_matrix

PHI = (1.0 + np.sqrt(5.0)) / 2.0
_TOLERANCE = 1e-6


class SymmetryError(ValueError):
    """A symmetry name that is not a proper point group align3d knows (the message says why)."""


def _axis_rotation(axis: tuple[float, float, float], fold: int) -> NDArray[np.float64]:
    vector = np.asarray(axis, dtype=np.float64)
    return rotvec_matrix(vector / np.linalg.norm(vector) * (2 * np.pi / fold))


def _close(generators: list[NDArray[np.float64]]) -> list[NDArray[np.float64]]:
    """Every product of the generators (a finite group), identity first, in a fixed order."""
    found = [np.eye(3)]
    frontier = [np.eye(3)]
    while frontier:
        new = []
        for g in frontier:
            for h in generators:
                product = h @ g
                if not any(np.abs(product - f).max() < _TOLERANCE for f in found):
                    found.append(product)
                    new.append(product)
        frontier = new
    first, rest = found[0], found[1:]
    rest.sort(key=lambda m: (round(rotation_angle_deg(m), 6), tuple(np.round(m, 6).ravel())))
    return [first, *rest]


def _turned(operators: list[NDArray[np.float64]], q: NDArray[np.float64]) -> list[NDArray]:
    return [q @ s @ q.T for s in operators]


@cache
def _operators(name: str) -> tuple[NDArray[np.float64], ...]:
    z, x = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)
    kind, number = name[0], int(name[1:] or 0)
    if kind == "C":
        ops = _close([_axis_rotation(z, number)]) if number > 1 else [np.eye(3)]
    elif kind == "D":
        gens = [_axis_rotation(x, 2)] + ([_axis_rotation(z, number)] if number > 1 else [])
        ops = _close(gens)
    elif kind == "T":
        ops = _close([_axis_rotation(z, 3), _axis_rotation((0, np.sqrt(2 / 3), np.sqrt(1 / 3)), 2)])
    elif kind == "O":
        ops = _close([_axis_rotation((1, 1, 1), 3), _axis_rotation(z, 4)])
    else:  # icosahedral, I2 first
        i2 = _close(
            [
                _axis_rotation(z, 2),
                _axis_rotation((1, 0, PHI), 5),
                _axis_rotation((0, 1, PHI**2), 3),
            ]
        )
        tilt = np.arctan2(1.0, PHI)  # the 5-fold (1, 0, φ) lies this far from z, in xz
        to_i3 = rotvec_matrix([0.0, -tilt, 0.0])
        variants = {
            2: i2,
            1: _turned(i2, rotvec_matrix([0.0, 0.0, np.pi / 2])),
            3: _turned(i2, to_i3),
            4: _turned(_turned(i2, to_i3), rotvec_matrix([0.0, 0.0, np.pi])),
        }
        ops = _close(variants[number or 2])
    return tuple(np.array(o) for o in ops)


@dataclass(frozen=True)
class PointGroup:
    """A proper point group: its RELION name and its rotation matrices (identity first)."""

    name: str
    operators: tuple[NDArray[np.float64], ...]

    @property
    def order(self) -> int:
        return len(self.operators)


def point_group(name: str) -> PointGroup:
    """The point group called ``name`` (RELION / CryoSPARC spelling, any case)."""
    try:
        canonical = symmetry_name(name)
    except ValueError as exc:
        raise SymmetryError(str(exc)) from exc
    if canonical == "I":
        canonical = "I2"
    return PointGroup(canonical, _operators(canonical))


@dataclass(frozen=True)
class Mate:
    """One symmetry mate of a solution: its index in the group, the transform, and the angle
    of its rotation (degrees)."""

    index: int
    transform: RigidTransform
    angle_deg: float


def mates(transform: RigidTransform, group: PointGroup) -> list[Mate]:
    """Every mate ``(S R, S t)`` of ``transform``, in the group's order."""
    out = []
    for k, s in enumerate(group.operators):
        mate = RigidTransform(s @ transform.rotation, s @ transform.shift_A, transform.flip)
        out.append(Mate(k, mate, mate.angle_deg))
    return out


def closest_mate(transform: RigidTransform, group: PointGroup) -> Mate:
    """The mate whose rotation is closest to the identity (ties: the first in the group)."""
    return min(mates(transform, group), key=lambda m: (round(m.angle_deg, 9), m.index))


def distance_modulo(a: RigidTransform, b: RigidTransform, group: PointGroup) -> float:
    """The smallest angle (degrees) between the rotation of ``a`` and a mate of ``b``."""
    return min(rotation_angle_deg(a.rotation.T @ s @ b.rotation) for s in group.operators)
