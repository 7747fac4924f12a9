"""The parts of the global search: Wigner matrices, the rotation function, the shift search."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3d.engine.alignment.geometry import RigidTransform, small_rotation
from align3d.engine.alignment.refine import MovingSpline, ReferencePoints, refine
from align3d.engine.alignment.rotation_function import amplitude_rotation_function, wigner_small_d
from align3d.engine.alignment.translation import (
    best_shift,
    correlation_near_zero,
    correlation_side,
    padded_size,
    reference_spectrum,
)
from align3d.jobs.align_3d_maps.demo import protein_like_map


def test_wigner_d_is_orthogonal_and_matches_known_values() -> None:
    betas = np.array([0.0, 0.4, 1.3, np.pi])
    for degree in (1, 2, 7, 20):
        d = wigner_small_d(degree, betas)
        for mat in d:
            assert np.allclose(mat @ mat.T, np.eye(2 * degree + 1), atol=1e-10)
        assert np.allclose(d[0], np.eye(2 * degree + 1), atol=1e-10)
    d1 = wigner_small_d(1, np.array([0.4]))[0]
    b = 0.4
    # rows/cols m = -1, 0, 1 (Sakurai's convention)
    expected = np.array(
        [
            [(1 + np.cos(b)) / 2, np.sin(b) / np.sqrt(2), (1 - np.cos(b)) / 2],
            [-np.sin(b) / np.sqrt(2), np.cos(b), np.sin(b) / np.sqrt(2)],
            [(1 - np.cos(b)) / 2, -np.sin(b) / np.sqrt(2), (1 + np.cos(b)) / 2],
        ]
    )
    assert np.allclose(d1, expected)


def _amplitude_field(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    out = np.zeros(points.shape[:-1])
    for c in centres:
        for sign in (1, -1):  # centrosymmetric, like |F|
            out += np.exp(-((points - sign * c) ** 2).sum(-1) / (2 * 2.5**2))
    return out


def test_rotation_function_peaks_at_the_rotation() -> None:
    rng = np.random.default_rng(3)
    n = 48
    z, y, x = np.mgrid[0:n, 0:n, 0:n] - n // 2
    k = np.stack([x, y, z], -1).astype(float)
    centres = rng.normal(size=(10, 3)) * 8
    truth = Rotation.random(random_state=9).as_matrix()
    ref = _amplitude_field(k, centres)
    mov = _amplitude_field(k @ truth.T, centres)  # mov(k) = ref(Q k): ref(u) = mov(Q^-1 u)
    rf = amplitude_rotation_function(ref, mov, np.arange(3.0, 20.0))
    (best, value), *_ = rf.peaks(3, 10.0)
    assert value > 0.95
    assert np.degrees(Rotation.from_matrix(best.T @ truth).magnitude()) < 4.0


def _blob(n: int, centre_xyz: np.ndarray) -> np.ndarray:
    """Two Gaussians of different size (no symmetry that would hide a shift)."""
    z, y, x = np.mgrid[0:n, 0:n, 0:n] - n // 2
    dx, dy, dz = x - centre_xyz[0], y - centre_xyz[1], z - centre_xyz[2]
    return np.exp(-(dx**2 + dy**2 + dz**2) / 8.0) + 0.5 * np.exp(
        -((dx - 4) ** 2 + (dy - 1) ** 2 + dz**2) / 4.0
    )


def test_best_shift_finds_a_known_shift() -> None:
    n, p = 40, 2.0
    ref = _blob(n, np.array([3.3, -2.6, 1.2]))
    mov = _blob(n, np.array([0.0, 0.0, 0.0]))
    size = padded_size(n, 10.0)
    shift, _ = best_shift(reference_spectrum(ref, size), mov, p, 20.0)
    assert np.allclose(shift / p, [3.3, -2.6, 1.2], atol=0.25)


def test_best_shift_honours_the_limit() -> None:
    n, p = 40, 1.0
    ref = _blob(n, np.array([9.0, 0.0, 0.0]))
    mov = _blob(n, np.array([0.0, 0.0, 0.0]))
    size = padded_size(n, 5.0)
    shift, _ = best_shift(reference_spectrum(ref, size), mov, p, 5.0)
    assert np.linalg.norm(shift) <= 5.0 + 1e-9
    assert shift[0] > 3.0  # as far as allowed, towards the true shift


@pytest.mark.parametrize(("n", "limit_vox"), [(40, 5.6), (33, 11.0), (24, 0.4), (20, 30.0)])
def test_correlation_near_zero_is_the_full_correlation_there(n: int, limit_vox: float) -> None:
    """The lags the shift search reads, transformed back alone, equal those of the whole
    inverse transform (to float32 rounding), in the same index order."""
    rng = np.random.default_rng(n)
    a, b = (rng.standard_normal((n, n, n)).astype(np.float32) for _ in range(2))
    size = padded_size(n, limit_vox)
    product = reference_spectrum(a, size) * reference_spectrum(b, size).conj()
    full = np.fft.irfftn(product.astype(np.complex128), s=(size,) * 3, axes=(0, 1, 2))
    side = correlation_side(size, limit_vox)
    assert side == min(2 * (int(np.ceil(limit_vox)) + 1) + 1, size)
    block = correlation_near_zero(product, size, side)
    lags = np.fft.fftfreq(side, d=1.0 / side).astype(int)  # lag of each index of the block
    wanted = full[np.ix_(lags % size, lags % size, lags % size)]
    assert block.shape == (side,) * 3
    assert np.allclose(block, wanted, atol=1e-5 * np.abs(full).max())


@pytest.mark.parametrize("n", [31, 32])
def test_padding_avoids_wrap_around(n: int) -> None:
    assert padded_size(n, 8.0) >= n + 8


@pytest.mark.parametrize(
    ("shape", "half", "max_radius"),
    [((86, 86, 44), True, 41.0), ((40, 41, 21), True, 19.0), ((33, 34, 35), False, 25.0)],
)
def test_shell_samples_are_trilinear_interpolation_of_the_amplitudes(
    shape: tuple[int, int, int], half: bool, max_radius: float
) -> None:
    # the oracle: scipy's trilinear map_coordinates, periodic for an rfftn half-spectrum (a
    # point with k_x < 0 read at -k), edge values beyond a centred grid (radii past its edge)
    import scipy.ndimage as ndi

    from align3d.engine.alignment.rotation_function import ShellSampling, shell_amplitudes

    amplitude = np.random.default_rng(3).random(shape)
    radii = np.arange(2.0, max_radius + 1e-9, 1.0)
    sampling = ShellSampling(12)
    points = radii[:, None, None, None] * sampling.unit_vectors()[..., ::-1][None]
    if half:
        points = np.where(points[..., 2:3] < 0, -points, points)
        mode = "grid-wrap"
    else:
        points = points + np.array([n // 2 for n in shape], dtype=float)
        mode = "nearest"
    coords = np.moveaxis(points, -1, 0).reshape(3, -1)
    expected = ndi.map_coordinates(amplitude, coords, order=1, mode=mode).reshape(
        radii.size, sampling.n_theta, sampling.n_phi
    )
    got = shell_amplitudes(amplitude, radii, sampling, half_spectrum=half)
    assert np.allclose(got, expected, rtol=0, atol=1e-12)


def test_neighbourhood_max_is_a_3x3x3_max_filter_held_along_beta_periodic_in_alpha_gamma() -> None:
    import scipy.ndimage as ndi

    from align3d.engine.alignment.rotation_function import neighbourhood_max

    values = np.random.default_rng(4).standard_normal((9, 12, 10))
    values[2, 3:5, :] = -np.inf  # grid points masked out of a search
    expected = ndi.maximum_filter(values, size=3, mode=("nearest", "wrap", "wrap"))
    assert np.array_equal(neighbourhood_max(values), expected)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.nan, "moving map contains NaN or infinite values"),
        (np.inf, "moving map contains NaN or infinite values"),
        (-np.inf, "moving map contains NaN or infinite values"),
        (None, "moving map is constant: nothing to align"),
    ],
)
def test_align_maps_refuses_a_map_with_no_finite_content(bad: float | None, message: str) -> None:
    """Arrays handed to the numerical core directly (Python users) are checked too: one NaN or
    infinite voxel anywhere, or a constant map."""
    from align3d.engine.alignment.align import align_maps
    from align3d.engine.alignment.errors import InvalidMapError

    reference = np.random.default_rng(3).standard_normal((24, 24, 24)).astype(np.float32)
    moving = reference.copy()
    if bad is None:
        moving[:] = 0.5
    else:
        moving[5, 17, 2] = bad
    with pytest.raises(InvalidMapError, match=message):
        align_maps(reference, moving, reference_voxel_A=2.0, moving_voxel_A=2.0)


def _refinement_problem() -> tuple[ReferencePoints, MovingSpline]:
    volume = protein_like_map((40, 40, 40), voxel_size_A=2.0, seed=5)
    voxel = np.full(3, 2.0)
    return (
        ReferencePoints.from_map(volume, voxel, np.ones_like(volume)),
        MovingSpline.from_map(volume, voxel),
    )


def test_refinement_converges_and_stops_once_the_step_is_within_tolerance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From 3° and 1.5 Å off, the refinement returns to the identity; at the optimum, the step
    it would take is within the tolerance, so it stops after the one pass that scored it."""
    ref, moving = _refinement_problem()
    passes = []
    sums = MovingSpline.normal_sums
    monkeypatch.setattr(
        MovingSpline, "normal_sums", lambda self, t, r: passes.append(t) or sums(self, t, r)
    )
    start = RigidTransform(small_rotation(np.radians([2.0, -1.5, 1.0])), np.array([1.0, -1.0, 0.5]))
    out = refine(ref, moving, start, tolerance_deg=1e-3, tolerance_A=1e-3)
    assert out.transform.angle_deg < 0.01
    assert np.linalg.norm(out.transform.shift_A) < 0.01
    assert out.score > 0.9999
    passes.clear()
    again = refine(ref, moving, out.transform, tolerance_deg=1e-3, tolerance_A=1e-3)
    assert len(passes) == 1 and again.iterations == 0
    assert again.transform is out.transform
