"""Fourier resizing keeps the box centre; FSC behaves as theory says."""

from __future__ import annotations

import numpy as np
import pytest

from align3d.engine.alignment.fourier import _gather, fourier_resize, lowpass, lowpass_response
from align3d.engine.alignment.fsc import fsc
from align3d.jobs.align_3d_maps.demo import protein_like_map


@pytest.mark.parametrize(("n", "m"), [(64, 32), (65, 33), (64, 33), (63, 40), (40, 64)])
def test_fourier_resize_keeps_the_origin_voxel(n: int, m: int) -> None:
    vol = np.zeros((n, n, n), np.float32)
    c = n // 2
    vol[c - 2 : c + 3, c - 2 : c + 3, c - 2 : c + 3] = 1.0  # a blob centred on voxel N // 2
    out, voxel = fourier_resize(vol, voxel_A=1.0, new_shape=(m, m, m))
    assert np.allclose(voxel, n / m)
    zz, yy, xx = np.indices(out.shape)
    w = np.clip(out, 0, None)
    centroid = [float((a * w).sum() / w.sum()) for a in (zz, yy, xx)]
    assert np.allclose(centroid, m // 2, atol=0.05)
    # the integral (mass) scales with the voxel volume
    assert out.sum() * (n / m) ** 3 == pytest.approx(vol.sum(), rel=1e-3)


def test_lowpass_response_shape() -> None:
    k = np.array([0.0, 0.05, 0.09, 0.1, 0.11, 0.2])
    r = lowpass_response(k, 10.0)
    assert r[0] == 1 and r[1] == 1 and r[2] == pytest.approx(1.0)
    assert r[3] == pytest.approx(0.5) and r[4] == pytest.approx(0.0) and r[5] == 0


def test_fsc_of_identical_maps_is_one() -> None:
    vol = protein_like_map((40, 40, 40), 2.0, seed=3)
    curve = fsc(vol, vol, voxel_A=2.0)
    assert np.allclose(curve.fsc[1:], 1.0)
    assert curve.resolution_at(0.143) == pytest.approx(4.0)  # Nyquist


def test_fsc_of_independent_noise_is_near_zero(rng: np.random.Generator) -> None:
    n = 48
    a = rng.standard_normal((n, n, n))
    b = rng.standard_normal((n, n, n))
    curve = fsc(a, b, voxel_A=1.0)
    sigma = 1.0 / np.sqrt(curve.count[2:] / 2.0)  # half the voxels are independent (Friedel)
    assert np.all(np.abs(curve.fsc[2:]) < 3.0 * sigma)  # the expected 3-sigma band


def test_fsc_follows_the_snr_of_added_noise(rng: np.random.Generator) -> None:
    # signal s with independent noises: FSC(s + n1, s + n2) = SNR / (1 + SNR) in each shell
    n = 48
    signal = rng.standard_normal((n, n, n))
    snr = 0.5
    noise = np.sqrt(1.0 / snr)
    a = signal + noise * rng.standard_normal(signal.shape)
    b = signal + noise * rng.standard_normal(signal.shape)
    curve = fsc(a, b, voxel_A=1.0)
    assert np.allclose(curve.fsc[4:], snr / (1 + snr), atol=0.08)


def test_fsc_crossing_matches_a_lowpass() -> None:
    vol = protein_like_map((64, 64, 64), 1.0, blur_A=0.8, seed=4)
    rng = np.random.default_rng(1)
    noisy = vol + 0.05 * rng.standard_normal(vol.shape).astype(np.float32)
    blurred = lowpass(noisy, voxel_A=1.0, resolution_A=8.0)
    res = fsc(vol, blurred, voxel_A=1.0).resolution_at(0.143)
    assert 6.5 < res < 9.0


@pytest.mark.parametrize("shape", [(32, 32, 32), (30, 28, 27)])
def test_difference_map_is_the_difference_of_the_standardised_low_passed_maps(
    shape: tuple[int, int, int],
) -> None:
    """The Fourier-space difference map (Parseval for each map's mean and spread) equals the
    definition done in real space, for even and odd boxes."""
    from align3d.engine.alignment.difference import difference_map
    from align3d.engine.alignment.fourier import lowpass

    rng = np.random.default_rng(7)
    a = rng.normal(3.0, 2.0, shape).astype(np.float32)
    b = (0.5 * a + rng.normal(0.0, 1.0, shape)).astype(np.float32)

    def standardised(v: np.ndarray) -> np.ndarray:
        low = lowpass(v, voxel_A=1.5, resolution_A=6.0).astype(np.float64)
        return (low - low.mean()) / low.std()

    expected = standardised(b) - standardised(a)
    found = difference_map(a, b, voxel_A=1.5, lowpass_A=6.0)
    assert found.dtype == np.float32
    np.testing.assert_allclose(found, expected, atol=2e-5 * np.abs(expected).max())


def test_gather_takes_what_np_take_takes(rng: np.random.Generator) -> None:
    spec = (rng.standard_normal((12, 10, 9)) + 1j * rng.standard_normal((12, 10, 9)))[:, :, :7]
    for axis in range(3):
        size = spec.shape[axis]
        for indices in ([size - 3, size - 2, size - 1, 0, 1, 2], [2, 3, 4], [size // 2], [0]):
            wanted = np.take(spec, indices, axis=axis)
            got = _gather(spec, np.array(indices), axis)
            assert np.array_equal(got, wanted)


@pytest.mark.parametrize(("n", "m"), [(64, 33), (65, 31), (48, 48)])
def test_fourier_crop_is_the_centre_of_the_centred_spectrum(
    n: int, m: int, rng: np.random.Generator
) -> None:
    """An odd crop keeps exactly the centred spectrum's middle ``m^3`` coefficients (no
    Nyquist bin to fold): the map of that cropped spectrum, origin at voxel ``N // 2``."""
    vol = rng.standard_normal((n, n, n)).astype(np.float32)
    centred = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(vol)))
    lo = n // 2 - m // 2
    middle = centred[lo : lo + m, lo : lo + m, lo : lo + m]
    wanted = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(middle))).real * (m / n) ** 3
    out, _ = fourier_resize(vol, voxel_A=1.0, new_shape=(m, m, m))
    assert np.allclose(out, wanted, atol=1e-5 * np.abs(wanted).max())
