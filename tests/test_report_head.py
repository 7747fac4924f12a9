"""The top of report.html and its figures (issue 26, item 9): the align3d version, date and
command, the parameters that decide the answer and the symmetry mate chosen with its score; an
FSC at the grid's Nyquist says so; the FSC legend hides no curve, the overlay's title no panel
label; difference and overlay slices are cropped to the maps' density. Checked in the DOM that
headless Chromium builds and on the figures matplotlib lays out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from align3d.engine.alignment.fsc import FSCCurve, fsc, last_shell_A
from align3d.engine.alignment.geometry import RigidTransform
from align3d.engine.alignment.resample import GridMove, resample_map
from align3d.engine.exit_codes import Exit
from align3d.engine.version import align3d_version
from align3d.jobs.align_3d_maps.crop import Window, content_windows
from align3d.jobs.align_3d_maps.demo import protein_like_map
from align3d.jobs.align_3d_maps.figures import fsc_figure, overlay_figure, resolution_label
from align3d.jobs.align_3d_maps.slices import central_slices
from align3d.schemas.documents import AlignmentDetails, ResultManifest
from align3d.slots.mrc import write_map
from tests.browser import rendered_text
from tests.helpers import cli


@pytest.fixture(scope="module")
def c2_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A C2-symmetric map aligned onto itself with ``symmetry`` C2, through the command line."""
    tmp = tmp_path_factory.mktemp("c2")
    base = protein_like_map((40, 40, 40), 3.0, seed=3)
    rz180 = RigidTransform(np.diag([-1.0, -1.0, 1.0]))
    write_map(
        tmp / "sym.mrc",
        base
        + resample_map(
            base,
            GridMove(transform=rz180, in_voxel_A=3.0, out_shape=base.shape, out_voxel_A=3.0),
        ),
        3.0,
    )
    spec = {
        "job": "align_3d_maps",
        "params": {"max_shift_A": 9, "symmetry": "C2", "lowpass_resolution_A": 12},
        "inputs": {"reference_map": {"map": "sym.mrc"}, "maps_to_align": [{"map": "sym.mrc"}]},
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    proc = cli("run", str(tmp / "spec.json"), "--out", str(tmp / "job"))
    assert proc.returncode == Exit.OK, proc.stderr
    return tmp / "job"


def test_the_top_names_version_date_command_and_what_decided(c2_job: Path, tmp_path: Path) -> None:
    manifest = ResultManifest.model_validate_json((c2_job / "result.json").read_text())
    text = rendered_text(c2_job / "report.html", tmp_path / "profile")
    head = text[: text.index("Alignments")]  # all of it above the alignments table
    assert f"align3d version {align3d_version()}" in head
    assert re.search(r"date \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", head)
    assert f"command {' '.join(manifest.command)}" in head  # the command result.json records
    assert manifest.command[1:3] == ["run", str(c2_job.parent / "spec.json")]
    for shown in (
        "max_shift_A Maximum shift (Å) 9.0",
        "lowpass_resolution_A Low-pass resolution (Å) 12.0",
        "max_search_angle_deg Maximum search angle (°) 180.0",
        "check_both_chiralities Check both hands on",
        "symmetry Symmetry C2",
    ):
        assert shown in head, shown
    # the mate chosen and its score, as result.json has them (before: only in job.log)
    (record,) = manifest.details_as(AlignmentDetails).alignments
    assert record.symmetry_lowest_mate_score is not None
    row = (
        f"1 {record.rotation_angle_deg:.2f} {record.score:.4f} "
        f"{record.symmetry_lowest_mate_score:.4f}"
    )
    assert "Symmetry C2" in head and row in head
    assert record.rotation_angle_deg < 1.0  # of the two mates, the one closest to the identity


def test_a_resolution_at_nyquist_says_so(c2_job: Path, tmp_path: Path) -> None:
    # a map aligned onto itself agrees to the last shell: the FSC bound is the grid's
    manifest = ResultManifest.model_validate_json((c2_job / "result.json").read_text())
    (record,) = manifest.details_as(AlignmentDetails).alignments
    nyquist = last_shell_A((40, 40, 40), 3.0)
    assert record.fsc_0143_A == pytest.approx(nyquist)
    text = rendered_text(c2_job / "report.html", tmp_path / "profile")
    assert f"≤ {nyquist:.1f} (Nyquist)" in text
    log = (c2_job / "job.log").read_text()
    assert f"after {record.fsc_0143_A} Å (the grid's Nyquist: the curve never falls below" in log
    flat = FSCCurve(np.linspace(0, 1 / nyquist, 21), np.ones(21), np.ones(21, dtype=np.int64))
    assert resolution_label(flat) == f"≤ {nyquist:.1f} Å (Nyquist)"
    falling = FSCCurve(flat.frequency, np.linspace(1.0, -0.1, 21), flat.count)
    assert resolution_label(falling) == f"{falling.resolution_at(0.143):.1f} Å"
    assert "Nyquist" not in resolution_label(falling)


def test_last_shell_is_the_curves_last_shell() -> None:
    rng = np.random.default_rng(0)
    for shape in [(32, 32, 32), (33, 33, 33), (30, 36, 41)]:
        a = rng.normal(size=shape).astype(np.float32)
        assert last_shell_A(shape, 1.7) == pytest.approx(fsc(a, a, voxel_A=1.7).nyquist_A)


def _boxes_overlap(a, b) -> bool:  # type: ignore[no-untyped-def]
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_fsc_legend_covers_no_curve() -> None:
    freq = np.linspace(0, 0.25, 33)
    after = FSCCurve(freq, np.ones(33), np.ones(33, dtype=np.int64))  # high everywhere
    before = FSCCurve(freq, np.exp(-freq / 0.01), after.count)  # low left, as before alignment
    fig = fsc_figure(after, before, "FSC")
    fig.canvas.draw()
    (legend,) = fig.legends
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert not _boxes_overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[0] == "aligned: ≤ 4.0 Å (Nyquist)"
    assert labels[1].startswith("before alignment: ")


def test_overlay_title_clears_the_panel_labels() -> None:
    planes = central_slices(protein_like_map((40, 40, 40), 3.0, seed=1))
    fig = overlay_figure(planes, planes, "volume 1: reference magenta, aligned green")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        assert not _boxes_overlap(title, ax.title.get_window_extent(renderer)), ax.title
        assert not _boxes_overlap(title, ax.get_window_extent(renderer))


def test_slices_are_cropped_to_the_density_with_a_margin() -> None:
    # a small molecule off-centre in a large, noisy box: each window holds the molecule's
    # density (found without the noise) with a margin of 10 % of the box, and little else
    box, margin = 96, 10
    clean = np.zeros((box, box, box), np.float32)
    clean[32:64, 30:62, 36:68] = protein_like_map((32, 32, 32), 2.0, seed=5)
    noise = np.random.default_rng(1).normal(0, 0.03 * float(clean.max()), clean.shape)
    windows = content_windows(central_slices(clean + noise))
    for name, plane in central_slices(clean).items():
        rows, cols = np.nonzero(plane > 0.05 * clean.max())
        window = windows[name]
        assert rows.min() - margin <= window.row_start <= rows.min() - margin + 2, (name, window)
        assert rows.max() + margin - 2 <= window.row_stop - 1 <= rows.max() + margin, name
        assert cols.min() - margin <= window.col_start <= cols.min() - margin + 2, name
        assert cols.max() + margin - 2 <= window.col_stop - 1 <= cols.max() + margin, name
    # an empty plane is shown whole
    empty = {"xy": np.zeros((50, 40), np.float32)}
    assert content_windows(empty)["xy"] == Window(0, 50, 0, 40)
