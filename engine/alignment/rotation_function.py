"""Global rotation search on Fourier amplitudes with spherical harmonics.

``|F|`` does not change when a map is translated, so correlating the amplitudes of two maps
over rotations finds the rotation without searching translations (the cross-rotation function of
crystallography, here on normalised amplitudes instead of the Patterson function). Amplitudes of a
real map are centrosymmetric, ``|F(-k)| = |F(k)|``, so the same search also serves the mirrored
hand: if ``Q`` matches the amplitudes, the candidates are ``R = Q`` and ``R = Q Rz(π)`` with the
hand flip ``F`` (because ``-F = Rz(π)``).

On each Fourier shell the amplitudes are expanded in spherical harmonics (even degrees only, by
centrosymmetry). The correlation of the reference's amplitudes ``f`` with the moving map's
amplitudes ``g`` rotated by ``Q = Rz(α) Ry(β) Rz(γ)``,

    C(Q) = Σ_shells ∫ f(u) g(Q⁻¹ u) du = Σ_l Σ_m'm conj(f_lm') D^l_m'm(Q) g_lm,

with ``D^l_m'm = e^{-im'α} d^l_m'm(β) e^{-imγ}``, is computed on a whole (α, β, γ) grid with one
2-D FFT per β (Kovacs & Wriggers, Acta Cryst. D58, 2002: fast rotational matching).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
import scipy.special as sps
from numpy.typing import NDArray

from align3d.engine.alignment.jit import as_kernel_array, inline, kernel, parallel
from align3d.engine.alignment.spline.basis import _trilinear
from align3d.slots.rotations import euler_zyz

ROT_Z_PI = np.diag([-1.0, -1.0, 1.0])
"""``Rz(π)``: the rotation that, with centrosymmetric amplitudes, turns ``F`` into ``-I``."""


def wigner_small_d(degree: int, betas: NDArray[np.float64]) -> NDArray[np.float64]:
    """Wigner small-d matrices ``d^l_m'm(β) = <l m'| exp(-iβ J_y) |l m>`` for all ``betas``.

    Returns an array ``[β, m' + l, m + l]``. Computed by diagonalising ``J_y``, which is exact
    and stable for any degree (no factorials or recursions).

    Examples
    --------
    >>> d = wigner_small_d(1, np.array([0.3]))[0]
    >>> bool(np.isclose(d[1, 1], np.cos(0.3)))  # d^1_00(β) = cos β
    True
    """
    m = np.arange(-degree, degree + 1, dtype=np.float64)
    # J_x is real, symmetric and tridiagonal (off-diagonal sqrt(l(l+1) - m(m+1)) / 2), and
    # J_y = U J_x U^† with U = exp(-i π/2 J_z): so the eigenvectors of J_y are U W.
    off = 0.5 * np.sqrt(degree * (degree + 1) - m[:-1] * (m[:-1] + 1))
    eigval, w = np.linalg.eigh(np.diag(off, 1) + np.diag(off, -1))
    eigvec = np.exp(-0.5j * np.pi * m)[:, None] * w
    # d(β)_ab = Re Σ_k V_ak conj(V_bk) exp(-iβ λ_k): one real matrix product for all β
    size = 2 * degree + 1
    outer = (eigvec[:, None, :] * eigvec.conj()[None, :, :]).reshape(size * size, size)
    angle = np.outer(eigval, betas)  # [k, β]
    d = outer.real @ np.cos(angle) + outer.imag @ np.sin(angle)  # [ab, β]
    return np.ascontiguousarray(d.T).reshape(len(betas), size, size)


@dataclass(frozen=True)
class ShellSampling:
    """Sampling of a sphere for spherical-harmonic analysis up to degree ``max_degree``:
    Gauss-Legendre nodes in ``cos θ`` and uniform ``φ`` (2x oversampled against aliasing)."""

    max_degree: int

    @property
    def n_theta(self) -> int:
        return 2 * self.max_degree + 2

    @property
    def n_phi(self) -> int:
        return 4 * self.max_degree + 4

    def nodes(self) -> tuple[NDArray, NDArray, NDArray]:
        """``(theta, weights, phi)``: polar angles, their quadrature weights, azimuths."""
        x, w = np.polynomial.legendre.leggauss(self.n_theta)
        return np.arccos(x), w, 2 * np.pi * np.arange(self.n_phi) / self.n_phi

    def unit_vectors(self) -> NDArray[np.float64]:
        """Unit vectors ``(x, y, z)`` of the grid, shape ``(n_theta, n_phi, 3)``."""
        theta, _, phi = self.nodes()
        st = np.sin(theta)[:, None]
        return np.stack(
            [
                st * np.cos(phi)[None, :],
                st * np.sin(phi)[None, :],
                np.broadcast_to(np.cos(theta)[:, None], (theta.size, phi.size)),
            ],
            axis=-1,
        )

    def analyse(self, values: NDArray[np.float64]) -> list[NDArray[np.complex128]]:
        """Spherical-harmonic coefficients of functions sampled on the grid.

        ``values`` has shape ``(..., n_theta, n_phi)``; returns, for each even degree ``l``, an
        array ``(..., 2l + 1)`` of ``f_lm`` for ``m = -l..l`` (orthonormal, Condon-Shortley).
        """
        theta, weights, _ = self.nodes()
        fm = sfft.fft(values, axis=-1) * (2 * np.pi / self.n_phi)  # [..., θ, m mod n_phi]
        coeffs = []
        for degree in range(0, self.max_degree + 1, 2):
            ms = np.arange(-degree, degree + 1)
            ylm = sps.sph_harm_y(degree, ms[:, None], theta[None, :], 0.0).real  # [m, θ]
            sel = fm[..., :, ms % self.n_phi]  # [..., θ, m]
            coeffs.append(np.einsum("...tm,mt,t->...m", sel, ylm, weights))
        return coeffs


@inline
def _linear_index(c: float, n: int, wrap: bool) -> tuple[int, int, float]:
    """The two grid indices and the weight of the second for coordinate ``c`` on an axis of
    ``n`` samples: periodic (``wrap``) or held at the edge values beyond the ends."""
    if not wrap:
        c = min(max(c, 0.0), n - 1.0)
    f = np.floor(c)
    i = int(f)
    if wrap:
        return i % n, (i + 1) % n, c - f
    return i, min(i + 1, n - 1), c - f


@kernel(
    "void(float64[:, :, ::1], float64[::1], float64[:, :, ::1], float64[::1], boolean,"
    " float64[:, :, ::1], int64, int64)"
)
def _sample_shells(amplitude, radii, unit, centre, half, out, lo, hi):  # type: ignore[no-untyped-def]
    n0, n1, n2 = amplitude.shape
    n_theta, n_phi = unit.shape[0], unit.shape[1]
    for s in range(lo, hi):
        r = radii[s]
        for a in range(n_theta):
            for b in range(n_phi):
                z = r * unit[a, b, 0]
                y = r * unit[a, b, 1]
                x = r * unit[a, b, 2]
                if half and x < 0.0:  # a real map's amplitude at -k is that at k
                    z, y, x = -z, -y, -x
                z0, z1, tz = _linear_index(z + centre[0], n0, half)
                y0, y1, ty = _linear_index(y + centre[1], n1, half)
                x0, x1, tx = _linear_index(x + centre[2], n2, half)
                out[s, a, b] = _trilinear(amplitude, z0, z1, y0, y1, x0, x1, tz, ty, tx)


def shell_amplitudes(
    amplitude: NDArray[np.float64],
    radii: NDArray[np.float64],
    sampling: ShellSampling,
    half_spectrum: bool = False,
) -> NDArray[np.float64]:
    """Sample an amplitude grid on spheres of the given radii (in Fourier voxels), trilinearly.
    Returns ``(n_shell, n_theta, n_phi)``.

    The grid is centred (``[z, y, x]``, origin at ``N // 2``; beyond the box, the edge values),
    or with ``half_spectrum`` the ``|rfftn|`` of a real ``N^3`` map as it comes (origin at
    index 0, periodic, ``x`` up to ``N // 2``): a point with ``k_x < 0`` is read at ``-k``,
    where a real map's amplitude is the same."""
    grid = as_kernel_array(amplitude, np.float64)
    shells = as_kernel_array(radii, np.float64)
    unit = as_kernel_array(sampling.unit_vectors()[..., ::-1], np.float64)  # z, y, x
    centre = np.zeros(3) if half_spectrum else np.array([n // 2 for n in grid.shape], float)
    out = np.empty((shells.size, sampling.n_theta, sampling.n_phi))
    parallel(_sample_shells, shells.size, grid, shells, unit, centre, bool(half_spectrum), out)
    return out


def _normalise_shells(coeffs: list[NDArray[np.complex128]]) -> list[NDArray[np.complex128]]:
    """Drop the shell means (degree 0) and scale every shell to unit power over ``l > 0``."""
    power = sum(np.sum(np.abs(c) ** 2, axis=-1) for c in coeffs[1:])
    scale = 1.0 / np.sqrt(np.maximum(power, 1e-30))
    return [np.zeros_like(coeffs[0])] + [c * scale[:, None] for c in coeffs[1:]]


def neighbourhood_max(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """The largest value of each point's 3x3x3 neighbourhood on a ``[β, α, γ]`` grid: held at
    its ends along β (0 to π), periodic along α and γ (a max filter is separable: one axis at a
    time)."""
    ends = np.concatenate([values[:1], values, values[-1:]], axis=0)
    out = np.maximum(np.maximum(ends[:-2], ends[1:-1]), ends[2:])
    for axis in (1, 2):
        out = np.maximum(np.maximum(np.roll(out, 1, axis), out), np.roll(out, -1, axis))
    return out


@dataclass(frozen=True)
class RotationFunction:
    """The amplitude correlation on a ZYZ Euler grid: ``values[iβ, iα, iγ]`` for
    ``Q = Rz(α) Ry(β) Rz(γ)`` with ``α = 2π iα / n``, ``γ = 2π iγ / n``, ``β = π (iβ + ½) / nβ``.
    Values are normalised so that a perfect match scores 1."""

    values: NDArray[np.float64]
    alphas: NDArray[np.float64]
    betas: NDArray[np.float64]

    def rotation(self, index: tuple[int, int, int]) -> NDArray[np.float64]:
        ib, ia, ig = index
        angles = [self.alphas[ia], self.betas[ib], self.alphas[ig]]
        return euler_zyz(*angles)

    def peaks(
        self, count: int, min_separation_deg: float, allowed: NDArray[np.bool_] | None = None
    ) -> list[tuple[NDArray[np.float64], float]]:
        """Up to ``count`` local maxima (rotation, value), best first, at least
        ``min_separation_deg`` apart; ``allowed`` masks grid points out of the search."""
        vals = self.values if allowed is None else np.where(allowed, self.values, -np.inf)
        local = neighbourhood_max(vals) == vals
        local &= np.isfinite(vals)
        order = np.argsort(vals[local])[::-1]
        flat = np.argwhere(local)[order]
        chosen: list[tuple[NDArray[np.float64], float]] = []
        cos_limit = np.cos(np.radians(min_separation_deg))
        for idx in flat:
            rot = self.rotation(tuple(idx))
            if all((np.trace(rot.T @ r) - 1) / 2 < cos_limit for r, _ in chosen):
                chosen.append((rot, float(vals[tuple(idx)])))
                if len(chosen) == count:
                    break
        return chosen

    def angle_within(self, max_angle_deg: float, post: NDArray | None = None) -> NDArray:
        """Boolean grid: rotation angle of ``Q`` (or of ``Q @ post`` for ``post = Rz(π)``) is at
        most ``max_angle_deg``. Uses ``cos(ω/2) = cos(β/2) cos((α+γ)/2)`` for ZYZ angles."""
        extra = np.pi if post is not None else 0.0
        a = self.alphas[None, :, None]
        g = self.alphas[None, None, :] + extra
        b = self.betas[:, None, None]
        half = np.abs(np.cos(b / 2) * np.cos((a + g) / 2))
        return 2 * np.degrees(np.arccos(np.clip(half, 0.0, 1.0))) <= max_angle_deg + 1e-9


def amplitude_rotation_function(
    ref_amplitude: NDArray[np.float64],
    mov_amplitude: NDArray[np.float64],
    radii: NDArray[np.float64],
    max_degree: int = 32,
    n_angle: int = 96,
    half_spectrum: bool = False,
) -> RotationFunction:
    """Correlation of two amplitude grids over all rotations.

    Parameters
    ----------
    ref_amplitude, mov_amplitude : amplitude grids ``|F|`` of the same shape: centred, or
        ``|rfftn|`` half-spectra with ``half_spectrum`` (see :func:`shell_amplitudes`)
    radii : shell radii in Fourier voxels of those grids
    max_degree : highest spherical-harmonic degree (angular resolution ~ 180° / max_degree)
    n_angle : grid points in α and γ (β gets half as many)
    """
    sampling = ShellSampling(max_degree)
    f, g = (
        _normalise_shells(sampling.analyse(shell_amplitudes(a, radii, sampling, half_spectrum)))
        for a in (ref_amplitude, mov_amplitude)
    )
    n_beta = n_angle // 2
    n = max(n_angle, 2 * max_degree + 2)
    betas = np.pi * (np.arange(n_beta) + 0.5) / n_beta
    table = np.zeros((n_beta, n, n), dtype=np.complex128)
    for k, degree in enumerate(range(0, max_degree + 1, 2)):
        if degree == 0:
            continue
        h = np.einsum("sa,sb->ab", f[k].conj(), g[k])  # [m', m] summed over shells
        d = wigner_small_d(degree, betas)
        ms = np.arange(-degree, degree + 1) % n
        table[:, ms[:, None], ms[None, :]] += d * h[None]
    values = sfft.fft2(table, axes=(1, 2)).real / len(radii)
    return RotationFunction(values, 2 * np.pi * np.arange(n) / n, betas)
