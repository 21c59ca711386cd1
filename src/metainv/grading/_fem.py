r"""Projection functions ``phi_i`` by trilinear hexahedral finite elements (SI Eq. 13).

Each ``phi_i`` minimizes :math:`\int_\Omega |\nabla\phi_i - k_i(x)|^2 d\Omega`, whose weak form
is the Neumann problem

.. math:: \int_\Omega \nabla\phi_i \cdot \nabla v \, d\Omega = \int_\Omega k_i \cdot \nabla v
          \, d\Omega \quad \forall v,

with ``k_i(x)`` the reciprocal vectors of the interpolated basis ``A(x)`` (SI Eq. 15). It is solved
on a regular grid of 8-node hexahedra over the body's bounding box; ``k`` is taken at the element
centres (midpoint rule), which reproduces a uniform lattice exactly. For a surface body, elements
whose centre lies outside the surface get the weight ``1e-3`` (a smooth extension of ``phi`` that
hardly affects the fit inside). One node is pinned (the constant is free), the sparse system is
solved for the three right-hand sides by CG preconditioned with smoothed-aggregation AMG (set
up once; SuperLU up to ``DIRECT_LIMIT`` unknowns; :mod:`metainv.fem.solvers`), and ``phi`` is
shifted to vanish at the anchor point (the lower corner of the body by default), where a lattice
point then lies. Grid, element and assembly are those of :mod:`metainv.fem` (the stencil
assembly of the voxel elasticity, with one unknown per node).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from metainv.errors import MetainvError
from metainv.fem import (
    BINARY_NODES,
    HexGrid,
    Unknowns,
    assemble_stencil,
    assemble_vector,
    gradient_integral,
    make_solver,
    scalar_stiffness,
    shape_functions,
    shifted_moduli,
)
from metainv.grading._problem import MIN_DET_FRACTION, GradingProblem

__all__ = ["ProjectionField", "solve_projection_functions"]

logger = logging.getLogger(__name__)

#: Unknowns up to which the system is factorized directly (SuperLU); AMG-CG above.
DIRECT_LIMIT = 5_000
#: Relative residual of the AMG-CG solves, and their iteration limit.
CG_TOL = 1e-12
CG_MAXITER = 500
#: Largest grid accepted (elements).
MAX_ELEMENTS = 3_000_000
#: Weight of elements outside a surface body.
OUTSIDE_WEIGHT = 1e-3


@dataclass(frozen=True, eq=False)
class ProjectionField:
    """The projection functions ``phi_i`` (SI Eq. 13) as nodal values on a hexahedral grid.

    grid: the :class:`~metainv.fem.HexGrid` (C order, cell units)
    values: (n_nodes, 3) ``phi_1..3`` at the nodes (dimensionless: cells counted along ``k_i``)
    active: (n_elements,) bool, elements inside the body
    anchor: (3,) point where ``phi = 0`` (a lattice point)
    """

    grid: HexGrid
    values: np.ndarray
    active: np.ndarray
    anchor: np.ndarray

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``phi`` (p, 3) and its Jacobian ``d phi_i / d x_j`` (p, 3, 3) at points (p, 3)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        element, xi = self.grid.locate(x)
        nodal = self.values[self.grid.element_nodes_at(element)]  # (p, 8, 3)
        shape, local_gradient = shape_functions(xi)
        phi = np.einsum("pc,pci->pi", shape, nodal)
        jacobian = np.einsum("pcd,pci->pid", local_gradient / np.asarray(self.grid.spacing), nodal)
        return phi, jacobian

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``phi`` (p, 3) at points (p, 3)."""
        return self.evaluate(x)[0]


