"""Stencil assembly on a structured voxel grid: no element loop, no duplicate COO entries.

Grid nodes carry a single index ``p = (i m + j) m + k`` with ``m = n + 1`` nodes per edge for a
bounded grid and ``m = n`` for a periodic one (opposite faces identified). Element ``e`` (the
voxel with lower corner ``e``) owns the local nodes ``p = e + o_a`` (offsets
:data:`~metainv.voxel._element.NODE_OFFSETS`), so everything an element contributes to node
``p`` through its local node ``a`` is the modulus of element ``p - o_a`` times a fixed 3x3
block. Collecting those "shifted moduli" once as a dense (8, n_nodes) array turns the
assembly of the stiffness, of the load vectors and of the element sums into small dense
matrix products (BLAS), with the global matrix built directly in block-sparse (BSR) form.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from metainv.voxel._element import NODE_OFFSETS

#: The 27 node-to-node offsets ``d`` in {-1, 0, 1}^3, lexicographic, shape (27, 3).
STENCIL = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T


def nodes_per_edge(n: int, periodic: bool) -> int:
    """Distinct grid nodes along one edge: ``n`` (periodic) or ``n + 1`` (bounded)."""
    return n if periodic else n + 1


def node_coordinates(n: int, periodic: bool) -> np.ndarray:
    """Integer grid coordinates (n_nodes, 3) of the nodes in index order."""
    m = nodes_per_edge(n, periodic)
    return np.indices((m, m, m)).reshape(3, -1).T


def shifted_moduli(moduli: np.ndarray, periodic: bool) -> np.ndarray:
    """``S[a, p]`` = modulus of the element that has node ``p`` as its local node ``a``.

    ``moduli`` (n, n, n) per voxel (0 where there is no element). Returns (8, n_nodes), zero
    where ``p - o_a`` lies outside a bounded grid; periodic grids wrap around.
    """
    n = moduli.shape[0]
    if periodic:
        shifted = [np.roll(moduli, shift=tuple(o), axis=(0, 1, 2)) for o in NODE_OFFSETS]
    else:
        padded = np.zeros((n + 2, n + 2, n + 2), dtype=moduli.dtype)
        padded[1:-1, 1:-1, 1:-1] = moduli
        shifted = [
            padded[1 - ox : 2 - ox + n, 1 - oy : 2 - oy + n, 1 - oz : 2 - oz + n]
            for ox, oy, oz in NODE_OFFSETS
        ]
    return np.stack([s.reshape(-1) for s in shifted])


def _stencil_blocks(Ke: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per offset ``d`` and local node ``a``: the block ``Ke[a, a + d]`` (27, 8, 3, 3) and whether
    node ``a + d`` exists (27, 8)."""
    blocks = np.zeros((27, 8, 3, 3))
    exists = np.zeros((27, 8), dtype=bool)
    target = NODE_OFFSETS[None, :, :] + STENCIL[:, None, :]  # (27, 8, 3)
    inside = np.all((target >= 0) & (target <= 1), axis=-1)
    local = target[..., 0] + 2 * target[..., 1] + 4 * target[..., 2]
    d_idx, a_idx = np.nonzero(inside)
    b_idx = local[d_idx, a_idx]
    K4 = Ke.reshape(8, 3, 8, 3).transpose(0, 2, 1, 3)  # (a, b, 3, 3)
    blocks[d_idx, a_idx] = K4[a_idx, b_idx]
    exists[d_idx, a_idx] = True
    return blocks, exists


def assemble_stiffness(
    shifted: np.ndarray, Ke: np.ndarray, n: int, periodic: bool, free: np.ndarray
) -> sp.bsr_matrix:
    """Global stiffness restricted to the free nodes, BSR with 3x3 blocks.

    Args:
        shifted: (8, n_nodes) from :func:`shifted_moduli`.
        Ke: element stiffness (24, 24) for modulus 1.
        n: voxels per edge.
        periodic: identify opposite faces.
        free: (n_nodes,) index of each node among the unknowns, -1 for a node whose
            displacement is prescribed or that carries no element.

    Returns:
        ``K`` of shape (3 n_free, 3 n_free); entry block ``(free[p], free[q])`` is
        ``sum_a S[a, p] Ke[a, a + q - p]``.
    """
    blocks, exists = _stencil_blocks(Ke)
    n_free = int(free.max()) + 1 if free.size else 0
    m = nodes_per_edge(n, periodic)
    rows = np.flatnonzero(free >= 0)
    coords = node_coordinates(n, periodic)[rows].astype(np.int32)  # (n_rows, 3)
    S = np.ascontiguousarray(shifted[:, rows].T)  # (n_rows, 8)
    solid = S > 0
    # per stencil offset: neighbour's unknown index, -1 where absent or not coupled
    columns = np.empty((rows.size, 27), dtype=np.int64)
    for d, offset in enumerate(STENCIL):  # 27 offsets, each fully vectorized over nodes
        target = coords + offset.astype(np.int32)
        if periodic:
            target %= m
            inside = np.ones(rows.size, dtype=bool)
        else:
            inside = np.all((target >= 0) & (target < m), axis=1)
            np.clip(target, 0, m - 1, out=target)
        neighbour = (target[:, 0].astype(np.int64) * m + target[:, 1]) * m + target[:, 2]
        coupled = inside & np.any(solid & exists[d], axis=1)
        columns[:, d] = np.where(coupled, free[neighbour], -1)
    keep = columns >= 0
    counts = keep.sum(axis=1)
    indptr = np.zeros(n_free + 1, dtype=np.int64)
    indptr[free[rows] + 1] = counts
    np.cumsum(indptr, out=indptr)
    position = indptr[free[rows]][:, None] + np.cumsum(keep, axis=1) - 1  # (n_rows, 27)
    data = np.empty((int(indptr[-1]), 9))
    for d in range(27):
        mask = keep[:, d]
        data[position[mask, d]] = S[mask] @ blocks[d].reshape(8, 9)
    K = sp.bsr_matrix(
        (data.reshape(-1, 3, 3), columns[keep], indptr),
        shape=(3 * n_free, 3 * n_free),
        blocksize=(3, 3),
    )
    if periodic:
        K.sum_duplicates()  # sorts the wrapped columns; merges offsets that alias when n < 3
    return K


def assemble_node_vectors(shifted: np.ndarray, element_vectors: np.ndarray) -> np.ndarray:
    """Assemble per-element nodal vectors ``E_e g`` (same ``g`` for every element).

    ``element_vectors`` (24, m) holds ``g`` for ``m`` cases (element DOF order). Returns
    ``sum_e E_e g_e`` at the nodes, shape (n_nodes, 3, m).
    """
    m = element_vectors.shape[1]
    G = element_vectors.reshape(8, 3 * m)
    return (shifted.T @ G).reshape(-1, 3, m)


def element_sum(shifted: np.ndarray, nodal: np.ndarray) -> np.ndarray:
    """``sum_e E_e u_e`` over all elements of nodal fields ``nodal`` (n_nodes, 3, m).

    Returns the 24-vector per case (24, m) in element DOF order.
    """
    m = nodal.shape[2]
    return (shifted @ nodal.reshape(-1, 3 * m)).reshape(24, m)
