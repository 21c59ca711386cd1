"""Periodic truss lattices: the compound cell with opposite faces identified.

A :class:`PeriodicLattice` lives in fractional coordinates of the reference unit cube; the
physical cell is ``x = F X`` with the lattice vectors as the columns of ``F`` (spec ``truss.md``
section 3). Strut geometry functions (:func:`strut_vectors`, :func:`strut_lengths`,
:func:`strut_diameter`, :func:`relative_density_from_diameter`) accept ``F`` as a numpy array or a
torch tensor of shape ``(..., 3, 3)``; torch inputs stay differentiable.

The topology catalog (:func:`enumerate_topologies`, :func:`unique_topology_count`,
:func:`topology_classes`) counts the distinct periodic lattices among the
``C(14 + 2, 3) = 560`` multisets of three ``(cell, tessellation)`` choices, under these rules:

``"graph"``        identical periodic graph in the reference cube (same node set and same set of
                   periodic struts, up to tolerance): **236** classes. Equal classes have equal
                   stiffness for every ``(rho, F)``.
``"lattice"``      the same infinite lattice: ``"graph"`` up to a translation of the origin and
                   up to undoing 2x2x2 tessellations (a lattice invariant under the half-cell
                   translations is replaced by its sub-cell scaled up by 2): **215** classes.
                   Still equal stiffness for every ``(rho, F)`` (e.g. ``3 x (S1, 2)`` and
                   ``3 x (S1, 1)``).
``"cube"``         ``"graph"`` up to the 48 symmetries of the cube acting on the fractional
                   coordinates: **236** classes (no two distinct graphs of the design space are
                   mirror/axis-permuted images of each other).
``"lattice_cube"`` both: **215** classes.

The paper reports 262 "unique topologies" without stating its rule; none of these rules gives
262 (without splitting overlapping/crossing struts the raw strut sets give 320 classes).
Building all 560 periodic lattices takes about 2 s (``scripts/count_topologies.py``).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from metainv.errors import DesignError
from metainv.tensors import backend
from metainv.truss.cells import (
    N_CELLS,
    TESSELLATIONS,
    CellGraph,
    validate_cell,
    validate_tessellation,
)
from metainv.truss.compound import DEFAULT_TOL, compound_graph

__all__ = [
    "TOPOLOGY_RULES",
    "PeriodicLattice",
    "canonical_topology",
    "enumerate_topologies",
    "fractional_strut_vectors",
    "lattice_from_graph",
    "node_degrees",
    "periodic_lattice",
    "relative_density_from_diameter",
    "strut_diameter",
    "strut_lengths",
    "strut_vectors",
    "topology_classes",
    "topology_key",
    "unique_topology_count",
]

Topology = tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False)
class PeriodicLattice:
    """Periodic truss in the reference unit cube (fractional coordinates).

    nodes:    (n, 3) float64, unique periodic nodes, fractional coordinates in [0, 1)
    struts:   (m, 2) int64, node indices (start, end)
    offsets:  (m, 3) int64, periodic image of the end node: strut k runs from
              nodes[struts[k, 0]] to nodes[struts[k, 1]] + offsets[k]
    topology: tuple of three (cell, tessellation) pairs, canonical order
    Each periodic strut appears exactly once (a strut in a cube face, shared by 2 cells, or on a
    cube edge, shared by 4, is counted once).

    Arrays are read-only (lattices are cached and shared). Equality is identity (``eq=False``:
    numpy fields have no boolean ``==``); compare ``topology_key`` values to compare geometry.
    """

    nodes: np.ndarray
    struts: np.ndarray
    offsets: np.ndarray
    topology: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        nodes = np.array(self.nodes, dtype=np.float64, copy=True).reshape(-1, 3)
        struts = np.array(self.struts, dtype=np.int64, copy=True).reshape(-1, 2)
        offsets = np.array(self.offsets, dtype=np.int64, copy=True).reshape(-1, 3)
        if len(struts) != len(offsets):
            raise DesignError(f"struts ({len(struts)}) and offsets ({len(offsets)}) differ")
        for a in (nodes, struts, offsets):
            a.setflags(write=False)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "struts", struts)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "topology", tuple(tuple(p) for p in self.topology))

    @property
    def n_nodes(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def n_struts(self) -> int:
        return int(self.struts.shape[0])


# --------------------------------------------------------------------------------------------
# topology validation


def canonical_topology(topology: Iterable[Sequence[int]]) -> Topology:
    """Validate three ``(cell, tessellation)`` pairs and return them sorted as a tuple.

    ``cell`` in 1..7, ``tessellation`` in {1, 2}; repetitions are allowed. Raises
    :class:`metainv.errors.DesignError` otherwise.
    """
    try:
        pairs = [tuple(p) for p in topology]
    except TypeError as exc:
        raise DesignError(
            f"topology must be three (cell, tessellation) pairs, got {topology!r}"
        ) from exc
    if len(pairs) != 3 or any(len(p) != 2 for p in pairs):
        raise DesignError(f"topology must be three (cell, tessellation) pairs, got {topology!r}")
    return tuple(sorted((validate_cell(c), validate_tessellation(t)) for c, t in pairs))


def enumerate_topologies() -> tuple[Topology, ...]:
    """All 560 canonical topologies (multisets of three of the 14 (cell, t) choices), sorted."""
    choices = [(c, t) for c in range(1, N_CELLS + 1) for t in TESSELLATIONS]
    return tuple(itertools.combinations_with_replacement(choices, 3))


# --------------------------------------------------------------------------------------------
# periodic identification


def _periodic_merge(wrapped: np.ndarray, tol: float) -> np.ndarray:
    """Component label of each wrapped node, merging nodes closer than ``tol`` on the torus."""
    n = len(wrapped)
    pairs = cKDTree(wrapped, boxsize=1.0).query_pairs(tol, output_type="ndarray")
    if len(pairs) == 0:
        return np.arange(n)
    adjacency = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(adjacency, directed=False)[1]


def _canonical_direction(struts: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orient each periodic strut so that ``a < b``, or ``a == b`` and the offset is positive.

    ``(a, b, o)`` and ``(b, a, -o)`` are the same strut.
    """
    a, b = struts[:, 0], struts[:, 1]
    first_nonzero = np.take_along_axis(offsets, np.argmax(offsets != 0, axis=1)[:, None], 1)[:, 0]
    flip = (a > b) | ((a == b) & (first_nonzero < 0))
    struts = np.where(flip[:, None], struts[:, ::-1], struts)
    offsets = np.where(flip[:, None], -offsets, offsets)
    return struts, offsets


