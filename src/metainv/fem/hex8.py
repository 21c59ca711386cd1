r"""The 8-node trilinear hexahedron (brick) on an axis-aligned box element.

An element of edge lengths ``h = (h_x, h_y, h_z)`` has local coordinates ``xi in [0, 1]^3``
(``x = x_0 + h xi``) and its local node ``a`` at the corner ``nodes[a]`` in ``{0, 1}^3``. Two
node orders are used (the results of every function here are the same up to that permutation):

* :data:`VTK_NODES`, counter-clockwise bottom face then top face (VTK_HEXAHEDRON; the order of
  :attr:`metainv.fem.HexGrid.element_nodes` and the default here);
* :data:`BINARY_NODES`, ``a = a_x + 2 a_y + 4 a_z`` (the order of the stencil assembly and of
  :func:`hex8_stiffness`).

Shape functions ``N_a(xi) = prod_c (xi_c or 1 - xi_c)`` as ``nodes[a, c]`` is 1 or 0. Elastic
element vectors are node-major, ``(u_x, u_y, u_z)`` of node 0, then node 1, ... (24 entries);
strains are in Voigt order 11, 22, 33, 23, 13, 12 with engineering shears
(:mod:`metainv.tensors`). Integrals use the 2x2x2 Gauss rule, exact for every matrix here
(Hughes, *The Finite Element Method*, 2000, Sec. 3.8).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from metainv.tensors import VOIGT_PAIRS, isotropic_stiffness

#: Corners (8, 3) of the local nodes, counter-clockwise bottom then top (VTK_HEXAHEDRON).
VTK_NODES = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]]
)
#: Corners (8, 3) of the local nodes in binary order ``a = a_x + 2 a_y + 4 a_z``.
BINARY_NODES = np.array([[a & 1, (a >> 1) & 1, (a >> 2) & 1] for a in range(8)], dtype=np.int64)

#: 2x2x2 Gauss points (8, 3) on the unit cube [0, 1]^3; all weights are 1/8.
_GAUSS_1D = 0.5 + np.array([-0.5, 0.5]) / np.sqrt(3.0)
GAUSS_POINTS = np.stack(np.meshgrid(_GAUSS_1D, _GAUSS_1D, _GAUSS_1D, indexing="ij"), -1).reshape(
    -1, 3
)
GAUSS_WEIGHT = 1.0 / 8.0


def _spacing(spacing: float | np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))


def shape_functions(xi: np.ndarray, nodes: np.ndarray = VTK_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Shape functions (p, 8) and their gradients ``dN_a / dxi`` (p, 8, 3) at ``xi`` (p, 3).

    ``xi`` are local coordinates in the unit cube (values outside extrapolate linearly).
    """
    xi = np.asarray(xi, dtype=np.float64)
    factors = np.where(nodes[None, :, :] == 1, xi[:, None, :], 1.0 - xi[:, None, :])
    signs = np.where(nodes == 1, 1.0, -1.0)  # d factor / d xi
    values = factors.prod(-1)
    gradients = np.empty((*values.shape, 3))
    for d in range(3):
        others = [e for e in range(3) if e != d]
        gradients[..., d] = signs[None, :, d] * factors[..., others].prod(-1)
    return values, gradients


def gauss_gradients(spacing: float | np.ndarray = 1.0, nodes: np.ndarray = VTK_NODES) -> np.ndarray:
    """Physical gradients ``dN_a / dx`` (8 Gauss points, 8 nodes, 3) of an element with edge
    lengths ``spacing`` (scalar or (3,), any length unit; gradients in 1 / that unit)."""
    return shape_functions(GAUSS_POINTS, nodes)[1] / _spacing(spacing)


def strain_displacement(gradients: np.ndarray) -> np.ndarray:
    """Voigt ``B`` (..., 6, 24) with ``eps = B u_e`` from shape-function gradients (..., 8, 3)."""
    B = np.zeros((*gradients.shape[:-2], 6, 24))
    for row, (i, j) in enumerate(VOIGT_PAIRS):
        B[..., row, i::3] += gradients[..., :, j]
        if i != j:
            B[..., row, j::3] += gradients[..., :, i]
    return B


def element_stiffness(
    D: np.ndarray, spacing: float | np.ndarray = 1.0, nodes: np.ndarray = VTK_NODES
) -> np.ndarray:
    r"""Element stiffness :math:`k = \int_{\Omega_e} B^T D B \, d\Omega` (24, 24), or (m, 24, 24)
    for a stack of Voigt stiffnesses ``D`` (m, 6, 6); units of ``D`` times length.
    """
    D = np.asarray(D, dtype=np.float64)
    B = strain_displacement(gauss_gradients(spacing, nodes))  # (8, 6, 24)
    weight = GAUSS_WEIGHT * float(np.prod(_spacing(spacing)))
    return weight * np.einsum("gia,...ij,gjb->...ab", B, D, B)


