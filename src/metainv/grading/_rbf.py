"""Radial basis functions and interpolated lattice bases (Bastek et al. 2022, SI Sec. 5).

Lengths are in cell units (the edge of the reference unit cube before the affine map), so
``zeta`` has units of 1 / cell^2. For two control points a distance ``L`` apart the weight of the
second one is the logistic function ``1 / (1 + exp(2 zeta L (L/2 - s)))`` of the position ``s``
along the line (SI Eq. 17): the transition layer is about ``1 / (zeta L)`` cells thick.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

__all__ = ["interpolate_bases", "rbf_weights", "reciprocal_bases"]


def rbf_weights(points: np.ndarray, controls: np.ndarray, zeta: float) -> np.ndarray:
    r"""Normalized Gaussian weights ``N(x, x_i)`` (SI Eq. 14), shape (n, k).

    .. math:: N(x, x_i) = \frac{e^{-\zeta |x - x_i|^2}}{\sum_j e^{-\zeta |x - x_j|^2}}

    points: (n, 3) evaluation points; controls: (k, 3) control points; zeta > 0 (1 / cell^2).
    Computed as a softmax of ``-zeta |x - x_i|^2`` so that far points do not underflow to 0/0.
    Rows sum to 1.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    controls = np.asarray(controls, dtype=np.float64).reshape(-1, 3)
    squared = ((points[:, None, :] - controls[None, :, :]) ** 2).sum(-1)
    return softmax(-zeta * squared, axis=1)


def interpolate_bases(weights: np.ndarray, bases: np.ndarray) -> np.ndarray:
    r"""Interpolated lattice bases ``A(x) = sum_i N(x, x_i) A_i`` (SI Eq. 15), shape (n, 3, 3).

    weights: (n, k) from :func:`rbf_weights`; bases: (k, 3, 3) control bases, columns are the
    lattice vectors ``a_1, a_2, a_3`` (``F = R2 V R1 U`` of each design, cell units).
    """
    return np.einsum("nk,kij->nij", weights, bases)


def reciprocal_bases(bases: np.ndarray) -> np.ndarray:
    """Reciprocal bases ``K = A^-T`` (..., 3, 3): columns ``k_i`` with ``k_i . a_j = delta_ij``.

    These are the target gradients of the projection functions (SI Eq. 13): ``grad phi_i ~ k_i``,
    i.e. ``d phi / dx ~ A^-1`` (rows ``k_i``). Units 1 / cell.
    """
    return np.swapaxes(np.linalg.inv(bases), -1, -2)
