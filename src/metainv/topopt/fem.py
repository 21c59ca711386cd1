r"""Linear elasticity on a structured grid of unit 8-node hexahedra (voxels).

Grid conventions
----------------
``nel = (nx, ny, nz)`` elements of unit size; element ``(i, j, k)`` occupies
``[i, i+1] x [j, j+1] x [k, k+1]`` and has index ``e = i + nx (j + ny k)`` (x fastest), so an
element array reshapes to ``(nz, ny, nx)`` in C order. Node ``(i, j, k)`` has index
``i + (nx+1) (j + (ny+1) k)``; node ``a`` owns the degrees of freedom ``3a, 3a+1, 3a+2``
(displacements along x, y, z).

Element matrices (SI Eq. 3)
---------------------------
For a constant 6x6 Voigt stiffness ``D`` (order 11, 22, 33, 23, 13, 12, engineering shears)

.. math:: k_e = \int_{\Omega_e} B^T D B \, d\Omega \qquad (2 \times 2 \times 2 \text{ Gauss}),

which is exact for the trilinear element. The inherent-strain load of SI Eq. 4 is

.. math:: f_e = \int_{\Omega_e} B^T D \varepsilon^{inh} d\Omega = \bar B^T D \varepsilon^{inh},
          \qquad \bar B = \int_{\Omega_e} B \, d\Omega.

Assembly as a sum of scaled reference matrices
----------------------------------------------
The element stiffness differs per element, ``D_e = D(\rho_e)``. Every law used here is a sum of
``m`` constant basis matrices times scalar functions, ``D(\rho) = \sum_k c_k(\rho) D_k``
(isotropic: ``m = 1``; cubic gyroid: ``m = 3``; a general anisotropic law: ``m <= 21``), hence

.. math:: k_e = \sum_k c_k(\rho_e)\, k_k, \qquad k_k = \int B^T D_k B \, d\Omega,
          \qquad K = \sum_e \sum_k c_k(\rho_e)\, A_e^T k_k A_e,

so the ``m`` reference matrices ``k_k`` (24x24) are integrated once and each assembly is one
matrix product ``(nel, m) @ (m, 576)`` followed by a precomputed scatter into the CSR pattern of
the free-free block (:class:`AssemblyPlan`). No Python loop runs over elements.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from metainv.errors import MetainvError

logger = logging.getLogger(__name__)

#: Local node offsets (x, y, z) of the 8-node hexahedron, counter-clockwise bottom then top.
HEX8_NODES = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]]
)

#: 2x2x2 Gauss points on the unit cube [0, 1]^3 (all weights 1/8).
_GAUSS_1D = 0.5 + np.array([-1.0, 1.0]) / (2.0 * np.sqrt(3.0))
GAUSS_POINTS = np.stack(np.meshgrid(_GAUSS_1D, _GAUSS_1D, _GAUSS_1D, indexing="ij"), -1).reshape(
    -1, 3
)
GAUSS_WEIGHT = 1.0 / 8.0


@dataclass(frozen=True)
class HexGrid:
    """A box of ``nx x ny x nz`` unit hexahedral elements."""

    nx: int
    ny: int
    nz: int

    def __post_init__(self) -> None:
        if min(self.nx, self.ny, self.nz) < 1:
            raise MetainvError(
                f"grid needs at least one element per axis, got {self.nx} x {self.ny} x {self.nz}"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """Element counts ``(nx, ny, nz)``."""
        return (self.nx, self.ny, self.nz)

    @property
    def n_elements(self) -> int:
        return self.nx * self.ny * self.nz

    @property
    def n_nodes(self) -> int:
        return (self.nx + 1) * (self.ny + 1) * (self.nz + 1)

    @property
    def n_dofs(self) -> int:
        return 3 * self.n_nodes

    def node_index(self, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Node indices of the integer node coordinates ``(i, j, k)`` (broadcast)."""
        return np.asarray(i) + (self.nx + 1) * (np.asarray(j) + (self.ny + 1) * np.asarray(k))

    @cached_property
    def node_coordinates(self) -> np.ndarray:
        """Node positions (n_nodes, 3), x fastest."""
        k, j, i = np.meshgrid(
            np.arange(self.nz + 1), np.arange(self.ny + 1), np.arange(self.nx + 1), indexing="ij"
        )
        return np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(float)

    @cached_property
    def element_ijk(self) -> np.ndarray:
        """Integer lower-corner coordinates (nel, 3) of the elements, x fastest."""
        k, j, i = np.meshgrid(
            np.arange(self.nz), np.arange(self.ny), np.arange(self.nx), indexing="ij"
        )
        return np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)

    @cached_property
    def element_centers(self) -> np.ndarray:
        """Element centroids (nel, 3)."""
        return self.element_ijk + 0.5

    @cached_property
    def element_nodes(self) -> np.ndarray:
        """Connectivity (nel, 8) in :data:`HEX8_NODES` order."""
        corner = self.element_ijk[:, None, :] + HEX8_NODES[None, :, :]
        return self.node_index(corner[..., 0], corner[..., 1], corner[..., 2])

    @cached_property
    def element_dofs(self) -> np.ndarray:
        """Degrees of freedom (nel, 24) of each element: node-major, then x, y, z."""
        return (3 * self.element_nodes[:, :, None] + np.arange(3)).reshape(self.n_elements, 24)

    def nodes_where(self, i=None, j=None, k=None) -> np.ndarray:
        """Indices of the nodes whose integer coordinates match the given ones.

        Each of ``i, j, k`` is None (any), an int, or a sequence of ints.
        """
        coords = self.node_coordinates.astype(int)
        mask = np.ones(self.n_nodes, dtype=bool)
        for axis, value in enumerate((i, j, k)):
            if value is not None:
                mask &= np.isin(coords[:, axis], np.atleast_1d(value))
        return np.flatnonzero(mask)


