"""What Align 3D Maps tells its user: the log, the figures, the report, the progress bars."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from engine.diagnostics import (
    difference_map,
    is_ambiguous,
    plot_difference_slices,
    plot_fsc,
    plot_overlay_slices,
)
from engine.pairwise import VolumeOutcome
from engine.report import write_report
from slots.mrc import MapData, read_map, write_map

SEARCH_STAGES = 5


def _matrix_lines(name: str, matrix: np.ndarray) -> list[str]:
    rows = [" ".join(f"{v: .6f}" for v in row) for row in matrix]
    return (
        [f"  {name} = [" + rows[0]]
        + [" " * (len(name) + 6) + r for r in rows[1:-1]]
        + [" " * (len(name) + 6) + rows[-1] + "]"]
    )


def log_alignment(log: Callable[[str], None], index: int, record: Mapping[str, Any]) -> list[str]:
    """Log one volume's alignment (numbers as in result.json); returns its warnings."""
    rotation = np.asarray(record["rotation"])
    shift = record["shift_A"]
    lines = [f"volume {index}:"]
    lines += _matrix_lines("rotation R", rotation)
    lines.append("  translation t (Å) = [" + ", ".join(f"{v:.6f}" for v in shift) + "]")
    lines.append(f"  hand flipped: {'yes' if record['hand_flipped'] else 'no'}")
    lines += _matrix_lines("matrix [[R F^flip, t], [0, 1]]", np.asarray(record["matrix"]))
    alt = record["alternative_score"]
    lines.append(
        f"  score (NCC) = {record['score']:.6f}; best clearly different alternative = "
        + ("none" if alt is None else f"{alt:.6f}")
    )
    before, after = record["fsc_0143_before_A"], record["fsc_0143_A"]
    lines.append(f"  FSC 0.143 against the reference: before {before} Å, after {after} Å")
    lines.append(f"  time {record['seconds']:.2f} s")
    for line in lines:
        log(line)
    warnings = []
    if is_ambiguous(record["score"], alt):
        warnings.append(
            f"volume {index}: ambiguous alignment: a clearly different alternative scores "
            f"{alt:.4f} against {record['score']:.4f} (a symmetric or pseudo-symmetric map? "
            "any symmetry mate is then equally right)"
        )
    for w in warnings:
        log(f"  WARNING: {w}")
    return warnings


def volume_figures(
    reference: MapData, outcome: VolumeOutcome, folder: Path, lowpass_A: float, index: int
) -> list[Path]:
    """FSC plot, difference-map slices (and the difference map itself), overlay slices."""
    aligned = read_map(outcome.files["map"]).data
    p = float(reference.voxel_size_A[0])
    diff = difference_map(reference.data, aligned, p, lowpass_A)
    write_map(folder / "difference_map.mrc", diff, reference.voxel_size_A, reference.header)
    label = f"volume {index}"
    return [
        plot_fsc(
            outcome.fsc_after,
            outcome.fsc_before,
            folder / "fsc.png",
            f"FSC of {label} against the reference",
        ),
        plot_difference_slices(
            diff,
            folder / "difference_slices.png",
            f"{label}: aligned - reference, low-passed to {lowpass_A:g} Å",
        ),
        plot_overlay_slices(
            reference.data,
            aligned,
            folder / "overlay_slices.png",
            f"{label}: reference magenta, aligned green",
        ),
    ]


def describe_inputs(inputs: Mapping[str, Any]) -> dict[str, str]:
    """Slot -> its files, for the report."""
    out = {}
    for slot, value in inputs.items():
        items = value if isinstance(value, list) else [(None, value)]
        texts = []
        for index, payload in items:
            data = payload.model_dump(exclude_none=True, exclude={"kind"})
            if "volumes" in data:
                text = "; ".join(str(v["map"]) for v in data["volumes"])
            else:
                text = ", ".join(f"{k}: {v}" for k, v in data.items())
            texts.append(text if index is None else f"#{index} {text}")
        out[slot] = " | ".join(texts)
    return out


def job_report(
    workdir: Path,
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    figures: Mapping[int, Sequence[Path]],
    warnings: Sequence[str],
) -> Path:
    return write_report(
        workdir / "report.html",
        "Align 3D Maps",
        params,
        describe_inputs(inputs),
        records,
        figures,
        warnings,
    )


@contextmanager
def progress_bars(count: int, quiet: bool) -> Iterator[tuple[tqdm, Callable[[], tqdm]]]:
    """A bar over volumes and, per volume, one over the search stages; silent when ``quiet``
    or when stderr is not a terminal (logs and pipelines get clean lines)."""
    disable = quiet or not sys.stderr.isatty()
    volumes = tqdm(total=count, desc="volumes", unit="vol", disable=disable, position=0)

    def stages() -> tqdm:
        return tqdm(total=SEARCH_STAGES, desc="  search", leave=False, disable=disable, position=1)

    try:
        yield volumes, stages
    finally:
        volumes.close()
