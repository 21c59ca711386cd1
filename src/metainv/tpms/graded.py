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
triangulated by marching cubes (scikit-image) at ``f = 0``.
"""

from __future__ import annotations

import logging

import numpy as np
import trimesh
from scipy.ndimage import map_coordinates

from metainv.errors import MetainvError
from metainv.tpms.fields import VARIANTS, level_of_density, surface_field

logger = logging.getLogger(__name__)

#: Voxels per cell edge of the reference cell of the density-to-level map.
REFERENCE_RESOLUTION = 64


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
    r = int(voxels_per_element)
    axes = [(np.arange(n * r) + 0.5) / r for n in density.shape]  # element units
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    # element-centre grid: index coordinate of a point p is p - 1/2
    rho = map_coordinates(
        np.clip(density, 0.0, 1.0), [X - 0.5, Y - 0.5, Z - 0.5], order=1, mode="nearest"
    )
    level = level_of_density(surface, np.clip(rho, 0.0, 1.0), REFERENCE_RESOLUTION, variant)
    phi = surface_field(surface)(X / period, Y / period, Z / period)
    return VARIANTS[variant](phi) - level


def graded_mesh(
    density: np.ndarray,
    surface: str = "gyroid",
    variant: str = "sheet",
    period: float = 2.0,
    voxels_per_element: int = 6,
) -> trimesh.Trimesh:
    """Closed triangle mesh of the graded lattice (element units; see :func:`graded_field`)."""
    from skimage.measure import marching_cubes

    field = graded_field(density, surface, variant, period, voxels_per_element)
    if not (field < 0).any():
        raise MetainvError("the density field is void everywhere: no lattice to mesh")
    padded = np.pad(-field, 1, mode="constant", constant_values=-1.0)  # solid where > 0
    step = 1.0 / voxels_per_element
    vertices, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(step, step, step))
    vertices -= 0.5 * step  # padded index 0 lies half a voxel outside the box
    # the closing caps fall between the last sample and the pad: put them on the box faces
    vertices = np.clip(vertices, 0.0, np.array(np.shape(density), dtype=float))
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=True)
    if mesh.volume < 0:
        mesh.invert()
    logger.info(
        "graded %s %s: %d triangles, watertight=%s",
        variant,
        surface,
        len(faces),
        mesh.is_watertight,
    )
    return mesh
