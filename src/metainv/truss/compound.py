"""Compound unit cells: the union of three tessellated elementary cells, made a clean graph.

``compound_graph(topology)`` superimposes ``t1 x S1 + t2 x S2 + t3 x S3`` in the closed unit cube,
adds the periodic images of face nodes and face struts that fall in the closed cube
(:func:`periodic_completion`, so that the cube's opposite faces carry the same graph), and
resolves every geometric coincidence (spec ``truss.md`` section 2):

* nodes closer than ``tol`` are merged (KD-tree pairs + connected components; the node with the
  lowest index, i.e. an original cell node before any computed crossing, is kept, so exact
  fractional coordinates survive);
* zero-length and duplicate struts are removed;
* a node lying in the interior of a strut (T-junction, or the end of a collinear overlapping
  strut) splits that strut; collinear overlaps thereby become identical sub-struts and are merged;
* two struts crossing at interior points of both get a new node at the crossing and are split;

repeated until nothing changes; nodes no strut uses are dropped. The result is the non-periodic
graph in ``[0, 1]^3`` (a face strut appears on both opposite faces, an edge strut on all four
parallel cube edges; tiling it and merging coincident nodes gives the infinite lattice) in canonical
order (nodes sorted lexicographically by coordinates, struts ``(i < j)`` sorted), so equal
compounds give identical arrays. All geometric tests are vectorised numpy (dense broadcasts over
the few hundred struts and nodes of a compound).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from metainv.errors import DesignError
from metainv.truss.cells import CellGraph, elementary_cell, tessellate

__all__ = [
    "DEFAULT_TOL",
    "canonical_order",
    "clean_graph",
    "compound_graph",
    "crossing_points",
    "drop_unused_nodes",
    "merge_nodes",
    "periodic_completion",
    "split_at_nodes",
    "union_graph",
]

DEFAULT_TOL = 1e-9
"""Geometric tolerance in fractional coordinates (the cell edge is 1)."""

_MAX_ITERATIONS = 20


def union_graph(graphs: Iterable[CellGraph]) -> CellGraph:
    """Concatenate graphs (no merging)."""
    graphs = list(graphs)
    offsets = np.cumsum([0] + [g.n_nodes for g in graphs[:-1]])
    nodes = np.concatenate([g.nodes for g in graphs], axis=0)
    struts = np.concatenate([g.struts + o for g, o in zip(graphs, offsets, strict=True)], axis=0)
    return CellGraph(nodes=nodes, struts=struts)


def _unique_struts(struts: np.ndarray) -> np.ndarray:
    """Drop self-loops, orient each strut as (min, max) and remove duplicates (sorted rows)."""
    struts = np.sort(struts, axis=1)
    struts = struts[struts[:, 0] != struts[:, 1]]
    if len(struts) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(struts, axis=0)


def merge_nodes(
    nodes: np.ndarray, struts: np.ndarray, tol: float = DEFAULT_TOL
) -> tuple[np.ndarray, np.ndarray]:
    """Merge nodes closer than ``tol``; drop zero-length and duplicate struts.

    Returns ``(nodes (n', 3), struts (m', 2))``; a merged group takes the position of its
    lowest-index member. Unused nodes are kept (a new crossing node has no strut yet).
    """
    n = len(nodes)
    pairs = cKDTree(nodes).query_pairs(tol, output_type="ndarray")
    if len(pairs) == 0:
        return nodes, _unique_struts(struts)
    adjacency = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    n_groups, labels = connected_components(adjacency, directed=False)
    rep = np.full(n_groups, n, dtype=np.int64)
    np.minimum.at(rep, labels, np.arange(n))
    # number the groups in the order of their representatives (keeps original nodes first)
    order = np.argsort(rep)
    new_label = np.empty(n_groups, dtype=np.int64)
    new_label[order] = np.arange(n_groups)
    return nodes[rep[order]], _unique_struts(new_label[labels][struts])


def drop_unused_nodes(nodes: np.ndarray, struts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove nodes that no strut uses and renumber the struts."""
    used = np.unique(struts)
    new_index = np.full(len(nodes), -1, dtype=np.int64)
    new_index[used] = np.arange(len(used))
    return nodes[used], new_index[struts]


