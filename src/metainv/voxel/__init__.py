"""Voxel finite-element homogenization of unit-cube RVEs (shared by spinodoids, TPMS, topopt).

See :mod:`metainv.voxel.homogenize` for the boundary conditions, the void treatment and the
bounds they give.
"""

from metainv.fem import SolveStats, hex8_mean_strain, hex8_stiffness
from metainv.voxel.homogenize import (
    BOUNDARY_CONDITIONS,
    DEFAULT_VOID_MODULUS_RATIO,
    VoxelHomogenization,
    homogenize_voxels,
    homogenize_voxels_detailed,
    keep_held_voxels,
    voxel_components,
)

__all__ = [
    "BOUNDARY_CONDITIONS",
    "DEFAULT_VOID_MODULUS_RATIO",
    "SolveStats",
    "VoxelHomogenization",
    "hex8_mean_strain",
    "hex8_stiffness",
    "homogenize_voxels",
    "homogenize_voxels_detailed",
    "keep_held_voxels",
    "voxel_components",
]