def lattice_from_graph(
    graph: CellGraph, topology: Iterable[Sequence[int]] = (), tol: float = DEFAULT_TOL
) -> PeriodicLattice:
    """Identify opposite faces of a clean non-periodic cell graph into a :class:`PeriodicLattice`.

    Node coordinates are wrapped into ``[0, 1)`` (a coordinate within ``tol`` of 1 maps to 0 and
    the strut offsets record the image); nodes that coincide on the torus are merged; periodic
    struts are deduplicated (a strut and its integer translates, in either direction, are one
    strut); zero-length struts are dropped. The graph must already be free of crossings and
    overlaps and consistent across opposite faces (as :func:`compound_graph` returns for every
    design topology); no intersections are resolved here. Nodes come out sorted
    lexicographically, struts sorted by ``(start, end, offset)``.
    """
    given = tuple(topology)
    topo = canonical_topology(given) if given else ()
    x = np.asarray(graph.nodes, dtype=np.float64)
    shift = np.floor(x + tol)
    wrapped = x - shift
    wrapped[wrapped < 0.0] = 0.0  # -tol < w < 0 after the shift: snap to the face
    labels = _periodic_merge(wrapped, tol)
    n_unique = labels.max() + 1 if len(labels) else 0
    rep = np.full(n_unique, len(x), dtype=np.int64)
    np.minimum.at(rep, labels, np.arange(len(x)))
    rep_of = rep[labels]
    # image of every original node relative to its representative's wrapped position
    image = (shift + np.rint(wrapped - wrapped[rep_of])).astype(np.int64)
    # order the periodic nodes canonically
    coords = wrapped[rep]
    key = np.round(coords, 9) + 0.0
    order = np.lexsort((key[:, 2], key[:, 1], key[:, 0]))
    new_index = np.empty(n_unique, dtype=np.int64)
    new_index[order] = np.arange(n_unique)
    node_id = new_index[labels]

    s = np.asarray(graph.struts, dtype=np.int64)
    struts = node_id[s]
    offsets = image[s[:, 1]] - image[s[:, 0]]
    struts, offsets = _canonical_direction(struts, offsets)
    keep = (struts[:, 0] != struts[:, 1]) | np.any(offsets != 0, axis=1)
    rows = np.unique(np.concatenate([struts, offsets], axis=1)[keep], axis=0)
    return PeriodicLattice(
        nodes=coords[order], struts=rows[:, :2], offsets=rows[:, 2:], topology=topo
    )


@functools.cache  # = lru_cache(maxsize=None)
def _periodic_lattice_cached(topology: Topology) -> PeriodicLattice:
    return lattice_from_graph(compound_graph(topology), topology)


def periodic_lattice(topology: Iterable[Sequence[int]]) -> PeriodicLattice:
    """The periodic compound lattice of ``topology`` (cached on the canonical topology)."""
    return _periodic_lattice_cached(canonical_topology(topology))


# --------------------------------------------------------------------------------------------
# geometry under the affine map x = F X


