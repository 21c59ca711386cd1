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

Clipping to the body: every cell that meets the body is placed (see
:func:`~metainv.grading.find_cell_centres`), then each strut is cut where it leaves the body (the
crossing located by bisection on :meth:`Body.contains`, exact on box faces); struts with both
ends outside are dropped. The cut ends are boundary nodes (closing joints on the body surface),
so every node of the lattice lies in the body and the solid of the struts stays inside it up to
the strut radius. Pieces of the strut graph not connected to the largest one (islands, e.g. a
strut corner cut off by the surface) are removed and counted.
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
from metainv.grading._body import Body
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
    max_merge_distance: largest distance of a node of the lattice from the copies it replaced
    length_ratios: (m,) strut length over its length in the local cell ``|A(x_mid) dX|``
        (before clipping; a cut strut keeps the ratio of its whole strut)
    clipped_struts: struts cut at the body surface
    islands_removed: pieces of the strut graph removed (not connected to the largest one)
    removed_volume: strut volume ``pi d^2 / 4 L`` of the removed islands (cell units^3)
    """

    nodes: np.ndarray
    struts: np.ndarray
    diameters: np.ndarray
    weights: np.ndarray
    lattice_coordinates: np.ndarray
    boundary: np.ndarray
    centres: CellCentres
    max_merge_distance: float
    length_ratios: np.ndarray
    clipped_struts: int = 0
    islands_removed: int = 0
    removed_volume: float = 0.0

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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merged node positions (n, 3), the label (N * n_s,) of every placed node, the lattice
    coordinates (n, 3) of the merged nodes and the largest distance (n,) of each merged node
    from the copies it replaced."""
    physical, lattice = _place_cells(problem, cell, centres)
    labels = _merge_labels(physical, lattice, SPATIAL_TOL * problem.cell_size)
    nodes = _mean_by_label(physical, labels)
    moved = np.linalg.norm(physical - nodes[labels], axis=1)
    spread = np.zeros(len(nodes))
    np.maximum.at(spread, labels, moved)
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


_BISECTION_STEPS = 60
#: Cut struts shorter than this fraction of their strut are dropped (they only touch the body).
_MIN_CUT = 1e-6