def mean_strain_operator(
    spacing: float | np.ndarray = 1.0, nodes: np.ndarray = VTK_NODES
) -> np.ndarray:
    r"""Volume-averaged strain operator :math:`\bar B = \frac{1}{V_e}\int_{\Omega_e} B \, d\Omega`
    (6, 24): the mean Voigt strain of an element is ``Bbar @ u_e`` (1 / length)."""
    return strain_displacement(gauss_gradients(spacing, nodes)).mean(axis=0)


def element_strain_loads(
    D: np.ndarray,
    strain: np.ndarray,
    spacing: float | np.ndarray = 1.0,
    nodes: np.ndarray = VTK_NODES,
) -> np.ndarray:
    r"""Nodal forces of a prescribed (e.g. inherent) strain,
    :math:`f = \int_{\Omega_e} B^T D \varepsilon \, d\Omega = V_e \bar B^T D \varepsilon`.

    D: (m, 6, 6) Voigt stiffnesses; strain: (6,) Voigt, engineering shears. Returns (m, 24).
    """
    volume = float(np.prod(_spacing(spacing)))
    Bbar = volume * mean_strain_operator(spacing, nodes)
    return np.einsum("ia,kij,j->ka", Bbar, np.asarray(D, dtype=np.float64), strain)


def affine_displacement(
    strain: np.ndarray, spacing: float | np.ndarray = 1.0, nodes: np.ndarray = VTK_NODES
) -> np.ndarray:
    """Nodal displacements (24,) or (m, 24) of ``u = eps x`` (x from the element's corner 0).

    ``strain`` is a Voigt strain (6,) or a stack (m, 6) with engineering shears; the tensor
    ``eps_ij`` takes half of each engineering shear.
    """
    single = np.ndim(strain) == 1
    strain = np.atleast_2d(np.asarray(strain, dtype=float))
    tensor = np.zeros((strain.shape[0], 3, 3))
    for index, (i, j) in enumerate(VOIGT_PAIRS):
        value = strain[:, index] if i == j else 0.5 * strain[:, index]
        tensor[:, i, j] = value
        tensor[:, j, i] = value
    corners = _spacing(spacing) * nodes.astype(float)
    u = np.einsum("mij,aj->mai", tensor, corners).reshape(-1, 24)
    return u[0] if single else u


def scalar_stiffness(
    spacing: float | np.ndarray = 1.0, nodes: np.ndarray = VTK_NODES
) -> np.ndarray:
    r"""Laplace element matrix :math:`\int_{\Omega_e} \nabla N_a \cdot \nabla N_b \, d\Omega` (8, 8)
    (units of length)."""
    G = gauss_gradients(spacing, nodes)
    weight = GAUSS_WEIGHT * float(np.prod(_spacing(spacing)))
    return weight * np.einsum("gad,gbd->ab", G, G)


def gradient_integral(
    spacing: float | np.ndarray = 1.0, nodes: np.ndarray = VTK_NODES
) -> np.ndarray:
    r""":math:`\int_{\Omega_e} \nabla N_a \, d\Omega` (8, 3) (units of length squared)."""
    weight = GAUSS_WEIGHT * float(np.prod(_spacing(spacing)))
    return weight * gauss_gradients(spacing, nodes).sum(0)


@lru_cache(maxsize=16)
def _voxel_matrices(poisson_ratio: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    Ke = element_stiffness(isotropic_stiffness(1.0, poisson_ratio), h, BINARY_NODES)
    Ke = 0.5 * (Ke + Ke.T)  # exactly symmetric
    mean_B = mean_strain_operator(h, BINARY_NODES)
    Ke.flags.writeable = False
    mean_B.flags.writeable = False
    return Ke, mean_B


def hex8_stiffness(poisson_ratio: float, h: float) -> np.ndarray:
    r"""Element stiffness (24, 24) of a cubic voxel of edge ``h`` for Young's modulus 1, in
    :data:`BINARY_NODES` order (cached, read-only).

    :math:`K_e = \int_{V_e} B^T D B \, dV` with the isotropic Voigt ``D(E=1, nu)``. Scales
    linearly with ``h`` and with the element's modulus.
    """
    return _voxel_matrices(float(poisson_ratio), float(h))[0]


def hex8_mean_strain(poisson_ratio: float, h: float) -> np.ndarray:
    r"""Volume-averaged strain operator ``Bbar`` (6, 24) of a cubic voxel of edge ``h`` in
    :data:`BINARY_NODES` order; does not depend on ``poisson_ratio`` (the argument only shares
    the cache with :func:`hex8_stiffness`)."""
    return _voxel_matrices(float(poisson_ratio), float(h))[1]