def fractional_strut_vectors(lattice: PeriodicLattice) -> np.ndarray:
    """Strut vectors in fractional coordinates, ``(m, 3)``: ``X_end + offset - X_start``."""
    return (
        lattice.nodes[lattice.struts[:, 1]] + lattice.offsets - lattice.nodes[lattice.struts[:, 0]]
    )


def node_degrees(lattice: PeriodicLattice) -> np.ndarray:
    """Number of periodic struts at each node, ``(n,)`` (a periodic self-strut counts twice)."""
    return np.bincount(lattice.struts.ravel(), minlength=lattice.n_nodes)


def strut_vectors(lattice: PeriodicLattice, F: Any) -> Any:
    """Physical strut vectors ``F @ (X_end + offset - X_start)``, shape ``(..., m, 3)``.

    ``F``: ``(..., 3, 3)`` lattice vectors as columns (numpy or torch; length units of ``F``).
    """
    dx = backend.constant(fractional_strut_vectors(lattice), like=F)
    return backend.einsum("...ij,mj->...mi", F, dx)


def strut_lengths(lattice: PeriodicLattice, F: Any) -> Any:
    """Physical strut lengths, ``(..., m)`` (length units of ``F``)."""
    v = strut_vectors(lattice, F)
    return backend.sqrt((v * v).sum(-1))


def _cell_volume(F: Any) -> Any:
    if backend.is_torch(F):
        import torch

        return torch.linalg.det(F).abs()
    return np.abs(np.linalg.det(F))


def strut_diameter(lattice: PeriodicLattice, F: Any, relative_density: Any) -> Any:
    """Uniform strut diameter ``d`` that gives ``relative_density``, shape ``(...)``.

    ``rho = (pi d^2 / 4) * sum(L) / |det F|`` with every periodic strut counted once and node
    overlap ignored (spec section 2), so ``d = sqrt(4 rho |det F| / (pi sum L))``.
    """
    total = strut_lengths(lattice, F).sum(-1)
    return backend.sqrt(4.0 * relative_density * _cell_volume(F) / (math.pi * total))


def relative_density_from_diameter(lattice: PeriodicLattice, F: Any, diameter: Any) -> Any:
    """Inverse of :func:`strut_diameter`: ``rho = (pi d^2 / 4) * sum(L) / |det F|``."""
    total = strut_lengths(lattice, F).sum(-1)
    return math.pi * diameter * diameter / 4.0 * total / _cell_volume(F)


# --------------------------------------------------------------------------------------------
# topology catalog: which topologies give the same lattice

TOPOLOGY_RULES = ("graph", "lattice", "cube", "lattice_cube")

_NQ = 720720  # lcm(1..16): fractions with small denominators quantise exactly


def _cube_operations() -> np.ndarray:
    """The 48 signed permutation matrices (the cube's point group), ``(48, 3, 3)`` int64."""
    ops = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=np.int64)
            m[np.arange(3), perm] = signs
            ops.append(m)
    return np.stack(ops)


_CUBE_OPS = _cube_operations()


@dataclass(frozen=True, eq=False)
class _Quantized:
    """Integer form of a periodic lattice: coordinates times ``_NQ``, node positions mod ``_NQ``.

    nodes: (n, 3) int64 in [0, _NQ); starts: (m, 3) int64 in [0, _NQ); vectors: (m, 3) int64.
    """

    nodes: np.ndarray
    starts: np.ndarray
    vectors: np.ndarray

    def transformed(self, op: np.ndarray, shift: np.ndarray) -> _Quantized:
        """Apply ``X -> op @ X + shift`` (mod the cell)."""
        return _Quantized(
            (self.nodes @ op.T + shift) % _NQ,
            (self.starts @ op.T + shift) % _NQ,
            self.vectors @ op.T,
        )


def _quantize(lattice: PeriodicLattice) -> _Quantized:
    nodes = np.rint(lattice.nodes * _NQ).astype(np.int64) % _NQ
    vectors = np.rint(fractional_strut_vectors(lattice) * _NQ).astype(np.int64)
    return _Quantized(nodes, nodes[lattice.struts[:, 0]], vectors)


def _sorted_unique_rows(rows: np.ndarray) -> np.ndarray:
    order = np.lexsort(rows.T[::-1])
    rows = rows[order]
    if len(rows) > 1:
        keep = np.concatenate([[True], np.any(rows[1:] != rows[:-1], axis=1)])
        rows = rows[keep]
    return rows


