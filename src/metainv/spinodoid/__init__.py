"""Spinodoid metamaterials (Kumar et al. 2020): design, random-field geometry, voxel
homogenization and mesh export."""

from metainv.spinodoid.design import (
    FAMILY,
    KINDS,
    SpinodoidDesign,
    design_from_dict,
    design_to_dict,
    load_design,
    save_design,
)
from metainv.spinodoid.export import export_spinodoid, render_png, spinodoid_mesh
from metainv.spinodoid.field import (
    BETA,
    N_WAVES,
    THRESHOLDS,
    field_on_grid,
    gaussian_random_field,
    sample_wave_directions,
    sample_waves,
    solid_mask,
    solid_threshold,
)
from metainv.spinodoid.homogenize import (
    DEFAULT_RESOLUTION,
    REFERENCE_RESOLUTION,
    SpinodoidHomogenization,
    homogenize_spinodoid,
)

__all__ = [
    "BETA",
    "DEFAULT_RESOLUTION",
    "FAMILY",
    "KINDS",
    "N_WAVES",
    "REFERENCE_RESOLUTION",
    "THRESHOLDS",
    "SpinodoidDesign",
    "SpinodoidHomogenization",
    "design_from_dict",
    "design_to_dict",
    "export_spinodoid",
    "field_on_grid",
    "gaussian_random_field",
    "homogenize_spinodoid",
    "load_design",
    "render_png",
    "sample_wave_directions",
    "sample_waves",
    "save_design",
    "solid_mask",
    "solid_threshold",
    "spinodoid_mesh",
]
