"""Assemble the graded lattice: one superposed cell per centre, merged, with graded struts.

Steps (SI Sec. 5): the projection functions (SI Eq. 13) give the cell centres ``x_nu`` with
labels ``n_nu``; a superposed cell with basis ``A(x_nu)`` (SI Eq. 15) is placed at each, its node
``X`` (reference cube) going to ``x_nu + A(x_nu) (X - 1/2)``. Nodes of neighbouring cells that
coincide in the reference lattice (the same lattice coordinate ``n_nu + X``) or in space (closer
than ``1e-6`` cell) are merged at their mean position and the struts re-connected: however far a
strong grading moves them apart, they are the same node of the lattice. Each strut gets the
diameter ``d^s(x) = sum_i d_i^s N(x, x_i)`` (SI Eq. 16) at its midpoint; struts thinner than
``min_relative_diameter`` times their full diameter ``max_i d_i^s`` are dropped (their ``N`` is
numerically but not exactly 0), then struts left dangling inside the lattice are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from metainv.errors import MetainvError
from metainv.grading._centres import CellCentres, find_cell_centres
from metainv.grading._fem import ProjectionField, solve_projection_functions
from metainv.grading._problem import GradingProblem
from metainv.grading._superpose import SuperposedCell, superposed_cell

__all__ = ["GradedLattice", "graded_lattice"]

logger = logging.getLogger(__name__)

#: Tolerance of the lattice-coordinate identification (reference cube edge = 1).
LATTICE_TOL = 1e-6
#: Spatial merge tolerance as a fraction of the cell size.
SPATIAL_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class GradedLattice:
    """A functionally graded truss lattice.

    nodes: (n, 3) node positions (cell units)
    struts: (m, 2) int64 node indices, each pair sorted, unique
    diameters: (m,) strut diameters (cell units, SI Eq. 16)
    weights: (m, k) RBF weights ``N(x, x_i)`` at the strut midpoints (SI Eq. 14)
    lattice_coordinates: (n, 3) reference-lattice coordinates ``n_nu + X`` of the nodes
    boundary: (n,) bool, nodes on the outer surface of the lattice (not surrounded by cells)
    centres: the cell centres and labels
    max_merge_distance: largest distance of a merged node from the copies it replaced
    """

    nodes: np.ndarray
    struts: np.ndarray
    diameters: np.ndarray
    weights: np.ndarray
    lattice_coordinates: np.ndarray
    boundary: np.ndarray
    centres: CellCentres
    max_merge_distance: float

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_struts(self) -> int:
        return len(self.struts)

    @property
    def degrees(self) -> np.ndarray:
        """(n,) number of struts at each node."""
        return np.bincount(self.struts.ravel(), minlength=self.n_nodes)

    @property
    def strut_lengths(self) -> np.ndarray:
        """(m,) strut lengths (cell units)."""
        return np.linalg.norm(self.nodes[self.struts[:, 1]] - self.nodes[self.struts[:, 0]], axis=1)


def _place_cells(
    problem: GradingProblem, cell: SuperposedCell, centres: CellCentres
) -> tuple[np.ndarray, np.ndarray]:
    """Physical (N * n_s, 3) and lattice (N * n_s, 3) coordinates of every cell's nodes."""
    X = cell.graph.nodes
    bases = problem.basis(centres.positions)
    physical = centres.positions[:, None, :] + np.einsum("cij,sj->csi", bases, X - 0.5)
    lattice = centres.indices[:, None, :] + X[None, :, :]
    return physical.reshape(-1, 3), lattice.reshape(-1, 3)


