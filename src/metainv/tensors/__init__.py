"""Tensor notation for elasticity: the one place that owns it.

Voigt order 11, 22, 33, 23, 13, 12 with engineering shear strains; every function accepts numpy
arrays or torch tensors (differentiable) unless stated otherwise. ``backend`` holds the small
numpy-or-torch helpers they are written with (``is_torch``, ``constant``, ``einsum``, ``sqrt``,
...), for code elsewhere that must accept both too.
"""

from metainv.tensors import _backend as backend
from metainv.tensors._elastic import (
    compliance,
    cubic_stiffness,
    directional_youngs_modulus,
    isotropic_stiffness,
    nmse,
    r2_score,
    sphere_directions,
    voigt_bound,
)
from metainv.tensors._frames import (
    canonical_stiffness,
    closest_orthotropic,
    dilatational_tensor,
    material_frame,
    voigt_contracted_tensor,
)
from metainv.tensors._rotation import (
    angle_axis_from_rotation,
    bond_matrix,
    is_rotation,
    random_rotations,
    random_unit_vectors,
    rotate_stiffness,
    rotate_tensor4,
    rotation_from_6d,
    rotation_from_angle_axis,
    sample_angle_axis,
    sixd_from_rotation,
)
from metainv.tensors._voigt import (
    C21_NAMES,
    MANDEL_WEIGHTS,
    ORTHO_NAMES,
    VOIGT_PAIRS,
    c21_from_matrix,
    mandel_to_voigt,
    matrix_from_c21,
    matrix_from_orthotropic9,
    orthotropic9_from_matrix,
    tensor_to_voigt,
    voigt_to_mandel,
    voigt_to_tensor,
)
from metainv.tensors.check import StiffnessReport, check_stiffness

__all__ = [
    "C21_NAMES",
    "MANDEL_WEIGHTS",
    "ORTHO_NAMES",
    "VOIGT_PAIRS",
    "StiffnessReport",
    "angle_axis_from_rotation",
    "backend",
    "bond_matrix",
    "c21_from_matrix",
    "canonical_stiffness",
    "check_stiffness",
    "closest_orthotropic",
    "compliance",
    "cubic_stiffness",
    "dilatational_tensor",
    "directional_youngs_modulus",
    "is_rotation",
    "isotropic_stiffness",
    "mandel_to_voigt",
    "material_frame",
    "matrix_from_c21",
    "matrix_from_orthotropic9",
    "nmse",
    "orthotropic9_from_matrix",
    "r2_score",
    "random_rotations",
    "random_unit_vectors",
    "rotate_stiffness",
    "rotate_tensor4",
    "rotation_from_6d",
    "rotation_from_angle_axis",
    "sample_angle_axis",
    "sixd_from_rotation",
    "sphere_directions",
    "tensor_to_voigt",
    "voigt_bound",
    "voigt_contracted_tensor",
    "voigt_to_mandel",
    "voigt_to_tensor",
]
