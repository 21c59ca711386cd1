"""Functionally graded truss lattices (Bastek et al. 2022, SI Sec. 5; spec truss.md section 6).

Control points ``x_i`` carry a truss design each; the lattice bases are interpolated with
normalized Gaussian radial basis functions (SI Eqs. 14-15), projection functions are fitted by
finite elements over the body (SI Eq. 13), a superposed cell with basis ``A(x_nu)`` is placed at
each cell centre, coincident nodes are merged at their mean, and strut diameters are graded with
the same basis functions (SI Eqs. 16-17). Lengths are in cell units (the edge of the reference
unit cube before the affine map of a design).

Typical use::

    from metainv.grading import (
        GradingProblem, box_body, graded_lattice, load_control_design, local_check
    )

    problem = GradingProblem(
        points=[[0, 2, 2], [10, 2, 2]],
        designs=[load_control_design("a.json"), load_control_design("b.json")],
        zeta=0.5,
        body=box_body([10, 4, 4]),
    )
    lattice = graded_lattice(problem)        # nodes, struts, diameters
    check = local_check(problem)             # local FE stiffness vs interpolated target
"""

from metainv.grading._body import Body, box_body, stl_body
from metainv.grading._centres import CellCentres, find_cell_centres
from metainv.grading._fem import ProjectionField, solve_projection_functions
from metainv.grading._lattice import GradedLattice, assemble_lattice, graded_lattice
from metainv.grading._local import (
    LocalCell,
    LocalCheck,
    grading_direction,
    local_cell,
    local_check,
)
from metainv.grading._output import (
    OUTPUT_FILES,
    graded_mesh,
    lattice_to_dict,
    plot_lattice,
    plot_local_check,
    write_graded_outputs,
    write_json,
    write_stl,
    write_vtu,
)
from metainv.grading._problem import GradingProblem, load_control_design, parse_point
from metainv.grading._rbf import interpolate_bases, rbf_weights, reciprocal_bases
from metainv.grading._superpose import SuperposedCell, superposed_cell

__all__ = [
    "OUTPUT_FILES",
    "Body",
    "CellCentres",
    "GradedLattice",
    "GradingProblem",
    "LocalCell",
    "LocalCheck",
    "ProjectionField",
    "SuperposedCell",
    "assemble_lattice",
    "box_body",
    "find_cell_centres",
    "graded_lattice",
    "graded_mesh",
    "grading_direction",
    "interpolate_bases",
    "lattice_to_dict",
    "load_control_design",
    "local_cell",
    "local_check",
    "parse_point",
    "plot_lattice",
    "plot_local_check",
    "rbf_weights",
    "reciprocal_bases",
    "solve_projection_functions",
    "stl_body",
    "superposed_cell",
    "write_graded_outputs",
    "write_json",
    "write_stl",
    "write_vtu",
]
