"""Point groups in RELION's conventions: the same operators RELION itself prints, and the mate
closest to the identity."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.symmetry import SymmetryError, closest_mate, mates, point_group
from tests.relion_tools import require_relion, run_relion

ORDERS = {"C1": 1, "C4": 4, "C7": 7, "D2": 4, "D7": 14, "T": 12, "O": 24, "I": 60}


def relion_operators(name: str, cwd: Path) -> list[np.ndarray]:
    """The matrices ``relion_refine --sym NAME --print_symmetry_ops`` prints."""
    text = run_relion(["relion_refine", "--sym", name, "--print_symmetry_ops"], cwd).stdout
    blocks = re.split(r"R\(\d+\)=", text)[1:]
    out = []
    for block in blocks:
        numbers = re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", block.split("Euler")[0])
        out.append(np.array([float(v) for v in numbers[:9]]).reshape(3, 3))
    return out


@pytest.mark.parametrize("name", ["C4", "C7", "D2", "D7", "T", "O", "I", "I1", "I2", "I3", "I4"])
def test_operators_are_relions(name: str, tmp_path: Path) -> None:
    require_relion("relion_refine")
    theirs = relion_operators(name, tmp_path)
    ours = point_group(name).operators
    assert len(theirs) == len(ours)
    for matrix in theirs:  # the same set (RELION prints about 5 significant digits)
        assert min(np.abs(matrix - s).max() for s in ours) < 2e-4, (name, matrix)


def test_groups_are_groups_of_proper_rotations() -> None:
    for name, order in ORDERS.items():
        group = point_group(name)
        assert group.order == order
        assert np.allclose(group.operators[0], np.eye(3))
        for s in group.operators:
            assert np.isclose(np.linalg.det(s), 1.0)
            for t in group.operators:  # closed under products
                assert min(np.abs(s @ t - u).max() for u in group.operators) < 1e-9


def test_names_as_relion_and_cryosparc_write_them() -> None:
    assert point_group("c4").name == "C4" and point_group("i").name == "I2"
    assert point_group("D7").order == 14
    for bad, text in (("C4v", "hand"), ("Oh", "hand"), ("X3", "unknown"), ("C100", "unknown")):
        with pytest.raises(SymmetryError, match=text):
            point_group(bad)


def test_the_mate_closest_to_the_identity_is_chosen() -> None:
    group = point_group("C4")
    near = Rotation.from_rotvec([0.1, 0.05, 0.2]).as_matrix()  # 13°
    far = group.operators[2] @ near  # the same solution seen through a 2-fold about z
    chosen = closest_mate(RigidTransform(far, [1.0, 2.0, 3.0]), group)
    assert np.allclose(chosen.transform.rotation, near, atol=1e-9)
    # the shift turns with the rotation: S t, so that the volume lands in the same place
    s_back = group.operators[2].T
    assert np.allclose(chosen.transform.shift_A, s_back @ [1.0, 2.0, 3.0])
    assert chosen.angle_deg == min(m.angle_deg for m in mates(RigidTransform(far), group))


def test_volumes_of_one_frame_take_one_mate_even_across_a_boundary() -> None:
    from align3d.jobs.align_3d_maps.consistency import choose_mates

    group = point_group("C4")
    # rotations about z by 44° and 46°: alone, each would take a different mate (44° and -44°)
    a = RigidTransform(Rotation.from_rotvec([0, 0, np.radians(44)]).as_matrix())
    b = RigidTransform(Rotation.from_rotvec([0, 0, np.radians(46)]).as_matrix())
    assert closest_mate(a, group).index != closest_mate(b, group).index
    choice = choose_mates(
        {1: closest_mate(a, group).transform, 2: closest_mate(b, group).transform}, group
    )
    assert choice.largest_rotation_deg == pytest.approx(2.0, abs=1e-6)  # in register
    assert choice.changed and choice.largest_pair == (1, 2)
    # a volume of another frame keeps its own closest mate
    c = RigidTransform(Rotation.from_rotvec([1.2, 0, 0]).as_matrix())
    apart = choose_mates({1: a, 3: closest_mate(c, group).transform}, group)
    assert apart.changed == [] and apart.largest_rotation_deg > 60