def split_at_nodes(
    nodes: np.ndarray, struts: np.ndarray, tol: float = DEFAULT_TOL
) -> tuple[np.ndarray, bool]:
    """Split every strut at the nodes lying in its interior (within ``tol``).

    Handles T-junctions and collinear overlaps (the end of one strut lies inside the other).
    Returns ``(struts, changed)``; the struts are deduplicated.
    """
    a = nodes[struts[:, 0]]
    d = nodes[struts[:, 1]] - a
    length = np.linalg.norm(d, axis=1)
    # cheap bounding-box prefilter (m, n), then exact projection on the candidates
    lo = np.minimum(a, a + d) - tol
    hi = np.maximum(a, a + d) + tol
    inside = np.ones((len(struts), len(nodes)), dtype=bool)
    for axis in range(3):  # node inside the strut's bounding box on every axis
        inside &= nodes[None, :, axis] >= lo[:, None, axis]
        inside &= nodes[None, :, axis] <= hi[:, None, axis]
    inside[np.arange(len(struts)), struts[:, 0]] = False
    inside[np.arange(len(struts)), struts[:, 1]] = False
    s_idx, n_idx = np.nonzero(inside)
    rel = nodes[n_idx] - a[s_idx]
    along = np.einsum("ij,ij->i", rel, d[s_idx]) / length[s_idx]  # distance along the strut
    perp = np.linalg.norm(rel - along[:, None] * d[s_idx] / length[s_idx, None], axis=1)
    hit = (perp < tol) & (along > tol) & (along < length[s_idx] - tol)
    if not hit.any():
        return struts, False
    s_idx, n_idx, along = s_idx[hit], n_idx[hit], along[hit]
    m = len(struts)
    # chain points per strut: start (t=0), interior hits (sorted), end (t=len)
    owner = np.concatenate([np.arange(m), s_idx, np.arange(m)])
    key = np.concatenate([np.zeros(m), along, length + 1.0])
    point = np.concatenate([struts[:, 0], n_idx, struts[:, 1]])
    order = np.lexsort((key, owner))
    owner, point = owner[order], point[order]
    same = owner[:-1] == owner[1:]
    new = np.stack([point[:-1][same], point[1:][same]], axis=1)
    return _unique_struts(new), True


def crossing_points(nodes: np.ndarray, struts: np.ndarray, tol: float = DEFAULT_TOL) -> np.ndarray:
    """Points where two non-parallel struts cross at interior points of both, ``(k, 3)``.

    Crossings at an end of either strut are T-junctions (handled by :func:`split_at_nodes`);
    parallel (collinear) overlaps are handled there too.
    """
    m = len(struts)
    a = nodes[struts[:, 0]]
    b = nodes[struts[:, 1]]
    lo = np.minimum(a, b) - tol
    hi = np.maximum(a, b) + tol
    overlap = np.triu(np.ones((m, m), dtype=bool), k=1)
    for axis in range(3):  # bounding boxes overlap on every axis
        overlap &= lo[:, None, axis] <= hi[None, :, axis]
        overlap &= lo[None, :, axis] <= hi[:, None, axis]
    i, j = np.nonzero(overlap)
    shared = (
        (struts[i, 0] == struts[j, 0])
        | (struts[i, 0] == struts[j, 1])
        | (struts[i, 1] == struts[j, 0])
        | (struts[i, 1] == struts[j, 1])
    )
    i, j = i[~shared], j[~shared]
    if len(i) == 0:
        return np.zeros((0, 3))
    d1, d2, r = b[i] - a[i], b[j] - a[j], a[i] - a[j]
    aa = np.einsum("ij,ij->i", d1, d1)
    ee = np.einsum("ij,ij->i", d2, d2)
    bb = np.einsum("ij,ij->i", d1, d2)
    cc = np.einsum("ij,ij->i", d1, r)
    ff = np.einsum("ij,ij->i", d2, r)
    denom = aa * ee - bb * bb
    ok = denom > 1e-12 * aa * ee  # not parallel
    denom = np.where(ok, denom, 1.0)
    s = (bb * ff - cc * ee) / denom
    t = (aa * ff - bb * cc) / denom
    p1 = a[i] + s[:, None] * d1
    p2 = a[j] + t[:, None] * d2
    l1, l2 = np.sqrt(aa), np.sqrt(ee)
    ok &= np.linalg.norm(p1 - p2, axis=1) < tol
    ok &= (s * l1 > tol) & ((1.0 - s) * l1 > tol) & (t * l2 > tol) & ((1.0 - t) * l2 > tol)
    return 0.5 * (p1[ok] + p2[ok])


