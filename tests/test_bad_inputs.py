"""A battery of bad inputs: each gets exit code 2, a message naming the culprit, no traceback,
nothing written, and the inputs unchanged."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
import starfile

from align3d.engine.cli import main
from align3d.engine.exit_codes import Exit
from align3d.slots.mrc import read_map, write_map
from tests.conftest import data_dir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REF, MOV = "ref.mrc", "mov.mrc"


def align(inputs: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"job": "align_3d_maps", "params": params, "inputs": inputs}


def with_particles(particles: dict[str, Any]) -> dict[str, Any]:
    """One volume with its particles (``particles_1``), particle update on."""
    return align(
        {"reference_map": {"map": REF}, "maps_to_align": [{"map": MOV}], "particles_1": particles},
        update_particle_alignments=True,
    )


def with_mask_1() -> dict[str, Any]:
    """One volume with its own mask ``m.mrc`` (``mask_1``), mask inputs on."""
    return align(
        {
            "reference_map": {"map": REF},
            "maps_to_align": [{"map": MOV}],
            "mask_1": {"path": "m.mrc"},
        },
        create_mask_inputs=True,
    )


def basic(**params: Any) -> dict[str, Any]:
    return align({"reference_map": {"map": REF}, "maps_to_align": [{"map": MOV}]}, **params)


def _mrc_bytes(folder: Path) -> bytes:
    return (folder / MOV).read_bytes()


def _write_raw(path: Path, data: np.ndarray, voxel: float | None = 2.8) -> None:
    """Write a (deliberately bad) map as it is; mrcfile's warnings about it are expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with mrcfile.new(path, overwrite=True) as m:
            m.set_data(np.asarray(data, dtype=np.float32))
            if voxel is not None:
                m.voxel_size = voxel


def _set_image_stack(path: Path) -> None:
    """Mark an MRC file as a stack of images (space group 0), as particle stacks are."""
    with mrcfile.mmap(path, mode="r+", permissive=True) as m:
        m.header.ispg = 0


def _mov(folder: Path) -> np.ndarray:
    return read_map(folder / MOV).data


def _star(folder: Path, name: str, edit: Callable[[dict], None]) -> str:
    blocks = starfile.read(data_dir() / "particles" / "relion31.star", always_dict=True)
    edit(blocks)
    starfile.write(blocks, folder / name)
    return name


def _drop_rot(blocks: dict) -> None:
    blocks["particles"] = blocks["particles"].drop(columns=["rlnAngleRot"])


def _pixel_origins(blocks: dict) -> None:
    names = {"rlnOriginXAngst": "rlnOriginX", "rlnOriginYAngst": "rlnOriginY"}
    blocks["particles"] = blocks["particles"].rename(columns=names)


def _relion30(blocks: dict) -> None:
    blocks.pop("optics")
    _pixel_origins(blocks)