def shape_gradients(point: np.ndarray) -> np.ndarray:
    """Gradients (8, 3) of the trilinear shape functions of the unit cube at ``point`` (3,).

    ``N_a(x) = prod_c (1 - x_c) or x_c`` as the node offset ``HEX8_NODES[a, c]`` is 0 or 1.
    """
    point = np.asarray(point, dtype=float)
    factors = np.where(HEX8_NODES == 1, point, 1.0 - point)  # (8, 3)
    signs = np.where(HEX8_NODES == 1, 1.0, -1.0)
    gradients = np.empty((8, 3))
    for c in range(3):
        others = [d for d in range(3) if d != c]
        gradients[:, c] = signs[:, c] * factors[:, others[0]] * factors[:, others[1]]
    return gradients


def strain_displacement(point: np.ndarray) -> np.ndarray:
    """Strain-displacement matrix ``B`` (6, 24) at ``point`` of the unit cube.

    Voigt rows 11, 22, 33, 23, 13, 12 with engineering shears: ``eps = B u_e``.
    """
    g = shape_gradients(point)
    B = np.zeros((6, 8, 3))
    B[0, :, 0] = g[:, 0]
    B[1, :, 1] = g[:, 1]
    B[2, :, 2] = g[:, 2]
    B[3, :, 1], B[3, :, 2] = g[:, 2], g[:, 1]
    B[4, :, 0], B[4, :, 2] = g[:, 2], g[:, 0]
    B[5, :, 0], B[5, :, 1] = g[:, 1], g[:, 0]
    return B.reshape(6, 24)


def gauss_strain_displacements() -> np.ndarray:
    """``B`` at the 8 Gauss points, (8, 6, 24)."""
    return np.stack([strain_displacement(point) for point in GAUSS_POINTS])


def element_stiffness_matrices(basis: np.ndarray) -> np.ndarray:
    r"""Reference element matrices ``k_k = \int B^T D_k B`` (m, 24, 24) of basis (m, 6, 6)."""
    B = gauss_strain_displacements()
    return GAUSS_WEIGHT * np.einsum("gia,kij,gjb->kab", B, np.asarray(basis, float), B)


def mean_strain_displacement() -> np.ndarray:
    r"""``\bar B = \int_{\Omega_e} B \, d\Omega`` (6, 24) over the unit element."""
    return GAUSS_WEIGHT * gauss_strain_displacements().sum(0)


def element_strain_loads(basis: np.ndarray, strain: np.ndarray) -> np.ndarray:
    r"""Reference inherent-strain loads ``f_k = \bar B^T D_k \varepsilon`` (m, 24) (SI Eq. 4)."""
    return np.einsum("ia,kij,j->ka", mean_strain_displacement(), np.asarray(basis, float), strain)


@dataclass(frozen=True, eq=False)
class AssemblyPlan:
    """Scatter map from element matrices to the CSR pattern of the free-free stiffness block.

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


def assemble_stiffness(
    plan: AssemblyPlan, coefficients: np.ndarray, reference: np.ndarray
) -> sp.csr_matrix:
    r"""Free-free stiffness ``K_ff`` (n_free, n_free), CSR.

    coefficients: (nel, m) scalars ``c_k(\rho_e)``; reference: (m, 24, 24) matrices ``k_k``.
    """
    values = (coefficients @ reference.reshape(reference.shape[0], -1)).ravel()
    data = np.bincount(
        plan.entry_slot, weights=values[plan.entry_keep], minlength=plan.indices.size
    )
    return sp.csr_matrix((data, plan.indices, plan.indptr), shape=(plan.n_free, plan.n_free))


def assemble_vector(plan: AssemblyPlan, element_vectors: np.ndarray) -> np.ndarray:
    """Global vector (n_dofs,) from element vectors (nel, 24) (summed over shared dofs)."""
    return np.bincount(
        plan.grid.element_dofs.ravel(),
        weights=np.asarray(element_vectors, float).ravel(),
        minlength=plan.grid.n_dofs,
    )


def rigid_body_modes(plan: AssemblyPlan) -> np.ndarray:
    """Near-null space (n_free, 6) of the free dofs: 3 translations and 3 rotations."""
    x = plan.grid.node_coordinates - plan.grid.node_coordinates.mean(0)
    modes = np.zeros((plan.grid.n_nodes, 3, 6))
    modes[:, [0, 1, 2], [0, 1, 2]] = 1.0
    # rotation about x: (0, -z, y); about y: (z, 0, -x); about z: (-y, x, 0)
    modes[:, 1, 3], modes[:, 2, 3] = -x[:, 2], x[:, 1]
    modes[:, 0, 4], modes[:, 2, 4] = x[:, 2], -x[:, 0]
    modes[:, 0, 5], modes[:, 1, 5] = -x[:, 1], x[:, 0]
    return modes.reshape(-1, 6)[plan.free_dofs]
