r"""De-homogenization: a TPMS lattice whose level offset follows a relative-density field.

Given element densities ``rho_e`` on a box of ``nx x ny x nz`` unit elements, the part is

.. math:: \Omega = \{ p : m(\phi(p / \ell)) < t(\rho(p)) \},

with ``phi`` the TPMS field of period ``ell`` (element units), ``m`` the variant's measure
(``phi`` for the network, ``|phi|`` for the sheet), ``rho(p)`` the trilinear interpolation of the
element-centre densities, and ``t(rho)`` the monotone density-to-level map of
:func:`metainv.tpms.fields.level_of_density` (computed on a fine reference cell), so that a
region of uniform density ``rho`` gets a lattice of relative density ``rho``. The field
``f = m(phi) - t`` is sampled at ``voxels_per_element`` points per element edge, padded with void
so that the surface closes on the box faces (the closing caps are clamped onto the faces), and
triangulated by marching cubes at ``f = 0`` (the shared level-set mesher
:func:`metainv.mesh.levelset_mesh`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import trimesh
from scipy.ndimage import map_coordinates

from metainv.errors import MetainvError
from metainv.mesh import levelset_mesh
from metainv.tpms.fields import VARIANTS, level_of_density, surface_field

logger = logging.getLogger(__name__)

#: Voxels per cell edge of the reference cell of the density-to-level map.
REFERENCE_RESOLUTION = 64


def voxel_grid(shape: Sequence[int], voxels_per_element: int) -> list[np.ndarray]:
    """Voxel-centre coordinates ``X, Y, Z`` (each (nx r, ny r, nz r)) of a box of ``shape``
    elements sampled ``r = voxels_per_element`` times per element edge (element units)."""
    r = int(voxels_per_element)
    axes = [(np.arange(n * r) + 0.5) / r for n in shape]
    return np.meshgrid(*axes, indexing="ij")


def graded_field(
    density: np.ndarray,
    surface: str = "gyroid",
    variant: str = "sheet",
    period: float = 2.0,
    voxels_per_element: int = 6,
) -> np.ndarray:
    """Signed field ``f = m(phi) - t(rho)`` (X, Y, Z) at voxel centres (solid where ``f < 0``).

    density: (nx, ny, nz) element densities in [0, 1], index ``[i, j, k]`` = (x, y, z)
    period: TPMS period in element units; voxels_per_element: samples per element edge
    Returns (nx r, ny r, nz r) with ``r = voxels_per_element``.
    """
    density = np.asarray(density, dtype=float)
    if density.ndim != 3:
        raise MetainvError(f"density must be a 3-D array (nx, ny, nz), got shape {density.shape}")
    if not period > 0:
        raise MetainvError(f"TPMS period must be positive, got {period}")
    if voxels_per_element < 1:
        raise MetainvError(f"voxels per element must be >= 1, got {voxels_per_element}")
    X, Y, Z = voxel_grid(density.shape, voxels_per_element)
    rho = element_density_at(density, (X, Y, Z))
    level = level_of_density(surface, np.clip(rho, 0.0, 1.0), REFERENCE_RESOLUTION, variant)
    phi = surface_field(surface)(X / period, Y / period, Z / period)
    return VARIANTS[variant](phi) - level


def graded_mesh(
    density: np.ndarray,
    surface: str = "gyroid",
    variant: str = "sheet",
    period: float = 2.0,
    voxels_per_element: int = 6,
    keep_largest: bool = True,
) -> trimesh.Trimesh:
    """Closed triangle mesh of the graded lattice (element units; see :func:`graded_field`);
    ``keep_largest`` (default) keeps only its largest body (:func:`field_mesh`)."""
    field = graded_field(density, surface, variant, period, voxels_per_element)
    mesh = field_mesh(field, np.shape(density), voxels_per_element, keep_largest)
    logger.info(
        "graded %s %s: %d triangles, watertight=%s",
        variant,
        surface,
        len(mesh.faces),
        mesh.is_watertight,
    )
    return mesh


def element_density_at(density: np.ndarray, points: Sequence[np.ndarray]) -> np.ndarray:
    """Trilinear interpolation of element-centre densities (nx, ny, nz) at points given as
    three coordinate arrays in element units (any common shape; constant beyond the centres)."""
    # element-centre grid: index coordinate of a point p is p - 1/2
    return map_coordinates(
        np.clip(np.asarray(density, dtype=float), 0.0, 1.0),
        [np.asarray(c, dtype=float) - 0.5 for c in points],
        order=1,
        mode="nearest",
    )


def field_mesh(
    field: np.ndarray, shape: Sequence[int], voxels_per_element: int, keep_largest: bool = True
) -> trimesh.Trimesh:
    """Closed mesh of ``{f < 0}`` from samples ``f`` (nx r, ny r, nz r) at the voxel centres of
    a box of ``shape`` elements (element units), by the shared level-set mesher
    :func:`metainv.mesh.levelset_mesh`: padded with void so that the surface closes on the box
    faces, marching cubes at ``f = 0``, closing caps clamped onto the faces; ``keep_largest``
    (default) drops every body but the largest: the fragments that near-void regions (a sheet
    thinner than a voxel) leave; their count and volume are in ``mesh.metadata``."""
    if not (field < 0).any():
        raise MetainvError("the density field is void everywhere: no lattice to mesh")
    step = 1.0 / voxels_per_element
    box = (np.zeros(3), np.asarray(shape, dtype=float))
    return levelset_mesh(field, step, (0.5 * step,) * 3, box, keep_largest=keep_largest).mesh
