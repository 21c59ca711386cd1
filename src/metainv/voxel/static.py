r"""Static (uniform-traction) boundary conditions for voxel homogenization: the lower bound.

For each of the six unit macroscopic stresses ``Sigma_J`` (Voigt order, engineering-shear
conjugate) the traction ``t = Sigma_J n`` is applied on the whole boundary of the unit cube,
the body is held against rigid motion by six statically determinate supports (3-2-1: the node
at the origin in x1, x2, x3, the node at ``(1, 0, 0)`` in x2, x3 and the node at ``(0, 1, 0)``
in x3, as unit rows and columns of the assembled matrix; the load is self-equilibrated, so
the supports carry no reaction and change no strain),
and the apparent compliance is the energy form (Hill 1963; Hazanov and Huet 1994)

.. math:: S_{IJ} = \frac{1}{V} f_I^T u_J ,\qquad C_{\text{static}} = S^{-1},

with ``f_I`` the consistent nodal forces of the traction. They equal the internal forces of
the uniform stress in every element, ``f_I = sum_e h^3 Bbar^T Sigma_I`` (the interior nodes
cancel exactly), which is how they are assembled. The average strain is ``S Sigma``
whatever the microstructure, and by the minimum complementary energy principle
``C_affine >= C_periodic >= C_static`` in the Loewner order for the same voxel model.

The traction acts on every boundary face, void ones included, so void voxels must carry an
ersatz modulus (``void_modulus_ratio`` a float): with pores open at the boundary the static
bound then reflects the soft phase there and is far below the kinematic one, as it must be
for a porous body loaded on its pores.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp

from metainv.errors import MetainvError
from metainv.fem import (
    HexGrid,
    Unknowns,
    assemble_node_vectors,
    assemble_stencil,
    hex8_mean_strain,
    hex8_stiffness,
    make_solver,
    shifted_moduli,
)

logger = logging.getLogger(__name__)

#: Solvers of :func:`metainv.fem.make_solver` that take the assembled matrix used here.
ASSEMBLED_SOLVERS = ("amg", "direct")


def static_compliance(
    moduli: np.ndarray,
    poisson_ratio: float,
    solver: str,
    rtol: float,
    maxiter: int,
) -> tuple[np.ndarray, int, tuple[tuple[int, ...], float], dict[str, float]]:
    """Apparent compliance ``S`` (6, 6) of a unit cube of voxels under uniform tractions.

    moduli: (n, n, n) positive Young's moduli of the voxels (every voxel an element).
    Returns ``(S, n_unknowns, (cg_iterations, max_relative_residual), seconds)``.
    """
    if solver not in ASSEMBLED_SOLVERS:
        raise MetainvError(
            f"static boundary conditions need an assembled-matrix solver "
            f"({', '.join(ASSEMBLED_SOLVERS)}), got {solver!r}"
        )
    if np.any(moduli <= 0):
        raise MetainvError(
            "static (uniform traction) boundary conditions load every boundary face, so void "
            "voxels need an ersatz modulus (void_modulus_ratio > 0, not None)"
        )
    n = moduli.shape[0]
    h = 1.0 / n
    clock = time.perf_counter()
    grid = HexGrid((n, n, n), spacing=h, periodic=False)
    shifted = shifted_moduli(grid, moduli)
    node_shape = grid.node_shape
    supports = [((0, 0, 0), (0, 1, 2)), ((n, 0, 0), (1, 2)), ((0, n, 0), (2,))]  # 3-2-1
    Ke = hex8_stiffness(poisson_ratio, h)
    K = assemble_stencil(grid, shifted, Ke, np.arange(grid.n_nodes))  # every node carries one
    # f_I = sum_e h^3 Bbar^T Sigma_I, with unit weight in every element (boundary tractions)
    unit = shifted_moduli(grid, np.ones(grid.shape))
    g = h**3 * hex8_mean_strain(poisson_ratio, h).T  # (24, 6)
    F = assemble_node_vectors(unit, g).reshape(-1, 6)
    for corner, components in supports:
        node = int(np.ravel_multi_index(corner, node_shape))
        _support(K, node, components)
        F[3 * node + np.asarray(components)] = 0.0
    seconds = {"assembly": time.perf_counter() - clock}
    clock = time.perf_counter()
    unknowns = Unknowns(grid, np.arange(3 * grid.n_nodes))
    solve = make_solver(solver, unknowns, rtol=rtol, maxiter=maxiter, strict=True)
    U, stats = solve(K, F)
    seconds["solve"] = time.perf_counter() - clock
    S = F.T @ U  # V = 1
    S = 0.5 * (S + S.T)
    logger.info(
        "static voxel homogenization n=%d: %d unknowns, CG iterations %s",
        n,
        F.shape[0],
        stats.iterations,
    )
    return S, int(F.shape[0]), (stats.iterations, stats.max_relative_residual), seconds


def _support(K: sp.bsr_matrix, node: int, components: tuple[int, ...]) -> None:
    """Hold ``components`` of ``node`` at zero in the BSR matrix ``K`` in place: their rows and
    columns are zeroed and their diagonal entries set to 1 (the node blocks stay intact, so the
    AMG smoother keeps its 3x3 blocks)."""
    start, stop = K.indptr[node], K.indptr[node + 1]
    for c in components:
        K.data[start:stop, c, :] = 0.0
        K.data[K.indices == node, :, c] = 0.0
    diagonal = start + int(np.flatnonzero(K.indices[start:stop] == node)[0])
    for c in components:
        K.data[diagonal, c, c] = 1.0