# each case: (id, setup(folder) -> spec or raw text, substring expected in the message)
Setup = Callable[[Path], Any]
CASES: list[tuple[str, Setup, str]] = [
    # --- documents and parameters
    ("not-json", lambda d: '{"job": "align_3d_maps",', "not valid JSON"),
    ("json-array", lambda d: [1, 2], "$"),
    ("unknown-top-key", lambda d: {**basic(), "jbo": 1}, "unknown key 'jbo'"),
    ("unknown-job", lambda d: {**basic(), "job": "align_3d_mapz"}, "align_3d_mapz"),
    ("unknown-param", lambda d: basic(max_shfit_A=3), "max_shfit_A"),
    ("param-wrong-type", lambda d: basic(max_shift_A="far"), "max_shift_A"),
    ("stringly-bool", lambda d: basic(check_both_chiralities="yes"), "check_both_chiralities"),
    ("angle-out-of-range", lambda d: basic(max_search_angle_deg=200), "max_search_angle_deg"),
    ("negative-lowpass", lambda d: basic(lowpass_resolution_A=-5), "lowpass_resolution_A"),
    ("negative-shift", lambda d: basic(max_shift_A=-1), "max_shift_A"),
    (
        "unknown-slot",
        lambda d: align(
            {
                "reference_map": {"map": REF},
                "maps_to_align": [{"map": MOV}],
                "reference_maks": {"path": "m.mrc"},
            }
        ),
        "reference_maks",
    ),
    ("missing-reference", lambda d: align({"maps_to_align": [{"map": MOV}]}), "reference_map"),
    (
        "group-and-individual",
        lambda d: align(
            {
                "reference_map": {"map": REF},
                "maps_to_align": [{"map": MOV}],
                "maps_to_align_group": {"volumes": [{"map": MOV}]},
            }
        ),
        "maps_to_align",
    ),
    ("nothing-to-align", lambda d: align({"reference_map": {"map": REF}}), "nothing to align"),
    (
        "per-volume-without-volume",
        lambda d: align(
            {
                "reference_map": {"map": REF},
                "maps_to_align": [{"map": MOV}],
                "particles_3": {"path": "p.star"},
            },
            update_particle_alignments=True,
        ),
        "particles_3",
    ),
    (
        "duplicate-index",
        lambda d: align(
            {
                "reference_map": {"map": REF},
                "maps_to_align": [{"map": MOV, "index": 2}, {"map": MOV, "index": 2}],
            }
        ),
        "index 2",
    ),
    (
        "volume-typo-key",
        lambda d: align(
            {"reference_map": {"map": REF, "mapp": "x"}, "maps_to_align": [{"map": MOV}]}
        ),
        "mapp",
    ),
    (
        "bad-from",
        lambda d: align({"reference_map": {"from": "J1"}, "maps_to_align": [{"map": MOV}]}),
        "JOB.SLOT",
    ),
    (
        "from-unknown-job",
        lambda d: {
            "jobs": {
                "a": basic(),
                "b": align(
                    {"reference_map": {"from": "x.volume"}, "maps_to_align": [{"map": MOV}]}
                ),
            }
        },
        "no job named 'x'",
    ),
    (
        "type-mismatch",
        lambda d: align({"reference_map": {"path": "m.mrc"}, "maps_to_align": [{"map": MOV}]}),
        "reference_map",
    ),
    (
        "two-references",
        lambda d: align(
            {"reference_map": [{"map": REF}, {"map": REF}], "maps_to_align": [{"map": MOV}]}
        ),
        "takes one",
    ),
    (
        "cycle",
        lambda d: {
            "jobs": {
                "a": align(
                    {
                        "reference_map": {"from": "b.reference_volume"},
                        "maps_to_align": [{"map": MOV}],
                    }
                ),
                "b": align(
                    {
                        "reference_map": {"from": "a.reference_volume"},
                        "maps_to_align": [{"map": MOV}],
                    }
                ),
            }
        },
        "cycle",
    ),
    (
        "negative-voxel-override",
        lambda d: align(
            {"reference_map": {"map": REF, "voxel_size_A": -1}, "maps_to_align": [{"map": MOV}]}
        ),
        "voxel_size_A",
    ),
    (
        "wrong-mask-count",
        lambda d: align(
            {
                "reference_map": {"map": REF},
                "maps_to_align_group": {"volumes": [{"map": MOV}, {"map": MOV}, {"map": MOV}]},
                "masks_all_classes": [{"path": "a.mrc"}, {"path": "b.mrc"}],
            },
            create_mask_inputs=True,
        ),
        "masks_all_classes",
    ),
    (
        "particles-not-star-or-cs",
        lambda d: with_particles({"path": "p.txt"}),
        "particles_1",
    ),
    # --- map files
    (
        "reference-missing",
        lambda d: align({"reference_map": {"map": "nothere.mrc"}, "maps_to_align": [{"map": MOV}]}),
        "nothere.mrc",
    ),
    (
        "moving-missing",
        lambda d: align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "gone.mrc"}]}),
        "gone.mrc",
    ),
    (
        "not-mrc",
        lambda d: (
            (d / "text.mrc").write_text("hello"),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "text.mrc"}]}),
        )[1],
        "text.mrc",
    ),
    (
        "truncated",
        lambda d: (
            (d / "cut.mrc").write_bytes(_mrc_bytes(d)[:-4000]),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "cut.mrc"}]}),
        )[1],
        "truncated",
    ),
    (
        "unsupported-mode",
        lambda d: (
            (d / "mode.mrc").write_bytes(
                _mrc_bytes(d)[:12] + struct.pack("<i", 5) + _mrc_bytes(d)[16:]
            ),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "mode.mrc"}]}),
        )[1],
        "mode",
    ),
    (
        "nan",
        lambda d: (
            _write_raw(d / "nan.mrc", np.where(_mov(d) > 0.5, np.nan, _mov(d))),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "nan.mrc"}]}),
        )[1],
        "NaN",
    ),
    (
        "inf",
        lambda d: (
            _write_raw(d / "inf.mrc", np.where(_mov(d) > 0.5, np.inf, _mov(d))),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "inf.mrc"}]}),
        )[1],
        "infinite",
    ),
    (
        "constant",
        lambda d: (
            _write_raw(d / "flat.mrc", np.ones((20, 20, 20))),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "flat.mrc"}]}),
        )[1],
        "empty map",
    ),
    (
        "2d-image",
        lambda d: (
            _write_raw(d / "img.mrc", _mov(d)[20]),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "img.mrc"}]}),
        )[1],
        "not a volume",
    ),
    (
        "image-stack",
        lambda d: (
            _write_raw(d / "stack.mrcs", _mov(d)),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "stack.mrcs"}]}),
        )[1],
        "image stack",
    ),
    # --- a file of another kind given as a map: what it is, at the element that names it
    (
        "star-file-as-map",
        lambda d: (
            (d / "run_data.star").write_text(
                "\ndata_particles\n\nloop_\n_rlnImageName #1\n_rlnAngleRot #2\n1@s.mrcs 10.0\n"
            ),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "run_data.star"}]}),
        )[1],
        "$.inputs.maps_to_align[0].map: [unreadable_map] ",
    ),
    (
        "star-file-as-map-says-what",
        lambda d: (
            (d / "run_data.star").write_text("data_optics\nloop_\n_rlnOpticsGroup #1\n1\n"),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "run_data.star"}]}),
        )[1],
        "run_data.star: a STAR file (RELION metadata), not a map: give the map itself",
    ),
    (
        "cs-file-as-map",
        lambda d: (
            np.save(d / "p.npy", np.zeros(3, dtype=[("uid", "<u8")])),
            (d / "p.npy").rename(d / "P1_J5_particles.cs"),
            align(
                {"reference_map": {"map": "P1_J5_particles.cs"}, "maps_to_align": [{"map": MOV}]}
            ),
        )[2],
        "P1_J5_particles.cs: a NumPy array file (.npy format, as CryoSPARC's .cs",
    ),
    (
        "gzip-map",
        lambda d: (
            (d / "mov.mrc.gz").write_bytes(gzip.compress(_mrc_bytes(d))),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "mov.mrc.gz"}]}),
        )[1],
        "mov.mrc.gz: a gzip-compressed file; uncompress it first (gunzip -k mov.mrc.gz)",
    ),
    (
        "model-as-map",
        lambda d: (
            (d / "model.pdb").write_text(
                "ATOM      1  N   MET A   1      11.104   6.134  -6.504  1.00  0.00           N\n"
            ),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "model.pdb"}]}),
        )[1],
        "model.pdb: an atomic model (PDB or mmCIF), not a map",
    ),
    (
        "job-spec-as-map",
        lambda d: (
            (d / "other_spec.json").write_text(json.dumps(basic())),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "other_spec.json"}]}),
        )[1],
        "other_spec.json: a JSON file, not a map: give the map itself",
    ),
    (
        "empty-file-as-map",
        lambda d: (
            (d / "empty.mrc").write_bytes(b""),
            align({"reference_map": {"map": "empty.mrc"}, "maps_to_align": [{"map": MOV}]}),
        )[1],
        "error: $.inputs.reference_map.map: [unreadable_map] ",
    ),
    (
        "header-cut-off",
        lambda d: (
            (d / "head.mrc").write_bytes(_mrc_bytes(d)[:600]),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "head.mrc"}]}),
        )[1],
        "head.mrc: only 600 bytes, shorter than an MRC header (1024 bytes)",
    ),
    (
        "image-stack-named-mrc",
        lambda d: (
            _write_raw(d / "particles.mrc", np.random.default_rng(0).random((90, 20, 20))),
            _set_image_stack(d / "particles.mrc"),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "particles.mrc"}]}),
        )[2],
        "particles.mrc: an image stack (90 images of 20 x 20 pixels), not a volume",
    ),
    (
        "second-volume-bad-half-map",
        lambda d: align(
            {
                "reference_map": {"map": REF},
                "maps_to_align": [{"map": MOV}, {"map": MOV, "map_half_A": "missing_half.mrc"}],
            }
        ),
        "error: $.inputs.maps_to_align[1].map_half_A: [unreadable_map] ",
    ),
    (
        "tiny-map",
        lambda d: (
            _write_raw(d / "tiny.mrc", np.random.default_rng(0).random((3, 3, 3))),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "tiny.mrc"}]}),
        )[1],
        "tiny.mrc",
    ),
    (
        "voxel-size-zero",
        lambda d: (
            _write_raw(d / "nopix.mrc", _mov(d), voxel=None),
            align({"reference_map": {"map": REF}, "maps_to_align": [{"map": "nopix.mrc"}]}),
        )[1],
        "voxel_size_A",
    ),
    (
        "half-map-other-grid",
        lambda d: (
            _write_raw(d / "half.mrc", _mov(d)[:40, :40, :40]),
            align(
                {
                    "reference_map": {"map": REF},
                    "maps_to_align": [{"map": MOV, "map_half_A": "half.mrc"}],
                }
            ),
        )[1],
        "half.mrc",
    ),
    # --- masks
    (
        "mask-other-grid",
        lambda d: (
            _write_raw(d / "m.mrc", np.ones((30, 30, 30))),
            with_mask_1(),
        )[1],
        "does not match",
    ),
    (
        "mask-out-of-range",
        lambda d: (
            _write_raw(d / "m.mrc", 5 * (_mov(d) > 0.1)),
            with_mask_1(),
        )[1],
        "m.mrc: mask values run from 0 to 5, outside [0, 1]",
    ),
    (
        "mask-empty",
        lambda d: (
            _write_raw(d / "m.mrc", np.zeros((44, 44, 44))),
            with_mask_1(),
        )[1],
        "m.mrc: the mask is empty",
    ),
    (
        "reference-mask-other-grid",
        lambda d: (
            _write_raw(d / "rm.mrc", np.ones((30, 30, 30))),
            align(
                {
                    "reference_map": {"map": REF},
                    "reference_mask": {"path": "rm.mrc"},
                    "maps_to_align": [{"map": MOV}],
                }
            ),
        )[1],
        "rm.mrc",
    ),
    (
        "volume-mask-negative",
        lambda d: (
            _write_raw(d / "m.mrc", -(_mov(d) > 0.1).astype(float)),
            align(
                {"reference_map": {"map": REF}, "maps_to_align": [{"map": MOV, "mask": "m.mrc"}]}
            ),
        )[1],
        "outside [0, 1]",
    ),
    # --- particles
    (
        "particles-missing",
        lambda d: with_particles({"path": "none.star"}),
        "none.star",
    ),
    (
        "particles-without-poses",
        lambda d: with_particles(
            {
                "path": _star(
                    d,
                    "np.star",
                    _drop_rot,
                )
            }
        ),
        "rlnAngleRot",
    ),
    (
        "cs-without-alignments",
        lambda d: (
            np.save(d / "p.npy", np.zeros(3, dtype=[("uid", "<u8")])),
            (d / "p.npy").rename(d / "p.cs"),
            with_particles({"path": "p.cs"}),
        )[2],
        "alignments3D/pose",
    ),
    (
        "star-that-is-cs",
        lambda d: (
            (d / "fake.star").write_bytes(b"\x93NUMPY\x01\x00" + b"\0" * 64),
            with_particles({"path": "fake.star"}),
        )[1],
        "fake.star",
    ),
    (
        "class-without-volume",
        lambda d: align(
            {
                "reference_map": {"map": REF},
                "maps_to_align_group": {"volumes": [{"map": MOV}]},
                "particles_all": {
                    "path": _star(
                        d, "cls.star", lambda b: b["particles"].__setitem__("rlnClassNumber", 4)
                    )
                },
            },
            update_particle_alignments=True,
        ),
        "class(es) [4]",
    ),
    (
        "relion31-pixel-origins",
        lambda d: with_particles(
            {
                "path": _star(
                    d,
                    "px.star",
                    _pixel_origins,
                )
            }
        ),
        "rlnOriginXAngst",
    ),
    (
        "relion30-without-pixel-size",
        lambda d: with_particles(
            {
                "path": _star(
                    d,
                    "r30.star",
                    _relion30,
                )
            }
        ),
        "relion_convert_star",
    ),
]


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    ref = read_map(FIXTURES / "small_reference.mrc")
    mov = read_map(FIXTURES / "small_moving.mrc")
    write_map(d / REF, ref.data, ref.voxel_size_A)
    write_map(d / MOV, mov.data, mov.voxel_size_A)
    return d


def test_the_battery_has_at_least_40_distinct_cases() -> None:
    assert len({name for name, _, _ in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize(("name", "setup", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    setup: Setup,
    expected: str,
    shared_data: Path,
) -> None:
    spec = setup(folder)
    spec_path = folder / "spec.json"
    spec_path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    before = _hashes(folder)
    out = folder.parent / "out"
    code = main(["run", str(spec_path), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    err = captured.err
    assert code == Exit.INVALID_INPUT, err
    assert expected in err, err
    assert "Traceback" not in err + captured.out
    assert not out.exists(), "nothing is written for an invalid job"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["in"], "no lock or temporary left"
    assert _hashes(folder) == before, "inputs are never modified"
