r"""Effective elastic stiffness of a voxelized unit-cube RVE by finite elements.

Every voxel of an (n, n, n) boolean grid is an 8-node trilinear hexahedron of edge ``h = 1/n``
(index ``[i, j, k]`` is the voxel ``[i h, (i+1) h] x [j h, (j+1) h] x [k h, (k+1) h]``, so
axis 0 is x1). Solid voxels have Young's modulus ``E_s``; void voxels either an ersatz
modulus ``ratio * E_s`` or no element at all. For each of the six unit macroscopic strains
``eps_J`` (Voigt order 11, 22, 33, 23, 13, 12, engineering shears) the displacement is
``u = eps_J x + w`` with a fluctuation ``w`` that is

* ``"affine"``: zero on the whole boundary of the cube (kinematic / Dirichlet BCs, Voigt-type):
  ``u = eps x`` on every boundary node;
* ``"periodic"``: periodic (equal on opposite faces; one node pinned against translation);
* ``"static"``: uniform tractions ``Sigma n`` on the boundary instead of strains, the lower
  bound (:mod:`metainv.voxel.static`; needs an ersatz void).

Both satisfy the Hill-Mandel condition, so the stiffness is the strain-energy form

.. math:: C_{IJ} = \frac{1}{V} u_I^T K u_J = \frac{1}{V}\sum_e E_e\,
          (u^0_{I} + w_{I})_e^T K_e (u^0_{J} + w_{J})_e ,

which equals the volume-averaged stress ``sigma_J = C eps_J`` at the discrete solution but,
being stationary there, is only quadratically sensitive to the solver error.

Bounds: for the same voxel model, affine BCs are more constrained than periodic ones, so
``C_affine >= C_periodic`` in the Loewner order (affine gives the upper, stiffer bound of the
apparent stiffness; periodic is the better estimate of a periodic medium; the static
(uniform-traction) BCs give the lower bound, ``C_periodic >= C_static``). For a non-periodic
field such as a spinodoid the affine BC is the reference choice (Kumar et al. 2020, spec
``spinodoid.md``).

Void handling (``void_modulus_ratio``):

* a float (default ``1e-6``): every void voxel is an element of modulus ``ratio * E_s``; all
  nodes are unknowns, solid islands stay attached through the soft phase;
* ``None``: void voxels carry no element and their nodes no unknowns (smaller, better
  conditioned system). Solid voxels that are not held then make the system singular, so they
  are removed first, by face (6-) connectivity of the solid voxels: with affine BCs every
  component that reaches the boundary layer is kept (each is clamped through a voxel face),
  with periodic BCs only the largest periodic component is kept (others would float) and
  one of its nodes is pinned. Components joined only through an edge or a corner would be
  hinges and are therefore separate here. The number of removed voxels is logged. (A kept
  periodic component that does not percolate keeps its rigid rotations; the right-hand sides
  are orthogonal to them, so CG still converges, but an ersatz void is the safer model there.)

The linear systems are solved by CG over the six load cases at once, with one of the solvers
of :mod:`metainv.fem.solvers` (``solver``):

* ``"amg"`` (default): assembled BSR matrix, smoothed-aggregation AMG preconditioner (pyamg
  aggregation, rigid-body near null space, Chebyshev smoothing) built once for the six load
  cases. Measured at 64^3, rho = 0.5, void removed (476,610 unknowns, one core): about 11 s
  CPU for assembly, setup and six load cases (``benchmarks/voxel.py``); pyamg's stock solver
  (block Gauss-Seidel smoothing) needed about 3 times as long.
* ``"gmg"``: matrix-free (:class:`metainv.fem.VoxelStiffness`, no matrix is assembled) with
  a float32 Galerkin geometric-multigrid V-cycle (:mod:`metainv.fem.matfree`). The same
  discretization, so the same C to the solver tolerance; half the memory; 1.5-2 times less
  CPU on solid, well-connected fields (64^3, rho = 0.5: about 7 s against 11 s) and 1.4-1.8
  times more on thin ones (rho = 0.3 columnar, affine), where geometric coarse grids
  interpolate across thin struts; with periodic BCs 1.6-4 times less
  (``benchmarks/voxel_solver.py``, README).
* ``"direct"``: sparse LU (SuperLU), small grids only: 17.5 s at 32^3 (1.1 s with AMG),
  growing about like n^5.

The stiffness matrix is assembled in block form straight from a 27-point nodal stencil (one
element matrix times the moduli of the eight elements around each node; no per-element COO
triplets to sort), see :mod:`metainv.fem.assembly`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from metainv.errors import MetainvError
from metainv.fem import (
    BINARY_NODES,
    MATRIX_FREE_SOLVERS,
    HexGrid,
    SolveStats,
    Unknowns,
    VoxelStiffness,
    affine_displacement,
    assemble_node_vectors,
    assemble_stencil,
    element_sum,
    hex8_mean_strain,
    hex8_stiffness,
    make_solver,
    shifted_moduli,
)
from metainv.tensors import isotropic_stiffness
from metainv.voxel.static import static_compliance

logger = logging.getLogger(__name__)

BOUNDARY_CONDITIONS = ("affine", "periodic", "static")
#: Linear solvers of :data:`metainv.fem.SOLVERS` offered here.
SOLVERS = ("amg", "gmg", "direct")
#: CG iteration limit.
MAX_CG_ITERATIONS = 500

#: Default ersatz modulus of void voxels relative to the solid.
DEFAULT_VOID_MODULUS_RATIO = 1e-6

#: Default CG tolerance on the relative residual. The energy form of C is quadratic in the
#: solver error, but a small residual can still leave a large low-frequency error on thin
#: struts. Measured at 32^3, void removed, against rtol = 1e-9 (``benchmarks/voxel_rtol.py``;
#: dC = max |C - C_ref| / max |C_ref|): rho 0.5 isotropic 1e-6 (affine) and 4e-6 (periodic);
#: rho 0.3 columnar 5e-6 and 2e-5; rho 0.3 anisotropic (36, 65, 40) 5e-5 and 8e-5 with gmg,
#: 8e-6 and 5e-5 with amg. Still below the discretization error, but a looser tolerance is
#: not: 1e-2 gives 1e-4 to 3e-3 on the same fields.
DEFAULT_RTOL = 1e-3


@dataclass(frozen=True)
class VoxelHomogenization:
    """Result of :func:`homogenize_voxels_detailed`.

    Attributes:
        C: effective Voigt stiffness (6, 6), in the units of ``youngs_modulus``.
        solid_fraction: solid voxels / all voxels of the input (dimensionless).
        kept_fraction: solid voxels that entered the model / all voxels (differs from
            ``solid_fraction`` only with ``void_modulus_ratio=None`` and removed islands).
        n_unknowns: number of displacement unknowns solved for.
        stats: CG iterations per load case and the final residual.
        seconds: wall-clock seconds per phase (``assembly``, ``solve`` incl. the solver
            setup, ``stiffness``).
    """

    C: np.ndarray
    solid_fraction: float
    kept_fraction: float
    n_unknowns: int
    stats: SolveStats
    seconds: dict[str, float]


def homogenize_voxels(
    solid: np.ndarray,
    youngs_modulus: float = 1.0,
    poisson_ratio: float = 0.3,
    boundary: str = "affine",
    void_modulus_ratio: float | None = DEFAULT_VOID_MODULUS_RATIO,
    solver: str = "amg",
    rtol: float = DEFAULT_RTOL,
) -> np.ndarray:
    """Effective Voigt stiffness (6, 6) of a voxelized unit-cube RVE; see the module docstring.

    Args:
        solid: (n, n, n) boolean occupancy, axis 0 along x1.
        youngs_modulus: solid Young's modulus ``E_s`` (the result is in its units; 1 gives C
            normalized by ``E_s``).
        poisson_ratio: solid Poisson ratio.
        boundary: ``"affine"`` (u = eps x on the boundary; stiffer), ``"periodic"`` or
            ``"static"`` (uniform tractions; softer, needs a float ``void_modulus_ratio``).
        void_modulus_ratio: ersatz modulus of void voxels over ``E_s``, or ``None`` to remove
            the void (and the solid islands that would float).
        solver: ``"amg"`` (default), ``"gmg"`` (matrix-free geometric multigrid) or
            ``"direct"`` (small grids); see the module docstring.
        rtol: CG relative-residual tolerance.

    Returns:
        ``C`` (6, 6), symmetric.
    """
    return homogenize_voxels_detailed(
        solid, youngs_modulus, poisson_ratio, boundary, void_modulus_ratio, solver, rtol
    ).C


def homogenize_voxels_detailed(
    solid: np.ndarray,
    youngs_modulus: float = 1.0,
    poisson_ratio: float = 0.3,
    boundary: str = "affine",
    void_modulus_ratio: float | None = DEFAULT_VOID_MODULUS_RATIO,
    solver: str = "amg",
    rtol: float = DEFAULT_RTOL,
) -> VoxelHomogenization:
    """As :func:`homogenize_voxels`, returning a :class:`VoxelHomogenization` with diagnostics."""
    solid = _check_inputs(solid, youngs_modulus, poisson_ratio, boundary, void_modulus_ratio)
    if solver not in SOLVERS:
        raise MetainvError(f"unknown solver {solver!r} (expected one of: {', '.join(SOLVERS)})")
    n = solid.shape[0]
    h = 1.0 / n
    periodic = boundary == "periodic"
    E = float(youngs_modulus)
    if boundary == "static":
        return _static(solid, E, poisson_ratio, void_modulus_ratio, solver, rtol)

    kept = solid if void_modulus_ratio is not None else keep_held_voxels(solid, periodic)
    if void_modulus_ratio is None:
        removed = int(solid.sum() - kept.sum())
        if removed:
            logger.info("removed %d solid voxels not connected to the held solid", removed)
        if not kept.any():
            raise MetainvError("no solid voxel is held by the boundary conditions: C would be 0")
        moduli = np.where(kept, E, 0.0)
    else:
        moduli = np.where(solid, E, E * float(void_modulus_ratio))

    clock = time.perf_counter()
    grid = HexGrid((n, n, n), spacing=h, periodic=periodic)
    shifted = shifted_moduli(grid, moduli)
    free = _free_nodes(grid, shifted)
    Ke = hex8_stiffness(poisson_ratio, h)
    if solver in MATRIX_FREE_SOLVERS:
        K = VoxelStiffness(grid, moduli, Ke, free)
    else:
        K = assemble_stencil(grid, shifted, Ke, free)

    cases = np.eye(6)
    g = Ke @ affine_displacement(cases, h, BINARY_NODES).T  # (24, 6): forces of u = eps x
    F_nodes = -assemble_node_vectors(shifted, g)  # (n_nodes, 3, 6)
    active = free >= 0
    F = F_nodes[active].reshape(-1, 6)
    free_dofs = (3 * np.flatnonzero(active)[:, None] + np.arange(3)).ravel()
    seconds = {"assembly": time.perf_counter() - clock}
    clock = time.perf_counter()
    solve = make_solver(
        solver, Unknowns(grid, free_dofs), rtol=rtol, maxiter=MAX_CG_ITERATIONS, strict=True
    )
    U, stats = solve(K, F)
    seconds["solve"] = time.perf_counter() - clock
    clock = time.perf_counter()
    logger.info(
        "voxel homogenization n=%d %s: %d unknowns, CG iterations %s, residual %.1e",
        n,
        boundary,
        F.shape[0],
        stats.iterations,
        stats.max_relative_residual,
    )

    C = _energy_stiffness(shifted, K, U, active, moduli, poisson_ratio, h)
    seconds["stiffness"] = time.perf_counter() - clock
    return VoxelHomogenization(
        C=C,
        solid_fraction=float(solid.mean()),
        kept_fraction=float(kept.mean()),
        n_unknowns=int(F.shape[0]),
        stats=stats,
        seconds=seconds,
    )


def _static(
    solid: np.ndarray,
    E: float,
    poisson_ratio: float,
    void_modulus_ratio: float | None,
    solver: str,
    rtol: float,
) -> VoxelHomogenization:
    """The ``"static"`` boundary condition: ``C = S^-1`` of :mod:`metainv.voxel.static`."""
    if void_modulus_ratio is None:
        raise MetainvError(
            "static boundary conditions need an ersatz void (void_modulus_ratio > 0, not None)"
        )
    moduli = np.where(solid, E, E * float(void_modulus_ratio))
    S, n_unknowns, (iterations, residual), seconds = static_compliance(
        moduli, poisson_ratio, solver, rtol, MAX_CG_ITERATIONS
    )
    clock = time.perf_counter()
    C = np.linalg.inv(S)
    seconds["stiffness"] = time.perf_counter() - clock
    return VoxelHomogenization(
        C=0.5 * (C + C.T),
        solid_fraction=float(solid.mean()),
        kept_fraction=float(solid.mean()),
        n_unknowns=n_unknowns,
        stats=SolveStats(iterations, residual),
        seconds=seconds,
    )


def _energy_stiffness(
    shifted: np.ndarray,
    K: sp.spmatrix | VoxelStiffness,
    U: np.ndarray,
    active: np.ndarray,
    moduli: np.ndarray,
    poisson_ratio: float,
    h: float,
) -> np.ndarray:
    r"""``C_IJ = (1/V) sum_e E_e (u^0_I + w_I)_e^T K_e (u^0_J + w_J)_e`` from the fluctuations.

    With ``K_e u^0_J = h^3 Bbar^T D eps_J`` the four terms are
    ``phi_E D + D Bbar W + (D Bbar W)^T + U^T K U`` where ``W = sum_e E_e h^3 w_e`` (24, 6).
    The energy is stationary at the discrete solution, so an error ``delta`` in the
    fluctuations changes ``C`` only at order ``delta^2`` (unlike the stress average, which is
    first order): a loose CG tolerance suffices.
    """
    W_nodes = np.zeros((active.size, 3, U.shape[1]))
    W_nodes[active] = U.reshape(-1, 3, U.shape[1])
    W = element_sum(shifted, W_nodes) * h**3  # (24, 6)
    D = isotropic_stiffness(1.0, poisson_ratio)
    phi_E = moduli.sum() * h**3
    coupling = D @ hex8_mean_strain(poisson_ratio, h) @ W
    C = phi_E * D + coupling + coupling.T + U.T @ (K @ U)
    return 0.5 * (C + C.T)


def _check_inputs(
    solid: np.ndarray,
    youngs_modulus: float,
    poisson_ratio: float,
    boundary: str,
    void_modulus_ratio: float | None,
) -> np.ndarray:
    solid = np.asarray(solid)
    if solid.ndim != 3 or len(set(solid.shape)) != 1:
        raise MetainvError(f"solid must be a cubic (n, n, n) grid, got shape {solid.shape}")
    if solid.dtype != bool:
        raise MetainvError(f"solid must be a boolean grid, got dtype {solid.dtype}")
    if solid.shape[0] < 1:
        raise MetainvError("solid must have at least one voxel")
    if boundary not in BOUNDARY_CONDITIONS:
        raise MetainvError(
            f"unknown boundary {boundary!r} (expected one of: {', '.join(BOUNDARY_CONDITIONS)})"
        )
    if not float(youngs_modulus) > 0:
        raise MetainvError(f"youngs_modulus must be positive, got {youngs_modulus}")
    if not -1.0 < float(poisson_ratio) < 0.5:
        raise MetainvError(f"poisson_ratio must lie in (-1, 0.5), got {poisson_ratio}")
    if void_modulus_ratio is not None and not 0.0 < float(void_modulus_ratio) <= 1.0:
        raise MetainvError(
            f"void_modulus_ratio must lie in (0, 1] or be None, got {void_modulus_ratio}"
        )
    if not solid.any() and void_modulus_ratio is None:
        raise MetainvError("the grid has no solid voxel")
    return solid


def _free_nodes(grid: HexGrid, shifted: np.ndarray) -> np.ndarray:
    """Unknown index of every grid node, -1 where the fluctuation is prescribed (zero).

    Prescribed: nodes without an element; for affine BCs every boundary node; for periodic
    BCs the first node that carries an element (pins the translation).
    """
    carries = shifted.max(axis=0) > 0
    if grid.periodic:
        prescribed = ~carries
        prescribed[np.argmax(carries)] = True
    else:
        coords = grid.node_ijk
        on_boundary = np.any((coords == 0) | (coords == np.asarray(grid.node_shape) - 1), axis=1)
        prescribed = ~carries | on_boundary
    free = np.full(prescribed.shape, -1, dtype=np.int64)
    free[~prescribed] = np.arange(int((~prescribed).sum()))
    return free


def voxel_components(solid: np.ndarray, periodic: bool) -> tuple[int, np.ndarray]:
    """Face-connected (6-connected) components of the solid voxels.

    Periodic grids also connect opposite faces. Returns ``(count, labels)`` with labels
    (n, n, n), -1 on void voxels.
    """
    n = solid.shape[0]
    index = np.arange(solid.size).reshape(solid.shape)
    rows, cols = [], []
    for axis in range(3):
        neighbour = np.roll(index, -1, axis=axis)
        both = solid & np.roll(solid, -1, axis=axis)
        if not periodic:
            last = [slice(None)] * 3
            last[axis] = n - 1
            both[tuple(last)] = False
        rows.append(index[both])
        cols.append(neighbour[both])
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
    graph = sp.coo_matrix(
        (np.ones(rows_all.size, dtype=np.int8), (rows_all, cols_all)), shape=(solid.size,) * 2
    )
    _, labels = connected_components(graph, directed=False)
    labels = labels.reshape(solid.shape)
    # renumber over solid voxels only
    unique, inverse = np.unique(labels[solid], return_inverse=True)
    out = np.full(solid.shape, -1, dtype=np.int64)
    out[solid] = inverse
    return int(unique.size), out


def keep_held_voxels(solid: np.ndarray, periodic: bool) -> np.ndarray:
    """The solid voxels that the boundary conditions hold (see the module docstring).

    Affine: every face-connected component that has a voxel in the boundary layer. Periodic:
    the largest periodic face-connected component.
    """
    count, labels = voxel_components(solid, periodic)
    if count == 0:
        return solid.copy()
    if periodic:
        sizes = np.bincount(labels[solid], minlength=count)
        return labels == int(np.argmax(sizes))
    boundary_layer = np.zeros(solid.shape, dtype=bool)
    boundary_layer[[0, -1], :, :] = True
    boundary_layer[:, [0, -1], :] = True
    boundary_layer[:, :, [0, -1]] = True
    held = np.unique(labels[boundary_layer & solid])
    return np.isin(labels, held) & solid