def _lex_less(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise lexicographic ``a < b`` for integer arrays ``(k, c)``."""
    diff = a != b
    first = np.argmax(diff, axis=1)[:, None]
    return np.any(diff, axis=1) & (
        np.take_along_axis(a, first, 1)[:, 0] < np.take_along_axis(b, first, 1)[:, 0]
    )


def _key(q: _Quantized) -> bytes:
    """Canonical bytes of a quantised lattice (independent of node and strut order/direction)."""
    forward = np.concatenate([q.starts, q.vectors], axis=1)
    backward = np.concatenate([(q.starts + q.vectors) % _NQ, -q.vectors], axis=1)
    rows = np.where(_lex_less(backward, forward)[:, None], backward, forward)
    nodes = _sorted_unique_rows(q.nodes)
    rows = _sorted_unique_rows(rows)
    header = np.array([len(nodes), len(rows)], dtype=np.int64)
    return header.tobytes() + nodes.tobytes() + rows.tobytes()


def _half_translation_invariant(q: _Quantized) -> bool:
    base = _key(q)
    identity = np.eye(3, dtype=np.int64)
    return all(
        _key(q.transformed(identity, shift)) == base
        for shift in np.eye(3, dtype=np.int64) * (_NQ // 2)
    )


def _reduce_tessellation(q: _Quantized) -> _Quantized:
    """Undo 2x2x2 tessellations: while invariant under the half-cell translations, scale by 2."""
    while len(q.nodes) and _half_translation_invariant(q):
        q = _Quantized(2 * q.nodes % _NQ, 2 * q.starts % _NQ, 2 * q.vectors)
        forward = _sorted_unique_rows(np.concatenate([q.starts, q.vectors], axis=1))
        q = _Quantized(_sorted_unique_rows(q.nodes), forward[:, :3], forward[:, 3:])
    return q


def _anchor_nodes(q: _Quantized) -> np.ndarray:
    """Nodes of the rarest class of local environment (sorted incident strut lengths).

    The class is invariant under translations and cube symmetries, so translating each of its
    nodes to the origin gives a finite set of candidate origins that does not depend on the
    starting origin.
    """
    node_of = {tuple(p): i for i, p in enumerate(q.nodes.tolist())}
    ends = (q.starts + q.vectors) % _NQ
    start_id = np.array([node_of[tuple(p)] for p in q.starts.tolist()], dtype=np.int64)
    end_id = np.array([node_of[tuple(p)] for p in ends.tolist()], dtype=np.int64)
    length2 = np.einsum("ij,ij->i", q.vectors, q.vectors)
    incident = np.concatenate([start_id, end_id])
    lengths = np.concatenate([length2, length2])
    order = np.lexsort((lengths, incident))
    signature: list[list[int]] = [[] for _ in range(len(q.nodes))]
    for node, value in zip(incident[order].tolist(), lengths[order].tolist(), strict=True):
        signature[node].append(value)
    classes: dict[tuple[int, ...], list[int]] = {}
    for node, sig in enumerate(signature):
        classes.setdefault(tuple(sig), []).append(node)
    _, members = min(classes.items(), key=lambda item: (len(item[1]), item[0]))
    return q.nodes[members]


def _canonical_key(q: _Quantized, rule: str) -> bytes:
    if rule in ("lattice", "lattice_cube"):
        q = _reduce_tessellation(q)
    ops = _CUBE_OPS if rule in ("cube", "lattice_cube") else np.eye(3, dtype=np.int64)[None]
    if rule in ("lattice", "lattice_cube"):
        anchors = _anchor_nodes(q)
    else:
        anchors = np.zeros((1, 3), dtype=np.int64)
    keys = [_key(q.transformed(op, -(op @ anchor))) for op in ops for anchor in anchors]
    return min(keys)


def topology_key(lattice: PeriodicLattice, rule: str = "graph") -> bytes:
    """A bytes key equal for two lattices exactly when they are the same under ``rule``.

    Coordinates are compared after quantisation to multiples of ``1 / 720720`` of the cell.
    ``rule`` is one of :data:`TOPOLOGY_RULES` (see the module docstring).
    """
    if rule not in TOPOLOGY_RULES:
        raise DesignError(f"rule must be one of {TOPOLOGY_RULES}, got {rule!r}")
    return _canonical_key(_quantize(lattice), rule)


def topology_classes(rule: str = "graph") -> list[list[Topology]]:
    """Partition of :func:`enumerate_topologies` into classes of equal lattices under ``rule``.

    Classes are listed in order of their first member; members in canonical order.
    """
    groups: dict[bytes, list[Topology]] = {}
    for topology in enumerate_topologies():
        groups.setdefault(topology_key(periodic_lattice(topology), rule), []).append(topology)
    return list(groups.values())


def unique_topology_count(rule: str = "graph") -> int:
    """Number of distinct periodic lattices among the 560 topologies under ``rule``.

    ``"graph"``: 236, ``"lattice"``: 215, ``"cube"``: 236, ``"lattice_cube"``: 215 (see the
    module docstring for the rules; the paper's 262 has no stated rule).
    """
    return len(topology_classes(rule))
