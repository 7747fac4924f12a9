"""What a file given as a map is when it is not one, from its first bytes: a STAR file, a
CryoSPARC ``.cs`` file (NumPy ``.npy`` format), an atomic model, a job spec, other text, a
compressed file, an HDF5 file, an empty or cut-off file. Each answer says what to give instead,
so that a map slot given the wrong file gets a sentence about that file, not a complaint about
an MRC mode (plain Python: importable without numpy or mrcfile)."""

from __future__ import annotations

import re
from pathlib import Path

HEAD_BYTES = 8192
"""How much of the file is looked at."""

MRC_HEADER_BYTES = 1024

GIVE_A_MAP = "give the map itself (an MRC file: .mrc or .map)"
PARTICLES_GO = (
    "particles go to a particles input (particles_N or particles_all, with "
    "update_particle_alignments on; or align3d apply --particles)"
)

_COMPRESSED = {
    b"\x1f\x8b": ("gzip", "gunzip -k"),
    b"BZh": ("bzip2", "bunzip2 -k"),
    b"\xfd7zXZ\x00": ("xz", "unxz -k"),
    b"(\xb5/\xfd": ("zstd", "unzstd"),
    b"PK\x03\x04": ("zip", "unzip"),
}


def _text(head: bytes) -> str | None:
    """``head`` as text, or None when it holds binary data."""
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of the block
            return None
        text = head[: exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text)
    return text if text and printable >= 0.95 * len(text) else None


def _text_kind(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()]
    starts = {line.split(maxsplit=1)[0] for line in lines if line}
    if "_atom_site.group_PDB" in text or "_atom_site.id" in text or starts & {"ATOM", "HETATM"}:
        return (
            "an atomic model (PDB or mmCIF), not a map: align3d aligns maps; "
            f"{GIVE_A_MAP} (a model fitted into a map moves with it: align3d apply --model)"
        )
    if any(re.match(r"data_\S*$", line) for line in lines) or "_rln" in text:
        what = "particles" if "_rlnImageName" in text else "metadata"
        return (
            f"a STAR file (RELION {what}), not a map: {GIVE_A_MAP}, e.g. a Refine3D job's "
            f"run_class001.mrc; {PARTICLES_GO}"
        )
    if text.lstrip().startswith(("{", "[")):
        return (
            f"a JSON file, not a map: {GIVE_A_MAP} (a job spec or workflow is run with "
            "align3d run SPEC --out DIR)"
        )
    return f"a text file, not a map: {GIVE_A_MAP}"


def not_a_map(path: Path) -> str | None:
    """Why ``path`` (a file that exists) is not an MRC map, when its first bytes say so: what
    it is and what to give instead, after the file's name; None when it may be a map."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head:
        return f"{path}: the file is empty (0 bytes); {GIVE_A_MAP}, or copy it again"
    for magic, (kind, command) in _COMPRESSED.items():
        if head.startswith(magic):
            return (
                f"{path}: a {kind}-compressed file; uncompress it first ({command} {path.name}) "
                "and give the map it holds"
            )
    if head.startswith(b"\x93NUMPY"):
        return (
            f"{path}: a NumPy array file (.npy format, as CryoSPARC's .cs particle files are), "
            f"not a map: {GIVE_A_MAP}; {PARTICLES_GO}"
        )
    if head.startswith(b"\x89HDF"):
        return f"{path}: an HDF5 file, not an MRC map: convert it to MRC and give that"
    text = _text(head)
    if text is not None:
        return f"{path}: {_text_kind(text)}"
    if len(head) < MRC_HEADER_BYTES:
        return (
            f"{path}: only {len(head)} bytes, shorter than an MRC header ({MRC_HEADER_BYTES} "
            "bytes): the file is cut off or not a map; copy it again"
        )
    return None
