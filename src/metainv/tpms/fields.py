r"""Triply periodic minimal surfaces as level-set fields, and relative density <-> level offset.

Fields on the unit cell ``[0, 1)^3`` (period 1, coordinates ``x, y, z``; ``X = 2 pi x`` etc.):

.. math::
   \phi_{gyroid} &= \sin X \cos Y + \sin Y \cos Z + \sin Z \cos X, \\
   \phi_{P} &= \cos X + \cos Y + \cos Z, \\
   \phi_{diamond} &= \sin X \sin Y \sin Z + \sin X \cos Y \cos Z + \cos X \sin Y \cos Z
                    + \cos X \cos Y \sin Z.

Variants with a level offset ``t``:

* ``network`` (solid network): solid where ``phi < t`` (one of the two labyrinths, thickened);
* ``sheet``: solid where ``|phi| < t`` (a wall around the minimal surface ``phi = 0``).

Relative density <-> level. On a voxel grid the volume fraction is the empirical distribution of
the sampled field, ``rho(t) = mean[phi < t]`` (``mean[|phi| < t]`` for sheets), so its inverse is
the empirical quantile: ``t(rho) = quantile(phi, rho)``. This is exact for the grid it is computed
on (the round trip ``rho(t(rho))`` is ``rho`` to within one voxel, ``1/n^3``), monotone, and
vectorized over many densities; on a fine reference grid it is the monotone map used to grade a
lattice (:mod:`metainv.tpms.graded`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metainv.errors import MetainvError

Field = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

TWO_PI = 2.0 * np.pi


def gyroid(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Schoen gyroid field (period 1), any broadcastable shapes."""
    X, Y, Z = TWO_PI * np.asarray(x), TWO_PI * np.asarray(y), TWO_PI * np.asarray(z)
    return np.sin(X) * np.cos(Y) + np.sin(Y) * np.cos(Z) + np.sin(Z) * np.cos(X)


def schwarz_p(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Schwarz primitive field (period 1)."""
    X, Y, Z = TWO_PI * np.asarray(x), TWO_PI * np.asarray(y), TWO_PI * np.asarray(z)
    return np.cos(X) + np.cos(Y) + np.cos(Z)


def diamond(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Schwarz diamond field (period 1)."""
    X, Y, Z = TWO_PI * np.asarray(x), TWO_PI * np.asarray(y), TWO_PI * np.asarray(z)
    sx, sy, sz, cx, cy, cz = np.sin(X), np.sin(Y), np.sin(Z), np.cos(X), np.cos(Y), np.cos(Z)
    return sx * sy * sz + sx * cy * cz + cx * sy * cz + cx * cy * sz


#: Surface name -> field.
SURFACES: dict[str, Field] = {"gyroid": gyroid, "schwarz_p": schwarz_p, "diamond": diamond}

#: Variant name -> the quantity compared with the level: solid where ``measure(phi) < t``.
VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "network": lambda phi: phi,
    "sheet": np.abs,
}


def surface_field(surface: str) -> Field:
    """The field of a named surface (clear error for unknown names)."""
    if surface not in SURFACES:
        raise MetainvError(f"unknown TPMS {surface!r}; available: {', '.join(sorted(SURFACES))}")
    return SURFACES[surface]


def _measure(variant: str) -> Callable[[np.ndarray], np.ndarray]:
    if variant not in VARIANTS:
        raise MetainvError(f"unknown TPMS variant {variant!r}; available: {', '.join(VARIANTS)}")
    return VARIANTS[variant]


def voxel_centers(n: int) -> np.ndarray:
    """Voxel-centre coordinates (n,) of a grid of n voxels per period: ``(i + 1/2) / n``."""
    if n < 2:
        raise MetainvError(f"voxel grid needs n >= 2 voxels per cell, got {n}")
    return (np.arange(n) + 0.5) / n


def sample_field(surface: str, n: int) -> np.ndarray:
    """Field values (n, n, n) at the voxel centres of one cell, index ``[i, j, k]`` = (x, y, z)."""
    c = voxel_centers(n)
    return surface_field(surface)(c[:, None, None], c[None, :, None], c[None, None, :])


def solid_voxels(surface: str, n: int, level: float, variant: str = "network") -> np.ndarray:
    """Occupancy (n, n, n) bool of one cell at level offset ``level``."""
    return _measure(variant)(sample_field(surface, n)) < level


def density_of_level(
    surface: str, level: np.ndarray | float, n: int = 64, variant: str = "network"
) -> np.ndarray:
    """Voxel volume fraction ``rho(t) = mean[measure(phi) < t]`` (shape of ``level``)."""
    values = np.sort(_measure(variant)(sample_field(surface, n)).ravel())
    return np.searchsorted(values, np.asarray(level, dtype=float), side="left") / values.size


def level_of_density(
    surface: str, density: np.ndarray | float, n: int = 64, variant: str = "network"
) -> np.ndarray:
    """Level offset ``t(rho)`` (shape of ``density``) whose voxel volume fraction is ``rho``.

    The empirical quantile of the sampled field. Symmetry makes many samples equal, so only the
    fractions ``c / n^3`` at which the sorted samples change value are attainable; the level is
    put half-way between the two sample values that bracket the attainable fraction nearest to
    ``rho``, so ``density_of_level(level_of_density(rho))`` is that fraction (within half the
    largest group of equal samples of ``rho``). Densities must lie in [0, 1]; 0 and 1 give levels
    well outside the field's range (empty and full everywhere, not only at the samples).
    """
    density = np.asarray(density, dtype=float)
    if np.any(~np.isfinite(density)) or np.any((density < 0) | (density > 1)):
        raise MetainvError("relative density must lie in [0, 1]")
    values = np.sort(_measure(variant)(sample_field(surface, n)).ravel())
    # margins beyond the sampled range: density 0 and 1 stay empty and full between samples too
    margin = 1.0 + np.abs(values).max()
    padded = np.concatenate([[values[0] - 2.0 * margin], values, [values[-1] + 2.0 * margin]])
    # attainable solid counts: 0, every index where the sorted value increases, and all
    attainable = np.concatenate([[0], np.flatnonzero(np.diff(values) > 0) + 1, [values.size]])
    target = density * values.size
    right = np.clip(np.searchsorted(attainable, target), 1, attainable.size - 1)
    left = right - 1
    nearer_left = target - attainable[left] <= attainable[right] - target
    count = np.where(nearer_left, attainable[left], attainable[right])
    return 0.5 * (padded[count] + padded[count + 1])
