"""The superposed unit cell: all control topologies in one graph (SI Sec. 5, Eq. 16).

The compound graphs of the k control designs are united in the reference cube and cleaned
(:func:`metainv.truss.compound.clean_graph`: merged nodes, split overlaps and crossings). Strut
``s`` of the result carries the diameters ``d_i^s`` of SI Eq. 16: the uniform diameter ``d_i`` of
design ``i`` (from its relative density, :func:`metainv.truss.lattice.strut_diameter`) when ``s``
lies on a strut of design ``i``, else 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metainv.truss.cells import CellGraph
from metainv.truss.compound import DEFAULT_TOL, clean_graph, compound_graph, union_graph
from metainv.truss.design import TrussDesign, deformation_gradient
from metainv.truss.lattice import PeriodicLattice, lattice_from_graph, periodic_lattice
from metainv.truss.lattice import strut_diameter as uniform_strut_diameter

__all__ = ["SuperposedCell", "superposed_cell"]


@dataclass(frozen=True, eq=False)
class SuperposedCell:
    """All control topologies superimposed in the reference unit cube.

    graph: non-periodic cleaned graph in ``[0, 1]^3`` (fractional coordinates; face struts on
        both opposite faces, as :func:`~metainv.truss.compound.compound_graph` builds them)
    diameters: (m, k) ``d_i^s`` of the graph's struts (SI Eq. 16; cell units)
    periodic: the same cell with opposite faces identified (for local homogenization)
    periodic_diameters: (m_p, k) ``d_i^s`` of the periodic struts
    """

    graph: CellGraph
    diameters: np.ndarray
    periodic: PeriodicLattice
    periodic_diameters: np.ndarray


def _on_segments(points: np.ndarray, graph: CellGraph, tol: float = 1e-8) -> np.ndarray:
    """(p,) bool: which points lie on a strut of ``graph`` (interior or end, within ``tol``)."""
    start = graph.nodes[graph.struts[:, 0]]
    vector = graph.nodes[graph.struts[:, 1]] - start
    rel = points[:, None, :] - start[None, :, :]  # (p, q, 3)
    t = np.clip(np.einsum("pqi,qi->pq", rel, vector) / (vector * vector).sum(1), 0.0, 1.0)
    distance = np.linalg.norm(rel - t[..., None] * vector[None], axis=-1)
    return (distance < tol).any(axis=1)


def _membership(midpoints: np.ndarray, graphs: Sequence[CellGraph]) -> np.ndarray:
    """(m, k) bool: strut midpoints (m, 3) on each design's graph. After cleaning, a strut of
    the union is a whole or split strut of a design exactly when its midpoint lies on one."""
    return np.stack([_on_segments(midpoints, g) for g in graphs], axis=1)


def superposed_cell(designs: Sequence[TrussDesign]) -> SuperposedCell:
    """Superpose the compound cells of ``designs`` with their strut diameters ``d_i``."""
    graphs = [compound_graph(d.topology) for d in designs]
    union = clean_graph(union_graph(graphs), DEFAULT_TOL)
    d = np.array(
        [
            float(
                uniform_strut_diameter(
                    periodic_lattice(x.topology), deformation_gradient(x), x.relative_density
                )
            )
            for x in designs
        ]
    )
    mid = 0.5 * (union.nodes[union.struts[:, 0]] + union.nodes[union.struts[:, 1]])
    periodic = lattice_from_graph(union)
    start = periodic.nodes[periodic.struts[:, 0]]
    end = periodic.nodes[periodic.struts[:, 1]] + periodic.offsets
    periodic_mid = (0.5 * (start + end)) % 1.0  # an image of the strut lies in the closed cube
    diameters = _membership(mid, graphs) * d
    periodic_diameters = _membership(periodic_mid, graphs) * d
    for array in (diameters, periodic_diameters):
        array.setflags(write=False)
    return SuperposedCell(
        graph=union,
        diameters=diameters,
        periodic=periodic,
        periodic_diameters=periodic_diameters,
    )
