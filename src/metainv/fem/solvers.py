r"""Linear solvers for the symmetric positive definite systems of :mod:`metainv.fem`, behind one
registry (:data:`SOLVERS`, :func:`make_solver`).

A solver is made for the unknowns of one problem (:class:`Unknowns`: grid, free degrees of
freedom, unknowns per node) and returns ``solve(K, F) -> (U, SolveStats)`` for right-hand sides
``F`` (n,) or (n, m); with ``warm_start`` it starts from its previous solution (topology
optimization re-solves similar systems).

* ``"direct"``: one sparse LU factorization (SuperLU in symmetric mode, COLAMD ordering) for all
  right-hand sides; exact up to round-off, fill-in makes it practical only for small grids.
* ``"amg"``: conjugate gradients on all right-hand sides at once (:func:`block_pcg`),
  preconditioned by one V-cycle of a smoothed-aggregation hierarchy (pyamg aggregation; the
  near null space of the unknowns, i.e. rigid-body modes or constants; Jacobi-smoothed
  prolongators; built once per matrix). The V-cycle uses Chebyshev smoothing of degree 2 on
  the block-Jacobi (nodal blocks) scaled operator ``D^-1 A``, on the interval
  ``[lambda_max / 20, 1.1 lambda_max]`` with ``lambda_max`` from a few Lanczos steps
  (recovered from CG coefficients), and a dense pseudo-inverse on the coarsest level. A
  polynomial smoother costs only sparse products; pyamg's default block Gauss-Seidel sweep
  costs about four of them on voxel matrices. Pre- and post-smoothing are the same
  polynomial, so the V-cycle is symmetric and CG applies.
* ``"mgcg"``: CG preconditioned by one geometric-multigrid V-cycle (Amir, Aage and Lazarov
  2014; as in Ferrari and Sigmund's top3d125): trilinear prolongation ``P`` between grids of
  half the elements per (even) axis, Galerkin coarse matrices ``K_c = P^T K P`` (robust to the
  ``1e-9`` stiffness contrast of void elements), one damped-Jacobi pre- and post-smoothing step
  (``omega = 0.6``), sparse LU on the coarsest grid. Bounded grids only.
* ``"gmg"``: matrix-free conjugate gradients for voxel models: ``K`` must be a
  :class:`~metainv.fem.matfree.VoxelStiffness` (no sparse matrix is assembled), preconditioned
  by a float32 V-cycle of Galerkin geometric multigrid built element-wise on the voxel grid
  (:class:`~metainv.fem.matfree.VoxelMultigrid`); bounded and periodic grids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from metainv.errors import MetainvError
from metainv.fem.grid import HexGrid
from metainv.fem.matfree import (
    VoxelMultigrid,
    VoxelStiffness,
    lanczos_lambda_max,
    padded_pcg,
)

logger = logging.getLogger(__name__)

#: Chebyshev smoother: polynomial degree and the ratio lambda_max / lambda_min it targets.
CHEBYSHEV_DEGREE = 2
CHEBYSHEV_RATIO = 20.0
#: Safety factor on the Lanczos estimate of lambda_max (an underestimate would amplify).
LAMBDA_SAFETY = 1.1
#: Lanczos steps for lambda_max.
LANCZOS_STEPS = 12
#: Coarsest level size (unknowns) solved densely, and the most levels built.
MAX_COARSE = 600
MAX_LEVELS = 10
#: Damping of the Jacobi prolongator smoothing, relative to 1 / lambda_max(D^-1 A).
PROLONGATOR_OMEGA = 4.0 / 3.0
#: Damped-Jacobi weight of the geometric-multigrid smoother.
JACOBI_WEIGHT = 0.6
#: Geometric multigrid: coarsen while the coarse grid has more free unknowns than this.
COARSEST_DOFS = 4000
#: Matrix-free solvers: most float64 residual corrections around the float32 CG.
MAX_REFINEMENTS = 6


@dataclass(frozen=True)
class SolveStats:
    """What a solve cost: CG ``iterations`` per right-hand side (0 for direct) and the largest
    final relative residual ``||f - K u|| / ||f||``."""

    iterations: tuple[int, ...]
    max_relative_residual: float


@dataclass(frozen=True, eq=False)
class Unknowns:
    """Where the unknowns of a linear system live.

    grid: the element grid
    free_dofs: (n,) increasing global dof numbers ``b p + c`` (node ``p``, component ``c``) of the
        unknowns, in the order of the system's rows
    dofs_per_node: ``b``: 3 for elasticity, 1 for a scalar problem
    """

    grid: HexGrid
    free_dofs: np.ndarray
    dofs_per_node: int = 3

    @property
    def node_blocks(self) -> bool:
        """Whether the unknowns come in whole nodes (``b`` consecutive dofs per free node)."""
        b, dofs = self.dofs_per_node, self.free_dofs
        if dofs.size % b:
            return False
        groups = dofs.reshape(-1, b)
        same_node = np.all(groups // b == groups[:, :1] // b)
        return bool(np.all(groups % b == np.arange(b)) and same_node)

    def near_null_space(self) -> np.ndarray:
        """Near null space (n, k) of the unknowns: the 6 rigid-body modes (elasticity, modes
        of all free nodes about their centroid) or the constant (scalar problem)."""
        b = self.dofs_per_node
        if b == 1:
            return np.ones((self.free_dofs.size, 1))
        if b != 3:
            raise MetainvError(f"no near null space for {b} unknowns per node")
        nodes = np.unique(self.free_dofs // 3)
        modes = rigid_body_modes(self.grid.node_coordinates[nodes])
        position = np.searchsorted(nodes, self.free_dofs // 3)
        return modes.reshape(-1, 3, 6)[position, self.free_dofs % 3]


Solve = Callable[[sp.spmatrix, np.ndarray], tuple[np.ndarray, SolveStats]]


def rigid_body_modes(coordinates: np.ndarray) -> np.ndarray:
    """The 6 rigid-body displacement fields (3 n_nodes, 6) of nodes at ``coordinates`` (n, 3):
    3 translations and 3 infinitesimal rotations about the centroid, node-major DOF order."""
    x = coordinates - coordinates.mean(axis=0)
    n = x.shape[0]
    modes = np.zeros((n, 3, 6))
    modes[:, 0, 0] = modes[:, 1, 1] = modes[:, 2, 2] = 1.0
    modes[:, 1, 3], modes[:, 2, 3] = -x[:, 2], x[:, 1]  # about e1
    modes[:, 0, 4], modes[:, 2, 4] = x[:, 2], -x[:, 0]  # about e2
    modes[:, 0, 5], modes[:, 1, 5] = -x[:, 1], x[:, 0]  # about e3
    return modes.reshape(3 * n, 6)


def block_pcg(
    A: sp.spmatrix,
    B: np.ndarray,
    preconditioner: Callable[[np.ndarray], np.ndarray],
    rtol: float,
    maxiter: int,
    X0: np.ndarray | None = None,
) -> tuple[np.ndarray, list[int], bool]:
    """Preconditioned CG on every column of ``B`` (n, m) at once, columns independent.

    Each column stops when ``||b - A x|| <= rtol ||b||``; the loop runs until all have or
    ``maxiter`` iterations. ``preconditioner`` maps residuals (n, k) to (n, k); ``X0`` (n, m) is
    the start (zero by default). Returns ``(X (n, m), iterations per column, converged)``.
    """
    m = B.shape[1]
    X = np.zeros_like(B) if X0 is None else X0.copy()
    R = B.copy() if X0 is None else B - A @ X
    norms = np.linalg.norm(B, axis=0)
    iterations = [0] * m
    active = np.flatnonzero(np.linalg.norm(R, axis=0) > rtol * norms)
    if active.size == 0:
        return X, iterations, True
    Z = preconditioner(R[:, active])
    P = Z.copy()
    rz = np.einsum("ij,ij->j", R[:, active], Z)
    for iteration in range(1, maxiter + 1):
        AP = A @ P
        alpha = rz / np.einsum("ij,ij->j", P, AP)
        X[:, active] += alpha * P
        R[:, active] -= alpha * AP
        residual = np.linalg.norm(R[:, active], axis=0)
        done = residual <= rtol * norms[active]
        for column in active[done]:
            iterations[column] = iteration
        if done.all():
            return X, iterations, True
        keep = ~done
        active, P, rz = active[keep], P[:, keep], rz[keep]
        Z = preconditioner(R[:, active])
        rz_new = np.einsum("ij,ij->j", R[:, active], Z)
        P = Z + (rz_new / rz) * P
        rz = rz_new
    for column in active:
        iterations[column] = maxiter
    return X, iterations, False


def _lu(K: sp.spmatrix):
    return splu(
        sp.csc_matrix(K),
        permc_spec="COLAMD",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )


# ------------------------------------------------------------------------- geometric multigrid


def _prolongation_1d(n_elements: int) -> sp.csr_matrix:
    """Linear interpolation (n + 1, n/2 + 1) from a 1-D grid of n/2 elements to n (n even)."""
    coarse = n_elements // 2
    fine = np.arange(n_elements + 1)
    left = fine // 2
    odd = fine % 2 == 1
    rows = np.concatenate([fine, fine[odd]])
    cols = np.concatenate([left, left[odd] + 1])
    vals = np.concatenate([np.where(odd, 0.5, 1.0), np.full(odd.sum(), 0.5)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_elements + 1, coarse + 1))


def _prolongation(grid: HexGrid, b: int) -> tuple[sp.csr_matrix, HexGrid] | None:
    """Dof prolongation (b n_fine_nodes, b n_coarse_nodes) halving every even axis, or None."""
    counts = grid.shape
    if not any(n % 2 == 0 for n in counts):
        return None
    factors = [
        _prolongation_1d(n) if n % 2 == 0 else sp.identity(n + 1, format="csr") for n in counts
    ]
    if grid.order == "F":  # x fastest
        nodes = sp.kron(factors[2], sp.kron(factors[1], factors[0]))
    else:
        nodes = sp.kron(factors[0], sp.kron(factors[1], factors[2]))
    coarse = HexGrid(
        tuple(n // 2 if n % 2 == 0 else n for n in counts),
        spacing=tuple(
            s * (2 if n % 2 == 0 else 1) for s, n in zip(grid.spacing, counts, strict=True)
        ),
        origin=grid.origin,
        order=grid.order,
    )
    return sp.kron(nodes, sp.identity(b)).tocsr(), coarse


def multigrid_prolongations(unknowns: Unknowns) -> list[sp.csr_matrix]:
    """Prolongations of the hierarchy, finest first (free dofs only; empty coarse dofs dropped)."""
    if unknowns.grid.periodic:
        raise MetainvError("the geometric multigrid solver needs a bounded grid")
    levels: list[sp.csr_matrix] = []
    grid = unknowns.grid
    rows = unknowns.free_dofs
    while rows.size > COARSEST_DOFS:
        step = _prolongation(grid, unknowns.dofs_per_node)
        if step is None:
            break
        P, grid = step
        P = P[rows]
        kept = np.flatnonzero(np.diff(P.tocsc().indptr) > 0)
        levels.append(P[:, kept].tocsr())
        rows = kept
    return levels


def _multigrid_preconditioner(
    K: sp.spmatrix, prolongations: list[sp.csr_matrix]
) -> Callable[[np.ndarray], np.ndarray]:
    """One V-cycle (damped Jacobi, Galerkin coarse matrices, LU on the coarsest level)."""
    matrices = [sp.csr_matrix(K)]
    for P in prolongations:
        matrices.append((P.T @ matrices[-1] @ P).tocsr())
    inverse_diagonals = [(JACOBI_WEIGHT / m.diagonal())[:, None] for m in matrices[:-1]]
    coarsest = _lu(matrices[-1])

    def v_cycle(depth: int, r: np.ndarray) -> np.ndarray:
        if depth == len(prolongations):
            return coarsest.solve(r)
        A, w = matrices[depth], inverse_diagonals[depth]
        z = w * r
        coarse = v_cycle(depth + 1, prolongations[depth].T @ (r - A @ z))
        z = z + prolongations[depth] @ coarse
        return z + w * (r - A @ z)

    return lambda r: v_cycle(0, r)


# ------------------------------------------------------------------------------------ registry

Preconditioner = Callable[[np.ndarray], np.ndarray]


def _amg_setup(unknowns: Unknowns) -> Callable[[sp.spmatrix], Preconditioner]:
    block = unknowns.dofs_per_node if unknowns.node_blocks else 1
    return lambda K: AMGPreconditioner(K, unknowns.near_null_space(), block)


def _mg_setup(unknowns: Unknowns) -> Callable[[sp.spmatrix], Preconditioner]:
    prolongations = multigrid_prolongations(unknowns)
    return lambda K: _multigrid_preconditioner(K, prolongations)


#: name -> (Unknowns -> (K -> preconditioner)), or None for the direct solver.
_PRECONDITIONERS: dict[str, Callable[[Unknowns], Callable[[sp.spmatrix], Preconditioner]] | None]
_PRECONDITIONERS = {"direct": None, "amg": _amg_setup, "mgcg": _mg_setup}
#: Solvers that take a matrix-free :class:`~metainv.fem.matfree.VoxelStiffness` as ``K``.
MATRIX_FREE_SOLVERS = ("gmg",)
#: The registered solver names.
SOLVERS = (*_PRECONDITIONERS, *MATRIX_FREE_SOLVERS)


def make_solver(
    name: str,
    unknowns: Unknowns,
    rtol: float = 1e-8,
    maxiter: int = 1000,
    warm_start: bool = False,
    strict: bool = False,
) -> Solve:
    """The ``solve(K, F) -> (U, SolveStats)`` callable of the named solver (module docstring).

    rtol: CG stopping tolerance on each column's relative residual (iterative solvers)
    maxiter: CG iteration limit; reaching it logs a warning, or raises when ``strict``
    warm_start: start CG from the previous call's solution
    """
    if name not in SOLVERS:
        raise MetainvError(f"unknown solver {name!r} (expected one of: {', '.join(SOLVERS)})")
    if name in MATRIX_FREE_SOLVERS:
        return _matrix_free_solver(name, unknowns, rtol, maxiter, warm_start, strict)
    setup = _PRECONDITIONERS[name]
    make_preconditioner = None if setup is None else setup(unknowns)
    state: dict[str, np.ndarray] = {}

    def solve(K: sp.spmatrix, F: np.ndarray) -> tuple[np.ndarray, SolveStats]:
        F = np.asarray(F, dtype=np.float64)
        single = F.ndim == 1
        F2 = F[:, None] if single else F
        m = F2.shape[1]
        if F2.shape[0] == 0 or not np.any(F2):
            U = np.zeros_like(F2)
            stats = SolveStats(iterations=(0,) * m, max_relative_residual=0.0)
        else:
            if make_preconditioner is None:
                U, iterations = _lu(K).solve(F2), [0] * m
            else:
                x0 = state.get("U") if warm_start else None
                if x0 is not None and x0.shape != F2.shape:
                    x0 = None
                U, iterations, converged = block_pcg(
                    K, F2, make_preconditioner(K), rtol, maxiter, x0
                )
                state["U"] = U
                if not converged:
                    message = f"{name} solve did not converge in {maxiter} CG iterations"
                    if strict:
                        raise MetainvError(message)
                    logger.warning(message)
            norms = np.linalg.norm(F2, axis=0)
            residual = np.linalg.norm(F2 - K @ U, axis=0)
            relative = np.where(norms > 0, residual / np.where(norms > 0, norms, 1.0), 0.0)
            stats = SolveStats(tuple(iterations), float(relative.max()))
            logger.debug("%s solve: CG iterations %s", name, stats.iterations)
        return (U[:, 0] if single else U), stats

    return solve


def _matrix_free_solver(
    name: str, unknowns: Unknowns, rtol: float, maxiter: int, warm_start: bool, strict: bool
) -> Solve:
    """``solve(K, F)`` of a matrix-free solver: float32 PCG on the padded layout of ``K``
    (:func:`~metainv.fem.matfree.padded_pcg`) inside float64 iterative refinement, so the
    returned relative residual ``||f - K u|| / ||f||`` (float64) meets ``rtol``."""
    state: dict = {}

    def solve(K: VoxelStiffness, F: np.ndarray) -> tuple[np.ndarray, SolveStats]:
        if not isinstance(K, VoxelStiffness):
            raise MetainvError(
                f"the {name} solver needs a matrix-free VoxelStiffness, got {type(K).__name__}"
            )
        F = np.asarray(F, dtype=np.float64)
        single = F.ndim == 1
        F2 = F[:, None] if single else F
        m = F2.shape[1]
        if F2.shape[0] != unknowns.free_dofs.size or F2.shape[0] != K.n_unknowns:
            raise MetainvError(
                f"{F2.shape[0]} right-hand side rows for {K.n_unknowns} unknowns of K"
            )
        if F2.shape[0] == 0 or not np.any(F2):
            U = np.zeros_like(F2)
            stats = SolveStats(iterations=(0,) * m, max_relative_residual=0.0)
            return (U[:, 0] if single else U), stats
        if state.get("K") is not K:
            state.clear()
            state["K"], state["M"] = K, VoxelMultigrid(K)
        multigrid = state["M"]
        B = K.embed(F2)
        target = rtol * np.linalg.norm(B.reshape(-1, m), axis=0)
        X = state.get("X") if warm_start else None
        if X is None or X.shape != B.shape:
            X, R = np.zeros_like(B), B.copy()
        else:
            X = X.copy()
            R = B - K.apply_padded(X.copy())
        iterations = np.zeros(m, dtype=np.int64)
        fine = multigrid.levels[0]
        for _ in range(MAX_REFINEMENTS):
            norms = np.linalg.norm(R.reshape(-1, m), axis=0)
            if np.all(norms <= target) or iterations.max() >= maxiter:
                break
            R32 = R.astype(multigrid.dtype)
            scale = np.linalg.norm(R32.reshape(-1, m).astype(np.float64), axis=0)
            tolerance = np.where(norms > target, target / np.where(norms > 0, norms, 1), 1)
            with K.one_blas_thread():
                D, steps, _ = padded_pcg(
                    fine.apply,
                    R32,
                    multigrid,
                    tolerance * scale,
                    maxiter - int(iterations.max()),
                )
            iterations += steps
            X += D
            R = B - K.apply_padded(X.copy())
        norms = np.linalg.norm(R.reshape(-1, m), axis=0)
        if not np.all(norms <= target):
            message = f"{name} solve did not converge in {maxiter} CG iterations"
            if strict:
                raise MetainvError(message)
            logger.warning(message)
        state["X"] = X
        reference = np.linalg.norm(B.reshape(-1, m), axis=0)
        relative = np.where(reference > 0, norms / np.where(reference > 0, reference, 1.0), 0.0)
        stats = SolveStats(tuple(int(i) for i in iterations), float(relative.max()))
        logger.debug("%s solve: levels %s, CG iterations %s", name, multigrid.sizes, iterations)
        U = K.extract(X)
        return (U[:, 0] if single else U), stats

    return solve


# ------------------------------------------------------------------------ algebraic multigrid


@dataclass(frozen=True)
class _Level:
    A: sp.bsr_matrix
    P: sp.bsr_matrix | None
    R: sp.bsr_matrix | None
    D_inv: np.ndarray  # (n_blocks, b, b) inverse diagonal blocks
    bounds: tuple[float, float]  # Chebyshev interval of D^-1 A


class AMGPreconditioner:
    """One symmetric V-cycle of smoothed-aggregation AMG with Chebyshev smoothing.

    The hierarchy is built from pyamg's aggregation and candidate fitting: on each level the
    block graph of ``A`` is aggregated (standard aggregation; every coupling counts as
    strong), the tentative prolongator ``T`` fits the near null space exactly, and
    ``P = T - (4/3) / lambda_max D^-1 A T`` with the same block-Jacobi ``D`` and Lanczos
    ``lambda_max`` that the Chebyshev smoother uses (no separate spectral estimate);
    ``A_coarse = P^T A P``. Call with a block of residuals (n, m) to get ``M^-1 R`` (n, m).

    ``near_null_space`` (n, k): the rigid-body modes of the unknowns for elasticity
    (:func:`rigid_body_modes`), constants for a scalar problem; ``block_size``: unknowns per
    node (the blocks of the block-Jacobi smoother on the fine level; 1 when some nodes have
    only part of their unknowns free).
    """

    def __init__(self, A: sp.spmatrix, near_null_space: np.ndarray, block_size: int = 3) -> None:
        from pyamg.aggregation.aggregate import standard_aggregation
        from pyamg.aggregation.tentative import fit_candidates

        A = _as_bsr(A, block_size)
        B = near_null_space
        rng = np.random.default_rng(0)
        self.levels: list[_Level] = []
        while A.shape[0] > MAX_COARSE and len(self.levels) < MAX_LEVELS:
            D_inv = _block_diagonal_inverse(A)
            lmax = _lanczos_lambda_max(A, D_inv, rng) * LAMBDA_SAFETY
            graph = sp.csr_matrix(
                (np.ones(A.indices.size), A.indices, A.indptr),
                shape=(A.shape[0] // A.blocksize[0],) * 2,
            )
            aggregates, _ = standard_aggregation(graph)
            T, B = fit_candidates(sp.csr_matrix(aggregates), B)
            T = _as_bsr(T, A.blocksize[0], B.shape[1])
            AT = A @ T
            P = T - _scale_block_rows(sp.bsr_matrix(AT), D_inv, PROLONGATOR_OMEGA / lmax)
            P = _as_bsr(P, A.blocksize[0], B.shape[1])
            R = _as_bsr(P.T, B.shape[1], A.blocksize[0])
            coarse = _as_bsr(R @ (A @ P), B.shape[1])
            self.levels.append(
                _Level(A=A, P=P, R=R, D_inv=D_inv, bounds=(lmax / CHEBYSHEV_RATIO, lmax))
            )
            A = coarse
        logger.debug(
            "AMG levels (unknowns): %s", [lev.A.shape[0] for lev in self.levels] + [A.shape[0]]
        )
        dense = A.toarray()
        dense = 0.5 * (dense + dense.T)
        try:
            self.coarse_inverse = sla.cho_solve(sla.cho_factor(dense), np.eye(dense.shape[0]))
        except np.linalg.LinAlgError:
            # aggregates with fewer DOFs than near-null modes leave zero coarse rows
            self.coarse_inverse = sla.pinvh(dense)

    def __call__(self, R: np.ndarray) -> np.ndarray:
        return self._cycle(0, R)

    def _cycle(self, index: int, b: np.ndarray) -> np.ndarray:
        if index == len(self.levels):
            return self.coarse_inverse @ b
        level = self.levels[index]
        x = _chebyshev(level, b, np.zeros_like(b))
        residual = b - level.A @ x
        x += level.P @ self._cycle(index + 1, level.R @ residual)
        return _chebyshev(level, b, x)


def _as_bsr(M: sp.spmatrix, rows: int, cols: int | None = None) -> sp.bsr_matrix:
    """``M`` as BSR with blocks (rows, cols) (square by default), converting only if needed."""
    blocksize = (rows, rows if cols is None else cols)
    if sp.issparse(M) and M.format == "bsr" and M.blocksize == blocksize:
        return M
    return sp.bsr_matrix(M, blocksize=blocksize)


def _block_diagonal_inverse(A: sp.bsr_matrix) -> np.ndarray:
    """(Pseudo-)inverses (n_blocks, b, b) of the diagonal blocks of a square BSR matrix (3x3
    nodal blocks on the fine level, one block per aggregate's unknowns on coarse levels)."""
    from pyamg.util.utils import get_block_diag

    return get_block_diag(A, A.blocksize[0], inv_flag=True)


def _scale_block_rows(M: sp.bsr_matrix, D_inv: np.ndarray, factor: float) -> sp.bsr_matrix:
    """``factor * blockdiag(D_inv) @ M`` for a BSR ``M`` whose row blocks match ``D_inv``."""
    rows = np.repeat(np.arange(M.shape[0] // M.blocksize[0]), np.diff(M.indptr))
    data = factor * np.matmul(D_inv[rows], M.data)
    return sp.bsr_matrix((data, M.indices, M.indptr), shape=M.shape)


def _apply_block(D_inv: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``D^-1 r`` for r (n, m) with block inverses (n / s, s, s)."""
    m, size = r.shape[1], D_inv.shape[1]
    return np.matmul(D_inv, r.reshape(-1, size, m)).reshape(-1, m)


def _chebyshev(level: _Level, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Chebyshev iteration (Saad, Alg. 12.1) on ``D^-1 A x = D^-1 b`` from ``x``, in place."""
    low, high = level.bounds
    theta, delta = 0.5 * (high + low), 0.5 * (high - low)
    sigma = theta / delta
    rho = 1.0 / sigma
    r = b - level.A @ x if np.any(x) else b.copy()
    d = _apply_block(level.D_inv, r) / theta
    for step in range(CHEBYSHEV_DEGREE):
        x += d
        if step == CHEBYSHEV_DEGREE - 1:
            break
        r -= level.A @ d
        rho_next = 1.0 / (2.0 * sigma - rho)
        d = rho_next * rho * d + (2.0 * rho_next / delta) * _apply_block(level.D_inv, r)
        rho = rho_next
    return x


def _lanczos_lambda_max(A: sp.csr_matrix, D_inv: np.ndarray, rng: np.random.Generator) -> float:
    """Largest eigenvalue of ``D^-1 A`` from the Lanczos matrix of a few CG steps."""
    b = rng.standard_normal((A.shape[0], 1))
    r = b.copy()
    z = _apply_block(D_inv, r)
    p = z.copy()
    rz = float((r * z).sum())
    alphas: list[float] = []
    betas: list[float] = []
    for _ in range(min(LANCZOS_STEPS, A.shape[0])):
        Ap = A @ p
        pAp = float((p * Ap).sum())
        if pAp <= 0:
            break
        alpha = rz / pAp
        r -= alpha * Ap
        z = _apply_block(D_inv, r)
        rz_next = float((r * z).sum())
        alphas.append(alpha)
        beta = rz_next / rz
        betas.append(beta)
        if rz_next <= 1e-30 * abs(rz):
            break
        p = z + beta * p
        rz = rz_next
    return lanczos_lambda_max(alphas, betas)