def canonical_order(nodes: np.ndarray, struts: np.ndarray, decimals: int = 9) -> CellGraph:
    """Sort nodes lexicographically (by coordinates rounded to ``decimals``) and struts by rows."""
    key = np.round(nodes, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    order = np.lexsort((key[:, 2], key[:, 1], key[:, 0]))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return CellGraph(nodes=nodes[order], struts=_unique_struts(inverse[struts]))


_NEIGHBOUR_SHIFTS = np.array(
    [
        [i, j, k]
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
        for k in (-1, 0, 1)
        if (i, j, k) != (0, 0, 0)
    ],
    dtype=np.float64,
)


def periodic_completion(graph: CellGraph, tol: float = DEFAULT_TOL) -> CellGraph:
    """Add the periodic images that fall in the closed unit cube (unmerged).

    For every node on a cube face, its images on the opposite faces (edges, corners) are added
    as isolated nodes; for every strut lying in a face, its images in the opposite faces are
    added. Needed because an elementary cell's closed-cube graph need not list every image:
    e.g. the diamond-like cell S6 has a node at ``(0, 0, 1/2)`` after a 2x2x2 tessellation but
    none at ``(1, 0, 1/2)``, so a vertical cube edge of S1 would be split on one edge of the cube
    and not on the periodically equivalent one. Unused added nodes are dropped after cleaning.
    """
    nodes = np.asarray(graph.nodes)
    struts = np.asarray(graph.struts)
    images = nodes[None, :, :] + _NEIGHBOUR_SHIFTS[:, None, :]  # (26, n, 3)
    inside = np.all((images >= -tol) & (images <= 1.0 + tol), axis=2)  # (26, n)
    images = np.clip(images, 0.0, 1.0)  # snap images within tol of a face onto it
    new_nodes = images[inside]
    both = inside[:, struts[:, 0]] & inside[:, struts[:, 1]]  # (26, m): strut image in the cube
    shift_idx, strut_idx = np.nonzero(both)
    n = len(nodes)
    start = images[shift_idx, struts[strut_idx, 0]]
    end = images[shift_idx, struts[strut_idx, 1]]
    k = len(strut_idx)
    extra_struts = n + len(new_nodes) + np.stack([np.arange(k), k + np.arange(k)], axis=1)
    return CellGraph(
        nodes=np.concatenate([nodes, new_nodes, start, end], axis=0),
        struts=np.concatenate([struts, extra_struts], axis=0),
    )


def clean_graph(graph: CellGraph, tol: float = DEFAULT_TOL) -> CellGraph:
    """Resolve merges, overlaps, T-junctions and crossings of ``graph`` until nothing changes."""
    nodes, struts = np.asarray(graph.nodes), np.asarray(graph.struts)
    for _ in range(_MAX_ITERATIONS):
        nodes, struts = merge_nodes(nodes, struts, tol)
        struts, _ = split_at_nodes(nodes, struts, tol)
        new_points = crossing_points(nodes, struts, tol)
        if len(new_points) == 0:
            return canonical_order(*drop_unused_nodes(nodes, struts))
        nodes = np.concatenate([nodes, new_points], axis=0)
    raise RuntimeError(
        f"strut intersection resolution did not converge in {_MAX_ITERATIONS} rounds"
    )


def _topology_pairs(topology: object) -> list[tuple[int, int]]:
    try:
        pairs = [tuple(p) for p in topology]  # type: ignore[union-attr]
    except TypeError as exc:
        raise DesignError(
            f"topology must be a sequence of (cell, tessellation) pairs: {exc}"
        ) from exc
    if len(pairs) != 3 or any(len(p) != 2 for p in pairs):
        raise DesignError(f"topology must be three (cell, tessellation) pairs, got {topology!r}")
    return pairs  # type: ignore[return-value]


def compound_graph(topology: Iterable[tuple[int, int]], tol: float = DEFAULT_TOL) -> CellGraph:
    """Non-periodic compound graph ``t1 x S1 + t2 x S2 + t3 x S3`` in the closed unit cube.

    ``topology`` is a sequence of three ``(cell, tessellation)`` pairs, repetitions allowed
    (order irrelevant). Nodes are fractional coordinates in ``[0, 1]^3``; the output is in
    canonical order (see :func:`canonical_order`).
    """
    pairs = _topology_pairs(topology)
    graphs = [tessellate(elementary_cell(c), t) for c, t in pairs]
    return clean_graph(periodic_completion(union_graph(graphs), tol), tol)
