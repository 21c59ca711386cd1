r"""Vectorized assembly on a :class:`~metainv.fem.grid.HexGrid`: no Python loop over elements.

Two schemes, for the two ways element matrices vary over the grid:

Stencil (one element matrix times a scalar per element)
    ``K = sum_e s_e A_e^T k A_e`` for a fixed element matrix ``k`` (8 b, 8 b) in
    :data:`~metainv.fem.hex8.BINARY_NODES` order (``b`` unknowns per node: 3 for elasticity, 1
    for a scalar problem) and per-element scalars ``s_e`` (moduli, weights; 0 means no
    element). Element ``e`` (lower corner ``e``) owns the nodes ``p = e + o_a``, so everything it
    contributes to node ``p`` through its local node ``a`` is ``s`` of element ``p - o_a`` times a
    fixed block. Collecting these "shifted" scalars once as a dense (8, n_nodes) array turns the
    assembly of the matrix (27-point nodal stencil, built directly in block-sparse BSR form), of
    load vectors and of element sums into small dense products. Needs a C-ordered grid.

Scatter plan (a sum of reference matrices with per-element coefficients)
    ``K = sum_e sum_k c_k(e) A_e^T k_k A_e`` for ``m`` reference matrices ``k_k`` (24, 24) in
    :data:`~metainv.fem.hex8.VTK_NODES` order: one product ``(nel, m) @ (m, 576)`` and a
    precomputed scatter (:class:`AssemblyPlan`) into the CSR pattern of the free-free block;
    any set of fixed degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from metainv.errors import MetainvError
from metainv.fem.grid import HexGrid
from metainv.fem.hex8 import BINARY_NODES

#: The 27 node-to-node offsets ``d`` in {-1, 0, 1}^3, lexicographic, shape (27, 3).
STENCIL = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T


# ------------------------------------------------------------------------------------- stencil


def _check_stencil_grid(grid: HexGrid) -> None:
    if grid.order != "C":
        raise MetainvError("the stencil assembly needs a C-ordered grid")


def shifted_moduli(grid: HexGrid, moduli: np.ndarray) -> np.ndarray:
    """``S[a, p]`` = scalar of the element that has node ``p`` as its local node ``a``.

    ``moduli``: per-element scalars, shape ``grid.shape`` (0 where there is no element).
    Returns (8, n_nodes) (binary local order), zero where ``p - o_a`` lies outside a bounded
    grid; periodic grids wrap around.
    """
    _check_stencil_grid(grid)
    moduli = np.asarray(moduli).reshape(grid.shape)
    if grid.periodic:
        shifted = [np.roll(moduli, shift=tuple(o), axis=(0, 1, 2)) for o in BINARY_NODES]
    else:
        nx, ny, nz = grid.shape
        padded = np.zeros((nx + 2, ny + 2, nz + 2), dtype=moduli.dtype)
        padded[1:-1, 1:-1, 1:-1] = moduli
        shifted = [
            padded[1 - ox : 2 - ox + nx, 1 - oy : 2 - oy + ny, 1 - oz : 2 - oz + nz]
            for ox, oy, oz in BINARY_NODES
        ]
    return np.stack([s.reshape(-1) for s in shifted])


def _stencil_blocks(Ke: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Per offset ``d`` and local node ``a``: the block ``Ke[a, a + d]`` (27, 8, b, b) and whether
    node ``a + d`` exists (27, 8)."""
    blocks = np.zeros((27, 8, b, b))
    exists = np.zeros((27, 8), dtype=bool)
    target = BINARY_NODES[None, :, :] + STENCIL[:, None, :]  # (27, 8, 3)
    inside = np.all((target >= 0) & (target <= 1), axis=-1)
    local = target[..., 0] + 2 * target[..., 1] + 4 * target[..., 2]
    d_idx, a_idx = np.nonzero(inside)
    b_idx = local[d_idx, a_idx]
    K4 = Ke.reshape(8, b, 8, b).transpose(0, 2, 1, 3)  # (a, b, dof, dof)
    blocks[d_idx, a_idx] = K4[a_idx, b_idx]
    exists[d_idx, a_idx] = True
    return blocks, exists


