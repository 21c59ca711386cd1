"""The 8-node trilinear hexahedron on a cubic voxel of edge ``h``.

Local node ``a = ax + 2 ay + 4 az`` sits at ``h (ax, ay, az)``, ``ax, ay, az in {0, 1}``; the
element displacement vector is ``(u_x, u_y, u_z)`` of node 0, then node 1, ... (24 entries).
Strains are in Voigt order 11, 22, 33, 23, 13, 12 with engineering shears (``metainv.tensors``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from metainv.tensors import VOIGT_PAIRS, isotropic_stiffness

#: Corner positions of the local nodes in units of ``h``, shape (8, 3).
NODE_OFFSETS = np.array([[a & 1, (a >> 1) & 1, (a >> 2) & 1] for a in range(8)], dtype=np.int64)

#: 2-point Gauss rule on [-1, 1]: exact for the trilinear element's stiffness.
_GAUSS = np.array([-1.0, 1.0]) / np.sqrt(3.0)


def _shape_gradients(h: float) -> np.ndarray:
    """``dN_a/dx_k`` at the 8 Gauss points, shape (8 points, 8 nodes, 3)."""
    signs = 2.0 * NODE_OFFSETS - 1.0  # (8, 3) natural coordinates of the nodes
    xi = np.array(np.meshgrid(_GAUSS, _GAUSS, _GAUSS, indexing="ij")).reshape(3, -1).T  # (8, 3)
    factors = 1.0 + xi[:, None, :] * signs[None, :, :]  # (points, nodes, 3)
    grad = np.empty((8, 8, 3))
    for k in range(3):
        others = [m for m in range(3) if m != k]
        grad[..., k] = signs[None, :, k] * factors[..., others[0]] * factors[..., others[1]] / 8
    return grad * (2.0 / h)  # d xi / dx = 2 / h


def _strain_displacement(grad: np.ndarray) -> np.ndarray:
    """Voigt ``B`` (..., 6, 24) from shape-function gradients (..., 8, 3)."""
    B = np.zeros((*grad.shape[:-2], 6, 24))
    for row, (i, j) in enumerate(VOIGT_PAIRS):
        B[..., row, i::3] += grad[..., :, j]
        if i != j:
            B[..., row, j::3] += grad[..., :, i]
    return B


@lru_cache(maxsize=16)
def _element_matrices(poisson_ratio: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    grad = _shape_gradients(h)
    B = _strain_displacement(grad)  # (8, 6, 24)
    D = isotropic_stiffness(1.0, poisson_ratio)
    weight = (h / 2.0) ** 3  # Gauss weights are 1, det J = (h/2)^3
    Ke = weight * np.einsum("gki,kl,glj->ij", B, D, B)
    Ke = 0.5 * (Ke + Ke.T)
    mean_B = B.mean(axis=0)
    Ke.flags.writeable = False
    mean_B.flags.writeable = False
    return Ke, mean_B


def hex8_stiffness(poisson_ratio: float, h: float) -> np.ndarray:
    r"""Element stiffness (24, 24) of a voxel of edge ``h`` for Young's modulus 1.

    :math:`K_e = \int_{V_e} B^T D B \, dV` with the isotropic Voigt ``D(E=1, nu)``, by 2x2x2
    Gauss quadrature (exact). Scales linearly with ``h`` and with the element's modulus.
    """
    return _element_matrices(float(poisson_ratio), float(h))[0]


def hex8_mean_strain(poisson_ratio: float, h: float) -> np.ndarray:
    r"""Volume-averaged strain operator ``Bbar = (1/h^3) \int_{V_e} B dV`` (6, 24).

    The mean Voigt strain of an element is ``Bbar @ u_e``; ``Bbar`` does not depend on
    ``poisson_ratio`` (the argument only shares the cache with :func:`hex8_stiffness`).
    """
    return _element_matrices(float(poisson_ratio), float(h))[1]


def affine_element_displacement(strain: np.ndarray, h: float) -> np.ndarray:
    """Nodal displacements (24,) or (6 cases, 24) of ``u = eps x`` on the local nodes.

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
    u = np.einsum("mij,aj->mai", tensor, h * NODE_OFFSETS.astype(float)).reshape(-1, 24)
    return u[0] if single else u
