r"""Linear solvers for the voxel stiffness: AMG-preconditioned CG (default) or sparse LU.

``"amg"``: conjugate gradients on all load cases at once, preconditioned by one V-cycle of a
smoothed-aggregation hierarchy (pyamg: symmetric strength, the six rigid-body modes of the
free nodes as near null space, Jacobi-smoothed prolongators; built once for all load cases).
The V-cycle uses Chebyshev smoothing of degree 2 on the block-Jacobi (3x3 nodal blocks)
scaled operator ``D^-1 A``, on the interval ``[lambda_max / 20, 1.1 lambda_max]`` with
``lambda_max`` from a few Lanczos steps (recovered from CG coefficients), and a dense
pseudo-inverse on the coarsest level. A polynomial smoother costs only sparse products; pyamg's
default block Gauss-Seidel sweep costs about four of them on voxel matrices. Pre- and
post-smoothing are the same polynomial, so the V-cycle is symmetric and CG applies.

``"direct"``: one SuperLU factorization (scipy) for all load cases; fill-in makes it
practical only for small grids (a reference in tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from metainv.errors import MetainvError

logger = logging.getLogger(__name__)

SOLVERS = ("amg", "direct")

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


@dataclass(frozen=True)
class SolveStats:
    """What a solve cost: CG ``iterations`` per load case (0 for direct) and the largest
    final relative residual ``||f - K u|| / ||f||``."""

    iterations: tuple[int, ...]
    max_relative_residual: float


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


def solve_cases(
    K: sp.spmatrix,
    F: np.ndarray,
    coordinates: np.ndarray,
    solver: str = "amg",
    rtol: float = 1e-6,
    maxiter: int = 500,
) -> tuple[np.ndarray, SolveStats]:
    """Solve ``K U = F`` for all columns of ``F`` (n_dof, m) with one setup.

    Args:
        K: symmetric positive definite stiffness (n_dof, n_dof), nodal 3x3 blocks.
        F: right-hand sides (n_dof, m).
        coordinates: node positions (n_dof / 3, 3) for the AMG near null space.
        solver: ``"amg"`` or ``"direct"``.
        rtol: CG stopping tolerance on each column's relative residual.
        maxiter: CG iteration limit; reaching it without converging raises.

    Returns:
        ``(U (n_dof, m), SolveStats)``.
    """
    if solver not in SOLVERS:
        raise MetainvError(f"unknown solver {solver!r} (expected one of: {', '.join(SOLVERS)})")
    m = F.shape[1]
    if F.shape[0] == 0 or not np.any(F):
        return np.zeros_like(F), SolveStats(iterations=(0,) * m, max_relative_residual=0.0)
    if solver == "direct":
        U = spla.splu(sp.csc_matrix(K)).solve(F)
        iterations = (0,) * m
    else:
        preconditioner = AMGPreconditioner(K, coordinates)
        U, iterations = block_pcg(K, F, preconditioner, rtol, maxiter)
    norms = np.linalg.norm(F, axis=0)
    residual = np.linalg.norm(F - K @ U, axis=0)
    relative = np.where(norms > 0, residual / np.where(norms > 0, norms, 1.0), 0.0)
    return U, SolveStats(iterations=tuple(iterations), max_relative_residual=float(relative.max()))


def block_pcg(
    A: sp.spmatrix,
    B: np.ndarray,
    preconditioner: AMGPreconditioner,
    rtol: float,
    maxiter: int,
) -> tuple[np.ndarray, list[int]]:
    """Preconditioned CG on every column of ``B`` (n, m) at once, columns independent.

    Each column stops when ``||b - A x|| <= rtol ||b||``; the loop runs until all have.
    Returns ``(X (n, m), iterations per column)``.
    """
    m = B.shape[1]
    X = np.zeros_like(B)
    R = B.copy()
    norms = np.linalg.norm(B, axis=0)
    active = np.flatnonzero(norms > 0)
    iterations = [0] * m
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
            return X, iterations
        keep = ~done
        active, P, rz = active[keep], P[:, keep], rz[keep]
        Z = preconditioner(R[:, active])
        rz_new = np.einsum("ij,ij->j", R[:, active], Z)
        P = Z + (rz_new / rz) * P
        rz = rz_new
    raise MetainvError(f"voxel solve did not converge in {maxiter} CG iterations")


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
    """

    def __init__(self, A: sp.spmatrix, coordinates: np.ndarray) -> None:
        from pyamg.aggregation.aggregate import standard_aggregation
        from pyamg.aggregation.tentative import fit_candidates

        A = _as_bsr(A, 3)
        B = rigid_body_modes(coordinates)
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
    k = len(alphas)
    if k == 0:
        return 1.0
    T = np.zeros((k, k))
    for j in range(k):
        T[j, j] = 1.0 / alphas[j] + (betas[j - 1] / alphas[j - 1] if j > 0 else 0.0)
        if j + 1 < k:
            T[j, j + 1] = T[j + 1, j] = np.sqrt(betas[j]) / alphas[j]
    return float(np.linalg.eigvalsh(T)[-1])