def assemble_stencil(
    grid: HexGrid, shifted: np.ndarray, Ke: np.ndarray, free: np.ndarray
) -> sp.bsr_matrix:
    """Global matrix restricted to the free nodes, BSR with (b, b) blocks.

    Args:
        grid: C-ordered grid (bounded or periodic).
        shifted: (8, n_nodes) from :func:`shifted_moduli`.
        Ke: element matrix (8 b, 8 b) for the scalar 1, :data:`BINARY_NODES` order, node-major.
        free: (n_nodes,) index of each node among the unknowns, -1 for a node whose values are
            prescribed or that carries no element.

    Returns:
        ``K`` of shape (b n_free, b n_free); block ``(free[p], free[q])`` is
        ``sum_a S[a, p] Ke[a, a + q - p]``.
    """
    _check_stencil_grid(grid)
    b = Ke.shape[0] // 8
    blocks, exists = _stencil_blocks(Ke, b)
    n_free = int(free.max()) + 1 if free.size else 0
    m = np.asarray(grid.node_shape)
    rows = np.flatnonzero(free >= 0)
    coords = grid.node_ijk[rows].astype(np.int32)  # (n_rows, 3)
    S = np.ascontiguousarray(shifted[:, rows].T)  # (n_rows, 8)
    solid = S > 0
    # per stencil offset: neighbour's unknown index, -1 where absent or not coupled
    columns = np.empty((rows.size, 27), dtype=np.int64)
    for d, offset in enumerate(STENCIL):  # 27 offsets, each fully vectorized over nodes
        target = coords + offset.astype(np.int32)
        if grid.periodic:
            target %= m.astype(np.int32)
            inside = np.ones(rows.size, dtype=bool)
        else:
            inside = np.all((target >= 0) & (target < m), axis=1)
            np.clip(target, 0, m - 1, out=target)
        neighbour = (target[:, 0].astype(np.int64) * m[1] + target[:, 1]) * m[2] + target[:, 2]
        coupled = inside & np.any(solid & exists[d], axis=1)
        columns[:, d] = np.where(coupled, free[neighbour], -1)
    keep = columns >= 0
    counts = keep.sum(axis=1)
    indptr = np.zeros(n_free + 1, dtype=np.int64)
    indptr[free[rows] + 1] = counts
    np.cumsum(indptr, out=indptr)
    position = indptr[free[rows]][:, None] + np.cumsum(keep, axis=1) - 1  # (n_rows, 27)
    data = np.empty((int(indptr[-1]), b * b))
    for d in range(27):
        mask = keep[:, d]
        data[position[mask, d]] = S[mask] @ blocks[d].reshape(8, b * b)
    K = sp.bsr_matrix(
        (data.reshape(-1, b, b), columns[keep], indptr),
        shape=(b * n_free, b * n_free),
        blocksize=(b, b),
    )
    if grid.periodic:
        K.sum_duplicates()  # sorts the wrapped columns; merges offsets that alias when n < 3
    return K


def assemble_node_vectors(shifted: np.ndarray, element_vectors: np.ndarray) -> np.ndarray:
    """Assemble ``sum_e s_e A_e^T g`` for the same element vector ``g`` in every element.

    ``element_vectors`` (8 b, m) holds ``g`` for ``m`` cases (binary local order, node-major).
    Returns the nodal sums (n_nodes, b, m).
    """
    m = element_vectors.shape[1]
    b = element_vectors.shape[0] // 8
    G = element_vectors.reshape(8, b * m)
    return (shifted.T @ G).reshape(-1, b, m)


def element_sum(shifted: np.ndarray, nodal: np.ndarray) -> np.ndarray:
    """``sum_e s_e u_e`` over all elements of nodal fields ``nodal`` (n_nodes, b, m).

    Returns the element vector per case (8 b, m), binary local order.
    """
    b, m = nodal.shape[1], nodal.shape[2]
    return (shifted @ nodal.reshape(-1, b * m)).reshape(8 * b, m)


