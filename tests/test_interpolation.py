"""Compiled interpolation kernels against scipy.ndimage, which implements the same splines."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from align3d.engine.alignment.spline.affine import affine_cubic, affine_linear
from align3d.engine.alignment.spline.prefilter import spline_coefficients
from tests.oracles.spline_points import sample_cubic, sample_cubic_with_gradient


def smooth_volume(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    return ndi.gaussian_filter(rng.standard_normal(shape), 1.5)


def test_coefficients_match_scipy_mirror_prefilter(rng: np.random.Generator) -> None:
    vol = smooth_volume(rng, (17, 20, 23))  # odd, even, non-cubic
    ours = spline_coefficients(vol)
    theirs = ndi.spline_filter(vol, order=3, mode="mirror")
    assert ours.dtype == np.float32  # the one type the kernels are compiled for
    assert np.abs(ours - theirs).max() < 1e-6 * np.abs(theirs).max()


def test_spline_interpolates_the_samples(rng: np.random.Generator) -> None:
    vol = smooth_volume(rng, (12, 13, 14))
    coeffs = spline_coefficients(vol)
    iz, iy, ix = np.mgrid[0:12, 0:13, 0:14]
    pts = np.stack([ix.ravel(), iy.ravel(), iz.ravel()], axis=1).astype(float)
    assert np.allclose(sample_cubic(coeffs, pts), vol.ravel(), atol=1e-6 * np.abs(vol).max())


def test_values_and_gradient(rng: np.random.Generator) -> None:
    vol = smooth_volume(rng, (20, 22, 24))
    coeffs = spline_coefficients(vol)
    pts = rng.uniform([1, 1, 1], [22, 20, 18], size=(500, 3))
    values, grad = sample_cubic_with_gradient(coeffs, pts)
    ref = ndi.map_coordinates(
        ndi.spline_filter(vol, 3, mode="mirror"),
        pts[:, ::-1].T,
        order=3,
        prefilter=False,
        mode="mirror",
    )
    assert np.allclose(values, ref, atol=1e-6 * np.abs(ref).max())
    h = 1e-4
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = h
        numeric = (sample_cubic(coeffs, pts + step) - sample_cubic(coeffs, pts - step)) / (2 * h)
        assert np.allclose(grad[:, axis], numeric, atol=1e-4 * np.abs(grad).max())


def test_points_outside_the_box_are_zero() -> None:
    coeffs = spline_coefficients(np.ones((6, 6, 6)))
    values = sample_cubic(coeffs, np.array([[-0.5, 2, 2], [2, 2, 5.5], [2.0, 2.0, 2.0]]))
    assert values[0] == 0 and values[1] == 0 and np.isclose(values[2], 1.0)


def test_affine_cubic_matches_scipy(rng: np.random.Generator) -> None:
    vol = smooth_volume(rng, (18, 21, 24))
    theta = 0.4
    matrix = np.array(
        [[np.cos(theta), -np.sin(theta), 0.1], [np.sin(theta), np.cos(theta), 0], [0, 0.2, 1]]
    )
    offset = np.array([1.5, -0.5, 0.25])
    out = affine_cubic(spline_coefficients(vol), matrix, offset, (16, 17, 19))
    oz, oy, ox = np.mgrid[0:16, 0:17, 0:19]
    src = np.stack([ox, oy, oz], -1).reshape(-1, 3) @ matrix.T + offset
    ref = ndi.map_coordinates(
        ndi.spline_filter(vol, 3, mode="mirror"),
        src[:, ::-1].T,
        order=3,
        prefilter=False,
        mode="mirror",
    ).reshape(out.shape)
    inside = np.all((src >= 0) & (src <= [23, 20, 17]), axis=1).reshape(out.shape)
    assert inside.sum() > 1000 and (~inside).sum() > 100
    assert np.allclose(out[inside], ref[inside], atol=1e-6 * np.abs(ref).max())
    assert np.all(out[~inside] == 0)


def test_affine_linear_keeps_masks_in_unit_interval(rng: np.random.Generator) -> None:
    mask = (smooth_volume(rng, (20, 20, 20)) > 0).astype(np.float32)
    rot = np.array([[0.6, -0.8, 0], [0.8, 0.6, 0], [0, 0, 1.0]])
    out = affine_linear(mask, rot, np.array([5.0, -3.0, 0.3]), (20, 20, 20))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert 0 < out.mean() < 1
