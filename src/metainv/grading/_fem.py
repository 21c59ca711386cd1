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
up once; SuperLU up to ``DIRECT_LIMIT`` unknowns), and ``phi`` is shifted to vanish at the
anchor point (the lower corner of the body by default), where a lattice point then lies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from metainv.errors import MetainvError
from metainv.grading._problem import MIN_DET_FRACTION, GradingProblem

__all__ = ["HexGrid", "ProjectionField", "solve_projection_functions"]

logger = logging.getLogger(__name__)

#: Unknowns up to which the system is factorized directly (SuperLU); AMG-CG above.
DIRECT_LIMIT = 5_000
#: Relative residual of the AMG-CG solves.
CG_TOL = 1e-12
#: Largest grid accepted (elements).
MAX_ELEMENTS = 3_000_000
#: Weight of elements outside a surface body.
OUTSIDE_WEIGHT = 1e-3

# Corner c = 4 a + 2 b + e of an element has the offsets (a, b, e) along the three axes.
_CORNERS = np.array([[a, b, e] for a in (0, 1) for b in (0, 1) for e in (0, 1)])


@dataclass(frozen=True, eq=False)
class HexGrid:
    """A regular grid of 8-node hexahedra.

    origin: (3,) position of node (0, 0, 0) (cell units)
    spacing: (3,) element edge lengths h (cell units)
    shape: (3,) number of elements along each axis; nodes are ``shape + 1``, numbered in C order
    """

    origin: np.ndarray
    spacing: np.ndarray
    shape: tuple[int, int, int]

    @property
    def node_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) + 1 for n in self.shape)  # type: ignore[return-value]

    @property
    def n_nodes(self) -> int:
        return int(np.prod(self.node_shape))

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape))

    def node_coordinates(self) -> np.ndarray:
        """(n_nodes, 3) node positions."""
        axes = [self.origin[d] + self.spacing[d] * np.arange(self.node_shape[d]) for d in range(3)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)

    def element_indices(self) -> np.ndarray:
        """(n_elements, 3) integer indices of every element, C order."""
        return np.stack(np.unravel_index(np.arange(self.n_elements), self.shape), axis=1)

    def element_nodes(self, elements: np.ndarray | None = None) -> np.ndarray:
        """(e, 8) node numbers of elements given by integer indices (e, 3) (default: all)."""
        ijk = self.element_indices() if elements is None else elements
        corners = ijk[:, None, :] + _CORNERS[None, :, :]
        return np.ravel_multi_index(tuple(np.moveaxis(corners, -1, 0)), self.node_shape)

    def element_centres(self) -> np.ndarray:
        """(n_elements, 3) element centre positions."""
        return self.origin + (self.element_indices() + 0.5) * self.spacing

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Element (p, 3) containing each point (p, 3) and local coordinates (p, 3).

        Points outside the grid use the nearest boundary element, with local coordinates
        outside [0, 1] (linear extrapolation).
        """
        scaled = (np.asarray(x, dtype=np.float64) - self.origin) / self.spacing
        element = np.clip(np.floor(scaled).astype(np.int64), 0, np.asarray(self.shape) - 1)
        return element, scaled - element


def _shape_functions(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear shape functions (p, 8) and their local gradients (p, 8, 3) at xi (p, 3)."""
    factors = np.where(_CORNERS[None, :, :] == 1, xi[:, None, :], 1.0 - xi[:, None, :])
    signs = np.where(_CORNERS == 1, 1.0, -1.0)  # d factor / d xi
    values = factors.prod(-1)
    gradients = np.empty((*values.shape, 3))
    for d in range(3):
        others = [e for e in range(3) if e != d]
        gradients[..., d] = signs[None, :, d] * factors[..., others].prod(-1)
    return values, gradients


@dataclass(frozen=True, eq=False)
class ProjectionField:
    """The projection functions ``phi_i`` (SI Eq. 13) as nodal values on a hexahedral grid.

    grid: the :class:`HexGrid`
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
        nodal = self.values[self.grid.element_nodes(element)]  # (p, 8, 3)
        shape, local_gradient = _shape_functions(xi)
        phi = np.einsum("pc,pci->pi", shape, nodal)
        jacobian = np.einsum("pcd,pci->pid", local_gradient / self.grid.spacing, nodal)
        return phi, jacobian

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``phi`` (p, 3) at points (p, 3)."""
        return self.evaluate(x)[0]


