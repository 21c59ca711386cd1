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

import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import manifold3d
import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from metainv.errors import DesignError, MetainvError
from metainv.tensors import random_rotations
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
    sorted struts (m', 2); nodes closer than :data:`MERGE_TOL` are merged (cKDTree), struts
    that collapse to a point are dropped.
    """
    shifts = np.stack(np.meshgrid(*(np.arange(n) for n in cells), indexing="ij"), axis=-1).reshape(
        -1, 3
    )
    n = len(nodes)
    tiled = (nodes[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    tiled_struts = (struts[None, :, :] + n * np.arange(len(shifts))[:, None, None]).reshape(-1, 2)

    pairs = cKDTree(tiled).query_pairs(MERGE_TOL, output_type="ndarray")
    graph = coo_matrix(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(tiled), len(tiled))
    )
    _, label = connected_components(graph, directed=False)
    # First occurrence of each label gives the representative coordinate, in label order.
    _, first = np.unique(label, return_index=True)
    merged_nodes = tiled[first]

    merged = np.sort(label[tiled_struts], axis=1)
    merged = merged[merged[:, 0] != merged[:, 1]]
    merged = np.unique(merged, axis=0)
    return merged_nodes, merged.astype(np.int64)


def lattice_graph(design: TrussDesign, cells: Sequence[int] = (1, 1, 1)) -> LatticeGraph:
    """Physical graph of an ``N1 x N2 x N3`` block of the design's compound cell.

    Returns a :class:`LatticeGraph`: nodes (n, 3), struts (m, 2), strut diameter (uniform, from
    the relative density of the periodic lattice) and lattice vectors ``F`` (3, 3).
    """
    block = _check_cells(cells)
    cell = compound_graph(design.topology)
    ref_nodes, struts = tile_reference_graph(
        np.asarray(cell.nodes, dtype=np.float64), np.asarray(cell.struts, dtype=np.int64), block
    )
    F = deformation_gradient(design)
    diameter = float(strut_diameter(periodic_lattice(design.topology), F, design.relative_density))
    return LatticeGraph(
        nodes=ref_nodes @ F.T,
        struts=struts,
        diameter=diameter,
        lattice_vectors=F,
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
    design: TrussDesign, path: str | Path, cells: Sequence[int] = (1, 1, 1), **_: Any
) -> LatticeGraph:
    """Write the block as JSON and return its graph.

    Format: ``{"nodes": [[x, y, z], ...], "struts": [[i, j], ...] (0-indexed), "diameter": d,
    "lattice_vectors": F (3x3, columns a1, a2, a3), "cells": [N1, N2, N3],
    "design": <design dict>}``.
    """
    graph = lattice_graph(design, cells)
    Path(path).write_text(json.dumps(graph_to_dict(graph, design)) + "\n")
    return graph


def _frame(direction: np.ndarray) -> np.ndarray:
    """(3, 3) rotation whose third column is the unit vector ``direction`` (3,)."""
    helper = np.eye(3)[int(np.argmin(np.abs(direction)))]
    b1 = np.cross(direction, helper)
    b1 /= np.linalg.norm(b1)
    b2 = np.cross(direction, b1)
    return np.column_stack([b1, b2, direction])


def _about_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


#: Extension of every cylinder into its end joints, as a fraction of the strut radius.
_EXTENSION = (0.01, 0.03)
#: Attempts with fresh discretization jitter before giving up on a watertight STL.
_ATTEMPTS = 4


def _solid(graph: LatticeGraph, segments: int, rng: np.random.Generator) -> manifold3d.Manifold:
    """Union (a ``manifold3d.Manifold``) of the strut cylinders and the joint spheres.

    Lattices are full of exact symmetries (collinear struts, mirror-symmetric joints) that make
    the polygonal surfaces meet in degenerate configurations; the union is then topologically
    manifold but has distinct vertices at identical positions, which an STL reader welds into
    non-manifold edges. The discretization is therefore put in general position: each
    cylinder's polygon gets a random twist about its axis and reaches 1-3 % of the radius into
    its end joints (so collinear neighbours overlap instead of sharing a cap), and each sphere
    a random orientation. The solid differs from the exact one by far less than the polygon
    error itself.
    """
    radius = graph.diameter / 2
    start = graph.nodes[graph.struts[:, 0]]
    vectors = graph.nodes[graph.struts[:, 1]] - start
    lengths = np.linalg.norm(vectors, axis=1)
    twists = rng.uniform(0.0, 2 * np.pi / segments, size=len(lengths))
    extension = radius * rng.uniform(*_EXTENSION, size=(len(lengths), 2))

    solids = []
    for p, v, length, twist, (e0, e1) in zip(
        start, vectors, lengths, twists, extension, strict=True
    ):
        axis = v / length
        frame = _frame(axis) @ _about_z(twist)
        cylinder = manifold3d.Manifold.cylinder(length + e0 + e1, radius, radius, segments)
        solids.append(cylinder.transform(np.column_stack([frame, p - e0 * axis])))
    ball = manifold3d.Manifold.sphere(radius, segments)
    orientations = random_rotations(len(graph.nodes), rng)
    solids.extend(
        ball.transform(np.column_stack([R, x]))
        for R, x in zip(orientations, graph.nodes, strict=True)
    )
    return manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add)


def _stl_round_trip(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh as an STL reader sees it: float32 vertices welded by position."""
    data = trimesh.exchange.stl.export_stl(mesh)
    return trimesh.load(io.BytesIO(data), file_type="stl", force="mesh")


def lattice_mesh(graph: LatticeGraph, segments: int = 16, seed: int = 0) -> trimesh.Trimesh:
    """Watertight ``trimesh.Trimesh`` of the block: cylinders for struts, spheres at nodes.

    Each strut is a ``segments``-gon prism of diameter ``graph.diameter`` and each node a
    geodesic sphere of the same diameter; all solids are unioned in one batch boolean by
    manifold3d. ``seed`` fixes the discretization jitter (see :func:`_solid`), so the output is
    reproducible.

    Raises:
        MetainvError: if no watertight mesh (as read back from STL) was obtained.
    """
    if segments < 3:
        raise MetainvError(f"segments must be at least 3, got {segments}")
    if len(graph.struts) == 0:
        raise MetainvError("the lattice has no struts to mesh")
    rng = np.random.default_rng(seed)
    for attempt in range(_ATTEMPTS):
        solid = _solid(graph, segments, rng)
        mesh_gl = solid.to_mesh()
        vertices = np.asarray(mesh_gl.vert_properties, dtype=np.float64)[:, :3]
        faces = np.asarray(mesh_gl.tri_verts, dtype=np.int64)
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
        if mesh.is_watertight and _stl_round_trip(mesh).is_watertight:
            return mesh
        logger.info("mesh attempt %d not watertight after STL round trip; new jitter", attempt)
    raise MetainvError(
        f"could not build a watertight STL mesh in {_ATTEMPTS} attempts; try other --segments"
    )


def export_stl(
    design: TrussDesign, path: str | Path, cells: Sequence[int] = (1, 1, 1), segments: int = 16
) -> LatticeGraph:
    """Write the block as a watertight binary STL (one manifold solid) and return its graph.

    ``segments`` is the number of polygon sides of each strut (and of the joint spheres).
    Units are those of the reference cell (edge length 1 before the affine map).
    """
    tic = time.perf_counter()
    graph = lattice_graph(design, cells)
    mesh = lattice_mesh(graph, segments)
    Path(path).write_bytes(trimesh.exchange.stl.export_stl(mesh))
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
) -> LatticeGraph:
    """Export with the format ``fmt`` (``stl`` or ``json``), inferred from the suffix if None."""
    name = (fmt or Path(path).suffix.lstrip(".")).lower()
    if name not in EXPORTERS:
        raise MetainvError(
            f"unknown export format {name or Path(path).name!r}; "
            f"expected one of: {', '.join(EXPORTERS)} (give --format or a .stl/.json suffix)"
        )
    return EXPORTERS[name](design, path, cells, segments=segments)