def _crossings(body: Body, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """(p, 3) points where the segments from ``inside`` (p, 3) to ``outside`` (p, 3) leave the
    body (bisection on :meth:`Body.contains`; projected onto the faces of a box)."""
    lo, hi = np.zeros(len(inside)), np.ones(len(inside))
    for _ in range(_BISECTION_STEPS):
        t = 0.5 * (lo + hi)
        within = body.contains(inside + t[:, None] * (outside - inside))
        lo, hi = np.where(within, t, lo), np.where(within, hi, t)
    points = inside + lo[:, None] * (outside - inside)
    return np.clip(points, body.lower, body.upper) if body.is_box else points


def _clip(
    body: Body, nodes: np.ndarray, lattice: np.ndarray, struts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clip the struts (m, 2) to the body (module docstring). Returns the nodes (n', 3) with the
    cut ends appended, their lattice coordinates (n', 3) (interpolated for cut ends), the struts
    (m', 2), the index (m',) of each one's source strut and a cut-end mask (n',)."""
    inside = body.contains(nodes)
    ends_in = inside[struts]
    whole = ends_in.all(1)
    cut = np.flatnonzero(ends_in.any(1) & ~whole)
    a, b = struts[cut, 0], struts[cut, 1]
    start = np.where(inside[a], a, b)  # the inside end
    stop = np.where(inside[a], b, a)
    points = _crossings(body, nodes[start], nodes[stop])
    t = np.linalg.norm(points - nodes[start], axis=1) / np.linalg.norm(
        nodes[stop] - nodes[start], axis=1
    )
    stub = t > _MIN_CUT  # a strut leaving the body at its inside end is dropped, not cut
    cut, start, points, t = cut[stub], start[stub], points[stub], t[stub]
    coordinates = lattice[start] + t[:, None] * (lattice[stop[stub]] - lattice[start])
    new = len(nodes) + np.arange(len(cut))
    clipped = np.concatenate([struts[whole], np.sort(np.stack([start, new], 1), axis=1)])
    source = np.concatenate([np.flatnonzero(whole), cut])
    is_cut = np.concatenate([np.zeros(len(nodes), bool), np.ones(len(cut), bool)])
    return (
        np.concatenate([nodes, points]),
        np.concatenate([lattice, coordinates]),
        clipped,
        source,
        is_cut,
    )


def _largest_piece(struts: np.ndarray, volumes: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Keep mask (m,) of the struts of the connected piece with the largest strut volume, and
    the number of other pieces."""
    graph = coo_matrix((np.ones(len(struts)), (struts[:, 0], struts[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    piece = label[struts[:, 0]]
    pieces, inverse = np.unique(piece, return_inverse=True)
    largest = int(np.argmax(np.bincount(inverse, volumes)))
    return inverse == largest, len(pieces) - 1


def assemble_lattice(
    problem: GradingProblem,
    cell: SuperposedCell,
    centres: CellCentres,
    min_relative_diameter: float = 0.05,
    clip: bool = True,
) -> GradedLattice:
    """Place, merge, grade and (with ``clip``) clip the cells to the body (module docstring)."""
    if len(centres) == 0:
        raise MetainvError("no cell centre lies in the body: make the body larger than one cell")
    nodes, labels, lattice, spread = _merged_nodes(problem, cell, centres)
    struts, full = _cell_struts(cell, len(centres), labels)
    middle = 0.5 * (nodes[struts[:, 0]] + nodes[struts[:, 1]])
    weights = problem.weights(middle)
    diameters = (full * weights).sum(1)  # SI Eq. 16 at the strut midpoints
    step = lattice[struts[:, 1]] - lattice[struts[:, 0]]
    nominal = np.linalg.norm(np.einsum("mij,mj->mi", problem.basis(middle), step), axis=1)
    ratios = np.linalg.norm(nodes[struts[:, 1]] - nodes[struts[:, 0]], axis=1) / nominal
    keep = diameters > min_relative_diameter * full.max(1)
    boundary = _boundary_nodes(lattice, centres.indices)
    source = np.flatnonzero(keep)
    struts = struts[keep]
    n_clipped = 0
    if clip:
        nodes, lattice, struts, kept, is_cut = _clip(problem.body, nodes, lattice, struts)
        source, boundary = source[kept], np.concatenate([boundary, is_cut[len(boundary) :]])
        n_clipped = int(is_cut.sum())
    if len(struts) == 0:
        raise MetainvError("no strut of the lattice lies in the body: make the body larger")
    alive = _prune_dangling(struts, boundary, len(nodes))
    struts, source = struts[alive], source[alive]
    lengths = np.linalg.norm(nodes[struts[:, 1]] - nodes[struts[:, 0]], axis=1)
    volumes = np.pi / 4 * diameters[source] ** 2 * lengths
    piece, islands = _largest_piece(struts, volumes, len(nodes))
    removed = float(volumes[~piece].sum())
    struts, source = struts[piece], source[piece]
    used, struts = _compact(np.unique(struts), struts, len(nodes))
    spread = float(spread[used[used < len(spread)]].max(initial=0.0))  # cut ends moved none
    logger.info(
        "graded lattice: %d cells, %d nodes, %d struts (%d cut at the body, %d islands removed)"
        ", merge spread %.3g",
        *(len(centres), len(used), len(struts), n_clipped, islands, spread),
    )
    return GradedLattice(
        nodes=nodes[used],
        struts=struts,
        diameters=diameters[source],
        weights=weights[source],
        lattice_coordinates=lattice[used],
        boundary=boundary[used],
        centres=centres,
        max_merge_distance=spread,
        length_ratios=ratios[source],
        clipped_struts=n_clipped,
        islands_removed=islands,
        removed_volume=removed,
    )


def graded_lattice(
    problem: GradingProblem,
    elements_per_cell: int = 4,
    min_relative_diameter: float = 0.05,
    on_step: Callable[[str], None] | None = None,
    clip: bool = True,
) -> GradedLattice:
    """Build the graded lattice of ``problem`` (SI Sec. 5; see the module docstring).

    elements_per_cell: finite-element resolution of the projection functions (per lattice-plane
        spacing of the densest control cell).
    min_relative_diameter: struts thinner than this fraction of their full diameter are dropped.
    on_step: called with a short message before each long step (progress display).
    clip: place every cell that meets the body and clip the struts to it (module docstring);
        ``False`` keeps whole the cells whose centres lie in the body (they stick out).
    """
    step = on_step or (lambda message: None)
    if not 0.0 <= min_relative_diameter < 1.0:
        raise MetainvError(f"min_relative_diameter must lie in [0, 1), got {min_relative_diameter}")
    step("superposing the control topologies")
    cell = superposed_cell(problem.designs)
    step("solving the projection functions (FE, SI Eq. 13)")
    field: ProjectionField = solve_projection_functions(problem, elements_per_cell)
    step("locating the cell centres")
    centres = find_cell_centres(field, problem.body, problem.basis if clip else None)
    step(f"placing and merging {len(centres)} cells")
    return assemble_lattice(problem, cell, centres, min_relative_diameter, clip)
