"""Elastic constants: isotropic stiffness, compliance, directional Young's modulus, metrics."""

from __future__ import annotations

import numpy as np

from metainv.tensors._backend import Array, constant, inv, is_torch, stack, sum_last


def isotropic_stiffness(youngs_modulus: float, poisson_ratio: float) -> np.ndarray:
    r"""Voigt stiffness (6, 6) of an isotropic solid.

    .. math:: \lambda = \frac{E\nu}{(1+\nu)(1-2\nu)},\quad \mu = \frac{E}{2(1+\nu)},\quad
              C = \lambda\, 1 \otimes 1 + 2\mu\, I_{sym} \text{ (Voigt: } C_{44}=\mu)
    """
    E, nu = float(youngs_modulus), float(poisson_ratio)
    if not E > 0:
        raise ValueError(f"Young's modulus must be positive, got {E}")
    if not -1.0 < nu < 0.5:
        raise ValueError(f"Poisson ratio must lie in (-1, 0.5), got {nu}")
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    mu = E / (2 * (1 + nu))
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[np.arange(3), np.arange(3)] = lam + 2 * mu
    C[np.arange(3, 6), np.arange(3, 6)] = mu
    return C


def cubic_stiffness(c11: float, c12: float, c44: float) -> np.ndarray:
    """Voigt stiffness (6, 6) with cubic symmetry in the cube axes."""
    C = np.zeros((6, 6))
    C[:3, :3] = c12
    C[np.arange(3), np.arange(3)] = c11
    C[np.arange(3, 6), np.arange(3, 6)] = c44
    return C


def compliance(C: Array) -> Array:
    """Voigt compliance ``S = C^-1`` (..., 6, 6), engineering shear strains (``eps = S sigma``)."""
    return inv(C)


def _direction_weights(directions: Array) -> Array:
    """``a = (d1^2, d2^2, d3^2, d2 d3, d1 d3, d1 d2)`` (..., 6) for unit directions (..., 3)."""
    d1, d2, d3 = directions[..., 0], directions[..., 1], directions[..., 2]
    return stack([d1 * d1, d2 * d2, d3 * d3, d2 * d3, d1 * d3, d1 * d2], axis=-1)


def directional_youngs_modulus(C: Array, directions: Array) -> Array:
    r"""Young's modulus ``E(d)`` of stiffness ``C`` (..., 6, 6) along unit ``directions`` (M, 3).

    :math:`E(d) = 1 / (d \otimes d : S : d \otimes d)` with the fourth-order compliance ``S``.
    In Voigt form with engineering shears, ``S_ijkl = S_IJ / (f_I f_J)`` (``f = 2`` on shear
    indices) while each shear index occurs twice in the full contraction, so the factors cancel:
    ``1/E(d) = a^T S a`` with ``a = (d1^2, d2^2, d3^2, d2 d3, d1 d3, d1 d2)``.
    Returns (..., M).
    """
    S = compliance(C)
    a = _direction_weights(directions)  # (M, 6)
    Sa = S[..., None, :, :] @ a[..., None]  # (..., M, 6, 1)
    inverse_modulus = (a[..., None] * Sa)[..., 0].sum(-1)
    return 1.0 / inverse_modulus


def sphere_directions(n_polar: int = 60, n_azimuth: int = 120) -> tuple[np.ndarray, ...]:
    """A polar/azimuth grid of unit directions for surface plots.

    Returns ``(directions (n_polar, n_azimuth, 3), polar (n_polar,), azimuth (n_azimuth,))``.
    """
    polar = np.linspace(0.0, np.pi, n_polar)
    azimuth = np.linspace(0.0, 2 * np.pi, n_azimuth)
    P, A = np.meshgrid(polar, azimuth, indexing="ij")
    d = np.stack([np.sin(P) * np.cos(A), np.sin(P) * np.sin(A), np.cos(P)], axis=-1)
    return d, polar, azimuth


def nmse(C_target: Array, C_predicted: Array) -> Array:
    r"""Normalized mean squared error (paper Eq. 8 as its numbers are computed; spec section 1).

    .. math:: \mathrm{NMSE} = \frac{\sum_{ij} (C^t_{ij} - C^p_{ij})^2}{\sum_{ij} (C^t_{ij})^2}

    over all 36 entries of the Voigt matrices. Shapes (..., 6, 6) broadcast; returns (...).
    """
    return sum_last((C_target - C_predicted) ** 2, 2) / sum_last(C_target**2, 2)


def r2_score(y_true: Array, y_predicted: Array) -> Array:
    r"""Coefficient of determination per component against the identity line.

    :math:`R^2 = 1 - SS_{res}/SS_{tot}` with ``SS_res = sum (y - y_hat)^2`` and
    ``SS_tot = sum (y - mean(y))^2`` over the sample axis 0. Shapes (N, K) -> (K,).
    A component that is constant over the test set (``SS_tot = 0``) gives NaN, not a number that
    pretends to measure something.
    """
    if is_torch(y_true):
        ss_res = ((y_true - y_predicted) ** 2).sum(0)
        ss_tot = ((y_true - y_true.mean(0)) ** 2).sum(0)
        return 1.0 - ss_res / ss_tot
    y_true = np.asarray(y_true, dtype=float)
    y_predicted = np.asarray(y_predicted, dtype=float)
    ss_res = ((y_true - y_predicted) ** 2).sum(0)
    ss_tot = ((y_true - y_true.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)


def voigt_bound(solid: Array, relative_density: float) -> Array:
    """Voigt (upper) bound ``rho * C_solid`` of a porous material of the given solid."""
    return constant(relative_density, solid) * solid