def _grid_for(problem: GradingProblem, elements_per_cell: int) -> HexGrid:
    """Grid over the body's bounding box with ``elements_per_cell`` elements per lattice-plane
    spacing of the densest control cell (``1 / max |k_i|``)."""
    if isinstance(elements_per_cell, bool) or not (
        isinstance(elements_per_cell, (int, np.integer)) and elements_per_cell >= 1
    ):
        raise MetainvError(f"elements per cell must be a positive integer, got {elements_per_cell}")
    spacing_planes = 1.0 / np.linalg.norm(np.linalg.inv(problem.bases), axis=2).max()
    h = spacing_planes / elements_per_cell
    body = problem.body
    pad = 0.0 if body.is_box else h
    lower, size = body.lower - pad, body.size + 2 * pad
    shape = tuple(int(max(1, np.ceil(s / h - 1e-9))) for s in size)
    n_elements = int(np.prod(shape))
    if n_elements > MAX_ELEMENTS:
        raise MetainvError(
            f"the projection grid would have {n_elements} elements (> {MAX_ELEMENTS}); "
            "use a smaller body or fewer elements per cell"
        )
    return HexGrid(origin=lower, spacing=size / np.array(shape), shape=shape)  # type: ignore[arg-type]


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


def _element_matrices(spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Laplace stiffness (8, 8) by 2x2x2 Gauss and the integral of the gradients (8, 3)."""
    gauss = 0.5 + np.array([-0.5, 0.5]) / np.sqrt(3.0)
    points = np.stack(np.meshgrid(gauss, gauss, gauss, indexing="ij"), axis=-1).reshape(-1, 3)
    _, local = _shape_functions(points)
    B = local / spacing  # (8 gauss, 8 nodes, 3)
    volume = float(np.prod(spacing))
    stiffness = volume / 8 * np.einsum("gad,gbd->ab", B, B)
    gradient_integral = volume / 8 * B.sum(0)  # exact: B is linear in each coordinate
    return stiffness, gradient_integral


def _solve(matrix: sp.csr_matrix, rhs: np.ndarray) -> np.ndarray:
    """Solve the SPD system for the columns of ``rhs`` (direct below DIRECT_LIMIT, else AMG)."""
    if matrix.shape[0] <= DIRECT_LIMIT:
        return spla.splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(rhs)
    import pyamg

    solver = pyamg.smoothed_aggregation_solver(matrix, symmetry="hermitian")
    out = np.empty_like(rhs)
    for i in range(rhs.shape[1]):
        residuals: list[float] = []
        out[:, i] = solver.solve(
            rhs[:, i], tol=CG_TOL, accel="cg", maxiter=500, residuals=residuals
        )
        if residuals[-1] > 1e3 * CG_TOL * max(residuals[0], 1e-300):
            ratio = residuals[-1] / residuals[0]
            logger.warning("AMG-CG for phi_%d stopped at relative residual %.2g", i + 1, ratio)
    return out


def solve_projection_functions(
    problem: GradingProblem, elements_per_cell: int = 4, anchor: np.ndarray | None = None
) -> ProjectionField:
    """Least-squares projection functions ``phi_1..3`` over the body (SI Eq. 13).

    elements_per_cell: grid elements per lattice-plane spacing of the densest control cell.
    anchor: (3,) point where ``phi = 0`` (default: the lower corner of the body's bounding box).
    """
    grid = _grid_for(problem, elements_per_cell)
    centres = grid.element_centres()
    active = (
        problem.body.contains(centres) if not problem.body.is_box else np.ones(len(centres), bool)
    )
    weight = np.where(active, 1.0, OUTSIDE_WEIGHT)
    target = _target_gradients(problem, centres)  # (e, 3 phi, 3 x)
    stiffness, gradient_integral = _element_matrices(grid.spacing)
    nodes = grid.element_nodes()
    rows = np.repeat(nodes, 8, axis=1).ravel()
    cols = np.tile(nodes, (1, 8)).ravel()
    data = (weight[:, None] * stiffness.reshape(1, 64)).ravel()
    matrix = sp.coo_matrix((data, (rows, cols)), shape=(grid.n_nodes,) * 2).tocsr()
    element_rhs = weight[:, None, None] * np.einsum("ad,eid->eai", gradient_integral, target)
    rhs = np.stack(
        [np.bincount(nodes.ravel(), element_rhs[..., i].ravel(), grid.n_nodes) for i in range(3)],
        axis=1,
    )
    values = np.zeros((grid.n_nodes, 3))
    values[1:] = _solve(matrix[1:, 1:], rhs[1:])  # node 0 pinned: phi is free up to a constant
    anchor = problem.body.lower.copy() if anchor is None else np.asarray(anchor, dtype=np.float64)
    values -= ProjectionField(grid, values, active, anchor)(anchor[None])[0]
    values.setflags(write=False)
    logger.info(
        "projection functions: %d x %d x %d elements, %d unknowns", *grid.shape, grid.n_nodes
    )
    return ProjectionField(grid=grid, values=values, active=active, anchor=anchor)
