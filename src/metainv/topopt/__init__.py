"""Topology optimization of graded lattices (SI of the graded-TPMS study; spec ``topopt.md``).

3-D linear elasticity on unit 8-node hexahedra, element stiffness from a lattice material law
``D^H(rho)`` (gyroid, iso-truss, truss, spinodoid, or any registered law) with modified SIMP on
top, density filter, OC or MMA updates, compliance under external and inherent-strain loads, and
the de-homogenized graded part (:mod:`metainv.topopt.parts`).
"""

from metainv.fem import HexGrid
from metainv.topopt import lattices  # noqa: F401  (registers the truss and spinodoid laws)
from metainv.topopt.filters import DensityFilter, density_filter
from metainv.topopt.lattices import exponential_fit_law, gyroid_law
from metainv.topopt.materials import (
    BasisLaw,
    MaterialLaw,
    available_laws,
    get_law,
    isotruss_law,
    isotruss_modulus,
    law_from_stiffness,
    register_law,
    simp_coefficients,
    solid_coefficients,
    solid_law,
    stiffness,
    stiffness_derivative,
)
from metainv.topopt.optimize import (
    Analysis,
    IterationRecord,
    Model,
    Settings,
    TopOptResult,
    analyze,
    build_model,
    grey_level,
    optimize,
    physical_density,
)
from metainv.topopt.problems import PROBLEMS, Problem, make_problem
from metainv.topopt.solvers import SOLVERS, make_solver

__all__ = [
    "PROBLEMS",
    "SOLVERS",
    "Analysis",
    "BasisLaw",
    "DensityFilter",
    "HexGrid",
    "IterationRecord",
    "MaterialLaw",
    "Model",
    "Problem",
    "Settings",
    "TopOptResult",
    "analyze",
    "available_laws",
    "build_model",
    "density_filter",
    "exponential_fit_law",
    "get_law",
    "grey_level",
    "gyroid_law",
    "isotruss_law",
    "isotruss_modulus",
    "law_from_stiffness",
    "make_problem",
    "make_solver",
    "optimize",
    "physical_density",
    "register_law",
    "simp_coefficients",
    "solid_coefficients",
    "solid_law",
    "stiffness",
    "stiffness_derivative",
]