def _grid_for(problem: GradingProblem, elements_per_cell: int) -> HexGrid:
    """Grid over the body's bounding box, enlarged by the reach of a cell (:func:`cell_reach`)
    plus one element, with ``elements_per_cell`` elements per lattice-plane spacing of the
    densest control cell (``1 / max |k_i|``)."""
    if isinstance(elements_per_cell, bool) or not (
        isinstance(elements_per_cell, (int, np.integer)) and elements_per_cell >= 1
    ):
        raise MetainvError(f"elements per cell must be a positive integer, got {elements_per_cell}")
    spacing_planes = 1.0 / np.linalg.norm(np.linalg.inv(problem.bases), axis=2).max()
    h = spacing_planes / elements_per_cell
    body = problem.body
    pad = cell_reach(problem) + h  # cells whose centre lies outside but that reach into the body
    lower, size = body.lower - pad, body.size + 2 * pad
    shape = tuple(int(max(1, np.ceil(s / h - 1e-9))) for s in size)
    n_elements = int(np.prod(shape))
    if n_elements > MAX_ELEMENTS:
        raise MetainvError(
            f"the projection grid would have {n_elements} elements (> {MAX_ELEMENTS}); "
            "use a smaller body or fewer elements per cell"
        )
    return HexGrid(shape, spacing=size / np.array(shape), origin=lower)  # type: ignore[arg-type]


def cell_reach(problem: GradingProblem) -> float:
    """Largest distance from a cell centre to its corners over the control cells (cell units):
    half the longest body diagonal ``|A_i s|``, ``s`` in {-1, 1}^3."""
    signs = np.array(list(np.ndindex(2, 2, 2)), dtype=np.float64) * 2 - 1
    return 0.5 * float(np.linalg.norm(np.einsum("kij,sj->ksi", problem.bases, signs), axis=2).max())


def _target_gradients(problem: GradingProblem, points: np.ndarray) -> np.ndarray:
    """``A(x)^-1`` (p, 3, 3), rows the reciprocal vectors ``k_i``; fails where ``A`` degenerates."""
    bases = problem.basis(points)
    det = np.linalg.det(bases)
    floor = MIN_DET_FRACTION * np.abs(np.linalg.det(problem.bases)).min()
    if det.min() < floor:
        at = points[int(np.argmin(det))]
        raise MetainvError(
            f"the interpolated lattice basis degenerates near ({', '.join(f'{c:.3g}' for c in at)})"
            f" (det A = {det.min():.3g}): the control cells are too dissimilar (e.g. rotated far "
            "from each other) for SI Eq. 15"
        )
    return np.linalg.inv(bases)


def solve_projection_functions(
    problem: GradingProblem, elements_per_cell: int = 4, anchor: np.ndarray | None = None
) -> ProjectionField:
    """Least-squares projection functions ``phi_1..3`` over the body (SI Eq. 13).

    elements_per_cell: grid elements per lattice-plane spacing of the densest control cell.
    anchor: (3,) point where ``phi = 0`` (default: the lower corner of the body's bounding box).
    """
    grid = _grid_for(problem, elements_per_cell)
    centres = grid.element_centres
    active = problem.body.contains(centres)
    # around a box the basis field continues the lattice of the faces: full weight there too
    weight = np.where(active | problem.body.is_box, 1.0, OUTSIDE_WEIGHT)
    target = _target_gradients(problem, centres)  # (e, 3 phi, 3 x)
    free = np.arange(grid.n_nodes) - 1  # node 0 pinned: phi is free up to a constant
    shifted = shifted_moduli(grid, weight)
    matrix = assemble_stencil(grid, shifted, scalar_stiffness(grid.spacing, BINARY_NODES), free)
    integral = gradient_integral(grid.spacing)  # (8, 3), the grid's (VTK) local node order
    element_rhs = weight[:, None, None] * np.einsum("ad,eid->eai", integral, target)
    rhs = assemble_vector(grid, element_rhs)  # (n_nodes, 3)
    n = grid.n_nodes - 1
    solver = "direct" if n <= DIRECT_LIMIT else "amg"
    solve = make_solver(solver, Unknowns(grid, np.arange(1, grid.n_nodes), 1), CG_TOL, CG_MAXITER)
    values = np.zeros((grid.n_nodes, 3))
    values[1:] = solve(matrix.tocsr(), rhs[1:])[0]
    anchor = problem.body.lower.copy() if anchor is None else np.asarray(anchor, dtype=np.float64)
    values -= ProjectionField(grid, values, active, anchor)(anchor[None])[0]
    values.setflags(write=False)
    logger.info(
        "projection functions: %d x %d x %d elements, %d unknowns", *grid.shape, grid.n_nodes
    )
    return ProjectionField(grid=grid, values=values, active=active, anchor=anchor)