def _merge_labels(physical: np.ndarray, lattice: np.ndarray, spatial_tol: float) -> np.ndarray:
    """Component label of every placed node: same lattice coordinate or spatially coincident."""
    pairs = np.concatenate(
        [
            cKDTree(lattice).query_pairs(LATTICE_TOL, output_type="ndarray"),
            cKDTree(physical).query_pairs(spatial_tol, output_type="ndarray"),
        ]
    )
    n = len(physical)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _mean_by_label(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    counts = np.bincount(labels)
    return np.stack([np.bincount(labels, values[:, d]) / counts for d in range(3)], axis=1)


def _boundary_nodes(lattice: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(n,) bool: nodes (lattice coordinates) not surrounded by cells of the lattice.

    A node lies in the closed box of every cell ``floor(g) - delta`` with ``delta_d`` in {0, 1}
    where ``g_d`` is an integer, else 0; it is interior when all those cells exist.
    """
    rounded = np.rint(lattice)
    integer = np.abs(lattice - rounded) < LATTICE_TOL
    base = np.where(integer, rounded, np.floor(lattice)).astype(np.int64)
    low = indices.min(0) - 1
    span = indices.max(0) - low + 2
    present = np.zeros(tuple(span), dtype=bool)
    present[tuple((indices - low).T)] = True
    boundary = np.zeros(len(lattice), dtype=bool)
    for delta in np.ndindex(2, 2, 2):
        step = np.array(delta)
        needed = ~np.any((step == 1) & ~integer, axis=1)
        cell = np.clip(base - step - low, 0, span - 1)
        boundary |= needed & ~present[tuple(cell.T)]
    return boundary


def _prune_dangling(struts: np.ndarray, boundary: np.ndarray, n: int) -> np.ndarray:
    """Remove struts with an interior end of degree 1, repeatedly. Returns a keep mask (m,)."""
    keep = np.ones(len(struts), dtype=bool)
    while True:
        degree = np.bincount(struts[keep].ravel(), minlength=n)
        loose = (degree == 1) & ~boundary
        drop = keep & loose[struts].any(axis=1)
        if not drop.any():
            return keep
        keep &= ~drop


def _compact(nodes_used: np.ndarray, struts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the used nodes and the struts renumbered onto them."""
    new_index = np.full(n, -1, dtype=np.int64)
    new_index[nodes_used] = np.arange(len(nodes_used))
    return nodes_used, new_index[struts]


def _merged_nodes(
    problem: GradingProblem, cell: SuperposedCell, centres: CellCentres
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Merged node positions (n, 3), the label (N * n_s,) of every placed node, the lattice
    coordinates (n, 3) of the merged nodes and the largest distance moved by merging."""
    physical, lattice = _place_cells(problem, cell, centres)
    labels = _merge_labels(physical, lattice, SPATIAL_TOL * problem.cell_size)
    nodes = _mean_by_label(physical, labels)
    spread = float(np.linalg.norm(physical - nodes[labels], axis=1).max())
    _, first = np.unique(labels, return_index=True)
    return nodes, labels, lattice[first], spread


def _cell_struts(
    cell: SuperposedCell, n_cells: int, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unique struts (m, 2) between merged nodes and their full diameters ``d_i^s`` (m, k)."""
    offsets = cell.graph.n_nodes * np.arange(n_cells)
    struts = labels[offsets[:, None, None] + cell.graph.struts[None]].reshape(-1, 2)
    struts, unique = np.unique(np.sort(struts, axis=1), axis=0, return_index=True)
    full = np.tile(cell.diameters, (n_cells, 1))[unique]
    valid = struts[:, 0] != struts[:, 1]
    return struts[valid], full[valid]


def assemble_lattice(
    problem: GradingProblem,
    cell: SuperposedCell,
    centres: CellCentres,
    min_relative_diameter: float = 0.05,
) -> GradedLattice:
    """Place, merge and grade the cells (see the module docstring)."""
    if len(centres) == 0:
        raise MetainvError("no cell centre lies in the body: make the body larger than one cell")
    nodes, labels, lattice, spread = _merged_nodes(problem, cell, centres)
    struts, full = _cell_struts(cell, len(centres), labels)
    weights = problem.weights(0.5 * (nodes[struts[:, 0]] + nodes[struts[:, 1]]))
    diameters = (full * weights).sum(1)  # SI Eq. 16 at the strut midpoints
    keep = diameters > min_relative_diameter * full.max(1)
    boundary = _boundary_nodes(lattice, centres.indices)
    keep[keep] = _prune_dangling(struts[keep], boundary, len(nodes))
    used, struts = _compact(np.unique(struts[keep]), struts[keep], len(nodes))
    logger.info(
        "graded lattice: %d cells, %d nodes, %d struts (%d dropped), merge spread %.3g",
        *(len(centres), len(used), len(struts), int((~keep).sum()), spread),
    )
    return GradedLattice(
        nodes=nodes[used],
        struts=struts,
        diameters=diameters[keep],
        weights=weights[keep],
        lattice_coordinates=lattice[used],
        boundary=boundary[used],
        centres=centres,
        max_merge_distance=spread,
    )


def graded_lattice(
    problem: GradingProblem,
    elements_per_cell: int = 4,
    min_relative_diameter: float = 0.05,
    on_step: Callable[[str], None] | None = None,
) -> GradedLattice:
    """Build the graded lattice of ``problem`` (SI Sec. 5; see the module docstring).

    elements_per_cell: finite-element resolution of the projection functions (per lattice-plane
        spacing of the densest control cell).
    min_relative_diameter: struts thinner than this fraction of their full diameter are dropped.
    on_step: called with a short message before each long step (progress display).
    """
    step = on_step or (lambda message: None)
    if not 0.0 <= min_relative_diameter < 1.0:
        raise MetainvError(f"min_relative_diameter must lie in [0, 1), got {min_relative_diameter}")
    step("superposing the control topologies")
    cell = superposed_cell(problem.designs)
    step("solving the projection functions (FE, SI Eq. 13)")
    field: ProjectionField = solve_projection_functions(problem, elements_per_cell)
    step("locating the cell centres")
    centres = find_cell_centres(field, problem.body)
    step(f"placing and merging {len(centres)} cells")
    return assemble_lattice(problem, cell, centres, min_relative_diameter)
