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
    lattice = graded_lattice(problem)        # nodes, struts, diameters (clipped to the body)
    check = local_check(problem)             # local FE stiffness vs interpolated target
    enforce_gates(quality_gates(problem, lattice, check))  # GradingQualityError past a limit
"""

from metainv.grading._body import Body, box_body, stl_body
from metainv.grading._centres import CellCentres, find_cell_centres
from metainv.grading._fem import ProjectionField, solve_projection_functions
from metainv.grading._gates import (
    MAX_DIAMETER_RATIO,
    MAX_LENGTH_RATIO,
    MAX_LOCAL_NMSE,
    MAX_MERGE_CELLS,
    GradingQualityError,
    QualityGate,
    enforce_gates,
    quality_gates,
)
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
from metainv.grading._problem import (
    DissimilarControlsError,
    GradingProblem,
    graph_symmetries,
    load_control_design,
    matched_basis_changes,
    parse_point,
)
from metainv.grading._rbf import interpolate_bases, rbf_weights, reciprocal_bases
from metainv.grading._superpose import SuperposedCell, superposed_cell

__all__ = [
    "MAX_DIAMETER_RATIO",
    "MAX_LENGTH_RATIO",
    "MAX_LOCAL_NMSE",
    "MAX_MERGE_CELLS",
    "OUTPUT_FILES",
    "Body",
    "CellCentres",
    "DissimilarControlsError",
    "GradedLattice",
    "GradingProblem",
    "GradingQualityError",
    "LocalCell",
    "LocalCheck",
    "ProjectionField",
    "QualityGate",
    "SuperposedCell",
    "assemble_lattice",
    "box_body",
    "enforce_gates",
    "find_cell_centres",
    "graded_lattice",
    "graded_mesh",
    "grading_direction",
    "graph_symmetries",
    "interpolate_bases",
    "lattice_to_dict",
    "load_control_design",
    "local_cell",
    "local_check",
    "matched_basis_changes",
    "parse_point",
    "plot_lattice",
    "plot_local_check",
    "quality_gates",
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
