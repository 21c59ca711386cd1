"""Triply periodic minimal surface (TPMS) lattices: level-set fields, density <-> level, voxel
homogenization, the exponential law of SI Eq. 1 and graded (de-homogenized) lattices."""

from metainv.tpms.fields import (
    SURFACES,
    VARIANTS,
    density_of_level,
    diamond,
    gyroid,
    level_of_density,
    sample_field,
    schwarz_p,
    solid_voxels,
    surface_field,
    voxel_centers,
)
from metainv.tpms.law import (
    CUBIC_BASIS,
    CUBIC_NAMES,
    ExponentialFit,
    cubic_constants,
    exponential_fit,
    fit_exponential,
    fit_table,
    homogenization_table,
    homogenize_tpms,
    load_fit_data,
    solid_cubic_constants,
)

__all__ = [
    "CUBIC_BASIS",
    "CUBIC_NAMES",
    "SURFACES",
    "VARIANTS",
    "ExponentialFit",
    "cubic_constants",
    "density_of_level",
    "diamond",
    "exponential_fit",
    "fit_exponential",
    "fit_table",
    "gyroid",
    "homogenization_table",
    "homogenize_tpms",
    "level_of_density",
    "load_fit_data",
    "sample_field",
    "schwarz_p",
    "solid_cubic_constants",
    "solid_voxels",
    "surface_field",
    "voxel_centers",
]
