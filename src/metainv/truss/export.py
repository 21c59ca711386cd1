"""Finite blocks of a truss design as a graph (JSON) or a watertight triangle mesh (STL).

The compound cell of the design (:func:`metainv.truss.compound.compound_graph`, a non-periodic
graph in the closed unit cube) is tiled over ``N1 x N2 x N3`` reference cells, nodes on shared
faces are merged, duplicate struts dropped, and every node is mapped by ``x = F X`` with
``F = R2 V R1 U``. Struts have the uniform diameter that gives the design's relative density in
the periodic lattice (node overlap ignored).

A finite block carries whole struts on its outer faces, where the periodic lattice shares them
with the neighbouring cells, so its solid volume exceeds ``rho * det(F) * N1 N2 N3`` by the
boundary struts (e.g. by 25 % for a 2x2x2 octet block, 125 % for simple cubic; not at all for
BCC, whose struts are all interior).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import trimesh

from metainv.errors import DesignError, MetainvError
from metainv.files import write_text_atomic
from metainv.mesh import strut_mesh, weld_nodes, write_stl
from metainv.truss.compound import compound_graph
from metainv.truss.design import TrussDesign, deformation_gradient, design_to_dict
from metainv.truss.lattice import periodic_lattice, strut_diameter

logger = logging.getLogger(__name__)

#: Reference-coordinate distance below which two tiled nodes are the same node.
MERGE_TOL = 1e-7
#: Largest number of cells per direction accepted by the exporters.
MAX_CELLS_PER_AXIS = 50


@dataclass(frozen=True, eq=False)
class LatticeGraph:
    """A finite block of a truss lattice in physical coordinates.

    nodes: (n, 3) float64 physical node positions ``x = F X`` (reference cell edge = 1)
    struts: (m, 2) int64 node indices, each pair sorted and unique
    diameter: uniform strut diameter (same length unit as ``nodes``)
    lattice_vectors: (3, 3) ``F``, columns are the lattice vectors a1, a2, a3
    cells: (N1, N2, N3) number of cells along a1, a2, a3
    """

    nodes: np.ndarray
    struts: np.ndarray
    diameter: float
    lattice_vectors: np.ndarray
    cells: tuple[int, int, int]

    @property
    def strut_lengths(self) -> np.ndarray:
        """(m,) physical strut lengths."""
        return np.linalg.norm(self.nodes[self.struts[:, 1]] - self.nodes[self.struts[:, 0]], axis=1)

    @property
    def strut_volume(self) -> float:
        """Sum of the cylinder volumes ``pi d^2/4 * L`` (overlaps at the joints counted twice)."""
        return float(np.pi * self.diameter**2 / 4 * self.strut_lengths.sum())


def _check_cells(cells: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(cells)
    if len(values) != 3 or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in values
    ):
        raise DesignError(f"cells must be three positive integers, got {cells!r}")
    if not all(1 <= n <= MAX_CELLS_PER_AXIS for n in values):
        raise DesignError(f"cells must each lie in 1..{MAX_CELLS_PER_AXIS}, got {list(values)}")
    return (int(values[0]), int(values[1]), int(values[2]))


def tile_reference_graph(
    nodes: np.ndarray, struts: np.ndarray, cells: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Tile a unit-cube graph over an ``N1 x N2 x N3`` block in reference coordinates.

    nodes (n, 3) in [0, 1]^3, struts (m, 2). Returns merged nodes (n', 3) in [0, N]^3 and unique
    sorted struts (m', 2); nodes closer than :data:`MERGE_TOL` are merged
    (:func:`metainv.mesh.weld_nodes`), struts that collapse to a point are dropped.
    """
    shifts = np.stack(np.meshgrid(*(np.arange(n) for n in cells), indexing="ij"), axis=-1).reshape(
        -1, 3
    )
    n = len(nodes)
    tiled = (nodes[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    tiled_struts = (struts[None, :, :] + n * np.arange(len(shifts))[:, None, None]).reshape(-1, 2)

    merged_nodes, merged, kept = weld_nodes(tiled, tiled_struts, MERGE_TOL)
    merged = np.unique(np.sort(merged[kept], axis=1), axis=0)
    return merged_nodes, merged.astype(np.int64)


def lattice_graph(
    design: TrussDesign, cells: Sequence[int] = (1, 1, 1), scale: float = 1.0
) -> LatticeGraph:
    """Physical graph of an ``N1 x N2 x N3`` block of the design's compound cell.

    Returns a :class:`LatticeGraph`: nodes (n, 3), struts (m, 2), strut diameter (uniform, from
    the relative density of the periodic lattice) and lattice vectors ``F`` (3, 3), all lengths
    multiplied by ``scale`` (the output length of a reference cell edge; e.g. mm).
    """
    if not (np.isfinite(scale) and scale > 0):
        raise MetainvError(f"the export scale must be a positive length, got {scale}")
    block = _check_cells(cells)
    cell = compound_graph(design.topology)
    ref_nodes, struts = tile_reference_graph(
        np.asarray(cell.nodes, dtype=np.float64), np.asarray(cell.struts, dtype=np.int64), block
    )
    F = deformation_gradient(design)
    diameter = float(strut_diameter(periodic_lattice(design.topology), F, design.relative_density))
    return LatticeGraph(
        nodes=ref_nodes @ (scale * F).T,
        struts=struts,
        diameter=diameter * scale,
        lattice_vectors=scale * F,
        cells=block,
    )


def graph_to_dict(graph: LatticeGraph, design: TrussDesign) -> dict[str, Any]:
    """JSON-ready dict of an exported block (see :func:`export_json`)."""
    return {
        "nodes": graph.nodes.tolist(),
        "struts": graph.struts.tolist(),
        "diameter": graph.diameter,
        "lattice_vectors": graph.lattice_vectors.tolist(),
        "cells": list(graph.cells),
        "design": design_to_dict(design),
    }


def export_json(
    design: TrussDesign,
    path: str | Path,
    cells: Sequence[int] = (1, 1, 1),
    scale: float = 1.0,
    **_: Any,
) -> LatticeGraph:
    """Write the block as JSON and return its graph.

    Format: ``{"nodes": [[x, y, z], ...], "struts": [[i, j], ...] (0-indexed), "diameter": d,
    "lattice_vectors": F (3x3, columns a1, a2, a3), "cells": [N1, N2, N3],
    "design": <design dict>}``.
    """
    graph = lattice_graph(design, cells, scale)
    write_text_atomic(path, json.dumps(graph_to_dict(graph, design)) + "\n")
    return graph


def lattice_mesh(graph: LatticeGraph, segments: int = 16, seed: int = 0) -> trimesh.Trimesh:
    """Watertight ``trimesh.Trimesh`` of the block: ``segments``-gon cylinders of diameter
    ``graph.diameter`` for struts and spheres at nodes, united by the shared strut mesher
    :func:`metainv.mesh.strut_mesh` (stays watertight as float32 STL; ``seed`` fixes its jitter).

    Raises:
        MetainvError: if no watertight mesh (as read back from STL) was obtained.
    """
    return strut_mesh(graph.nodes, graph.struts, graph.diameter, segments=segments, seed=seed)


def export_stl(
    design: TrussDesign,
    path: str | Path,
    cells: Sequence[int] = (1, 1, 1),
    segments: int = 16,
    scale: float = 1.0,
) -> LatticeGraph:
    """Write the block as a watertight binary STL (one manifold solid) and return its graph.

    ``segments`` is the number of polygon sides of each strut (and of the joint spheres).
    Lengths are ``scale`` times those of the reference cell (edge 1 before the affine map).
    """
    tic = time.perf_counter()
    graph = lattice_graph(design, cells, scale)
    mesh = lattice_mesh(graph, segments)
    write_stl(mesh, path)
    logger.info(
        "wrote %s: %d struts, %d triangles, volume %.4g, %.2f s",
        path,
        len(graph.struts),
        len(mesh.faces),
        mesh.volume,
        time.perf_counter() - tic,
    )
    return graph


#: Export format name -> writer ``(design, path, cells, segments=...) -> LatticeGraph``.
EXPORTERS: MappingProxyType[str, Callable[..., LatticeGraph]] = MappingProxyType(
    {"stl": export_stl, "json": export_json}
)


def export_design(
    design: TrussDesign,
    path: str | Path,
    cells: Sequence[int] = (1, 1, 1),
    fmt: str | None = None,
    segments: int = 16,
    scale: float = 1.0,
) -> LatticeGraph:
    """Export with the format ``fmt`` (``stl`` or ``json``), inferred from the suffix if None;
    lengths ``scale`` times the design's (reference cell edge 1)."""
    name = (fmt or Path(path).suffix.lstrip(".")).lower()
    if name not in EXPORTERS:
        raise MetainvError(
            f"unknown export format {name or Path(path).name!r}; "
            f"expected one of: {', '.join(EXPORTERS)} (give --format or a .stl/.json suffix)"
        )
    return EXPORTERS[name](design, path, cells, segments=segments, scale=scale)