def assemble_vector(grid: HexGrid, element_vectors: np.ndarray) -> np.ndarray:
    """Global vector from per-element vectors (n_elements, 8 b) or (n_elements, 8 b, m) in
    :data:`~metainv.fem.hex8.VTK_NODES` order, node-major, summed over shared nodes.

    Returns (b n_nodes,) or (b n_nodes, m), node-major.
    """
    values = np.asarray(element_vectors, dtype=np.float64)
    b = values.shape[1] // 8
    nodes = grid.element_nodes
    dofs = (b * nodes[:, :, None] + np.arange(b)).reshape(grid.n_elements, 8 * b).ravel()
    size = b * grid.n_nodes
    if values.ndim == 2:
        return np.bincount(dofs, weights=values.ravel(), minlength=size)
    flat = values.reshape(dofs.size, -1)
    return np.stack(
        [np.bincount(dofs, weights=flat[:, i], minlength=size) for i in range(flat.shape[1])],
        axis=1,
    )


# --------------------------------------------------------------------------------- scatter plan


@dataclass(frozen=True, eq=False)
class AssemblyPlan:
    """Scatter map from elastic element matrices to the CSR pattern of the free-free block.

    grid: the element grid
    free_dofs: (n_free,) global dofs that are not fixed, increasing
    free_index: (n_dofs,) position of each global dof among the free ones, -1 when fixed
    entry_slot: (n_kept,) CSR data slot of each kept element-matrix entry
    entry_keep: (nel * 576,) bool, entries whose row and column are both free
    indptr, indices: CSR structure of K_ff (n_free x n_free)
    """

    grid: HexGrid
    free_dofs: np.ndarray
    free_index: np.ndarray
    entry_slot: np.ndarray
    entry_keep: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray

    @property
    def n_free(self) -> int:
        return int(self.free_dofs.size)


def assembly_plan(grid: HexGrid, fixed_dofs: np.ndarray) -> AssemblyPlan:
    """Precompute the CSR pattern of ``K_ff`` and the scatter of element entries into it."""
    fixed = np.zeros(grid.n_dofs, dtype=bool)
    fixed[np.asarray(fixed_dofs, dtype=int)] = True
    free_dofs = np.flatnonzero(~fixed)
    free_index = np.full(grid.n_dofs, -1, dtype=np.int64)
    free_index[free_dofs] = np.arange(free_dofs.size)
    local = free_index[grid.element_dofs]  # (nel, 24)
    rows = np.repeat(local, 24, axis=1).ravel()
    cols = np.tile(local, (1, 24)).ravel()
    keep = (rows >= 0) & (cols >= 0)
    n = free_dofs.size
    keys = rows[keep] * n + cols[keep]
    unique_keys, slot = np.unique(keys, return_inverse=True)
    unique_rows = unique_keys // n
    indptr = np.concatenate([[0], np.cumsum(np.bincount(unique_rows, minlength=n))])
    return AssemblyPlan(
        grid=grid,
        free_dofs=free_dofs,
        free_index=free_index,
        entry_slot=slot.astype(np.int64),
        entry_keep=keep,
        indptr=indptr.astype(np.int64),
        indices=(unique_keys % n).astype(np.int64),
    )


def assemble_matrix(
    plan: AssemblyPlan, coefficients: np.ndarray, reference: np.ndarray
) -> sp.csr_matrix:
    r"""Free-free matrix ``K_ff`` (n_free, n_free), CSR.

    coefficients: (nel, m) scalars ``c_k(e)``; reference: (m, 24, 24) matrices ``k_k``.
    """
    values = (coefficients @ reference.reshape(reference.shape[0], -1)).ravel()
    data = np.bincount(
        plan.entry_slot, weights=values[plan.entry_keep], minlength=plan.indices.size
    )
    return sp.csr_matrix((data, plan.indices, plan.indptr), shape=(plan.n_free, plan.n_free))
