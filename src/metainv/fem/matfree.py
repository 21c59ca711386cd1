r"""Matrix-free voxel stiffness and its geometric-multigrid preconditioner.

The stiffness of a voxel model is ``K = sum_e s_e A_e^T k A_e`` with one element matrix ``k``
(8 b, 8 b) in :data:`~metainv.fem.hex8.BINARY_NODES` order for every voxel, scaled by the
voxel's modulus ``s_e`` (0: no element), restricted to the free nodes (the same operator that
:func:`~metainv.fem.assembly.assemble_stencil` assembles). :class:`VoxelStiffness` applies it
without a sparse matrix.

Padded layout
    Node fields live on the ``(n_x + 1) x (n_y + 1) x (n_z + 1)`` node grid, C order, as arrays
    ``(b, L + pad, m)`` (component, node, right-hand side); element ``e`` is identified with
    its lower corner node ``p``, so its local node ``a`` is ``p + delta_a`` with a constant
    flat offset ``delta_a``. Gathering the element vectors of a run of elements is then eight
    contiguous slice copies, the element products one dense GEMM ``k @ (24, run * m)`` (or a
    batched product for per-element matrices), and the scatter eight slice additions; runs of
    a few thousand elements keep the buffers in cache. A periodic grid uses the same layout
    with the last node layer of each axis as a ghost copy of the first (filled before a
    product, folded back after it). Fixed, empty and ghost nodes are masked to zero.

Geometric multigrid (Amir, Aage and Lazarov 2014, with Galerkin coarse grids)
    Grids of half the elements per axis, trilinear prolongation ``P``, coarse operators
    ``K_c = P^T K P``. Every fine voxel lies inside one coarse voxel and its nodes are
    interpolated from that coarse voxel's nodes only, so ``P^T K P`` is again element-wise:
    the coarse element matrix is ``sum_t Q_t^T k_t Q_t`` over its 8 children ``t`` with fixed
    interpolations ``Q_t`` (24, 24). Unrolled over ``l`` levels, it is
    ``sum_s s_(fine voxel s) M_s`` over the ``8^l`` fine voxels inside with ``8^l`` fixed
    matrices ``M_s`` (built once per call), so no sparse triple product is formed: each level
    costs one ``(n_coarse, 8^l) @ (8^l, (8 b)^2)`` product. Galerkin coarse grids are robust
    to void voxels (zero or ``1e-6`` moduli), unlike rediscretized ones. The V-cycle uses one
    damped-Jacobi pre- and post-smoothing step (weight 0.6) and sparse LU on the coarsest grid
    (minimum-degree ordering; periodic grids coarsen further, :data:`PERIODIC_COARSEST_DOFS`;
    a bounded grid stops early at a sparse coarse level, :data:`SPARSE_COARSE_SHARE`); it runs
    in float32 (a preconditioner needs no more), the conjugate gradients around it in float64.
    The conjugate gradients run on all right-hand sides at once and drop each one as it
    converges (:func:`padded_pcg`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from threadpoolctl import ThreadpoolController

from metainv.errors import MetainvError
from metainv.fem.assembly import assemble_stencil, shifted_moduli
from metainv.fem.grid import HexGrid
from metainv.fem.hex8 import BINARY_NODES, shape_functions

#: Elements per run of the chunked element products (times the right-hand sides).
RUN_ELEMENTS = 16384
#: Damped-Jacobi smoother: weight ``JACOBI_WEIGHT / lambda_max(D^-1 A)`` per level, with
#: ``lambda_max`` from ``LANCZOS_STEPS`` Lanczos steps times ``LAMBDA_SAFETY`` (a weight times
#: lambda_max below 2 keeps the V-cycle positive definite).
JACOBI_WEIGHT = 4.0 / 3.0
LANCZOS_STEPS = 10
LAMBDA_SAFETY = 1.1
#: Jacobi sweeps before and after the coarse correction on the coarse levels (1 on the finest),
#: and coarse corrections per visit of a coarse level (1: V-cycle, 2: W-cycle below the finest).
COARSE_LEVEL_SWEEPS = 2
CYCLE_INDEX = 1
#: Coarsen while the grid has more unknowns than this (and every axis is even): 64^3 stops at
#: 16^3 (14,739 unknowns, sparse LU). Jacobi-smoothed coarse levels are weak on thin struts,
#: so an exact solve on a finer coarsest grid pays (32^3, rho 0.3 columnar spinodoid: at most
#: 20 instead of 28 CG iterations with a coarsest grid of 8^3).
COARSEST_DOFS = 20000
#: The same for periodic grids, where the sparse LU of a 16^3 torus fills in far more (no
#: boundary to start the elimination): 64^3 periodic spinodoids stop at 8^3 (2,187 unknowns);
#: measured (one core, void removed): rho 0.5 isotropic 20.0 s -> 8.3 s CPU at equal CG
#: iterations (17), rho 0.3 columnar 21.8 s -> 19.0 s (32 -> 44 iterations). Affine grids
#: keep the finer coarsest grid (64^3 rho 0.3 columnar: 8.6 s against 12.1 s with 8^3).
PERIODIC_COARSEST_DOFS = 5000
#: Largest coarsest grid solved by sparse LU; a larger one (odd axes) gets Jacobi sweeps.
MAX_DIRECT_DOFS = 60000
#: A bounded grid's hierarchy stops early at a coarse level with at most ``MAX_DIRECT_DOFS``
#: unknowns that are at most this share of its grid's: the level of a sparse solid (thin
#: struts, much void), whose LU fills in little, is then solved exactly. The Jacobi-smoothed
#: coarse levels below it are what thin fields converge slowly on: 64^3 spinodoids, void
#: removed, one core, LU at 32^3 instead of 16^3: columnar rho 0.18 (45,360 unknowns, 42 % of
#: the grid's; LU 7.6 M nonzeros) CG iterations 23-58 -> 16-36, 16.4 s -> 11.1 s; isotropic
#: rho 0.25 (57k, 53 %) 9.3 s -> 7.8 s; but isotropic rho 0.4 and 0.5 (72k and 78k, 66 % and
#: 72 %; LU 58 M and 109 M nonzeros) would take 8.5 s and 25 s to factor.
SPARSE_COARSE_SHARE = 0.6
#: Jacobi sweeps standing in for the coarsest solve when it is too large for LU.
COARSE_SWEEPS = 8
#: Fill-reducing ordering of the coarsest-grid LU. Minimum degree on ``A^T + A`` suits these
#: symmetric 27-point matrices far better than COLAMD (SuperLU's default, an ordering for
#: ``A^T A``); measured on the 16^3 coarsest grids (one core): periodic 32^3 rho 0.3 columnar
#: spinodoid (11,964 unknowns) factor 7.6 s -> 2.1 s, solve of six right-hand sides 0.13 s
#: -> 0.06 s, half the fill; affine 64^3 rho 0.5 (10,125 unknowns) factor 0.93 s -> 0.79 s.
COARSE_ORDERING = "MMD_AT_PLUS_A"


@dataclass(frozen=True)
class _Layout:
    """The padded node layout of a grid of ``shape`` elements (module docstring)."""

    shape: tuple[int, int, int]
    periodic: bool

    @cached_property
    def node_dims(self) -> tuple[int, int, int]:
        return tuple(n + 1 for n in self.shape)  # type: ignore[return-value]

    @cached_property
    def size(self) -> int:
        """Nodes of the padded grid, ``L``."""
        return int(np.prod(self.node_dims))

    @cached_property
    def offsets(self) -> np.ndarray:
        """Flat offset (8,) of each local node from the element's corner node."""
        _, my, mz = self.node_dims
        return (BINARY_NODES[:, 0] * my + BINARY_NODES[:, 1]) * mz + BINARY_NODES[:, 2]

    @cached_property
    def length(self) -> int:
        """Array length ``L + pad`` (element runs read past the last node)."""
        return self.size + int(self.offsets[-1])

    def nodes(self, grid: HexGrid) -> np.ndarray:
        """Padded index (n_nodes,) of every node of ``grid`` in its numbering."""
        i, j, k = grid.node_ijk.T
        _, my, mz = self.node_dims
        return (i * my + j) * mz + k

    def element_field(self, values: np.ndarray) -> np.ndarray:
        """Per-element values (shape, ...) at their corner nodes, (L, ...), zero elsewhere."""
        out = np.zeros((*self.node_dims, *values.shape[3:]), dtype=values.dtype)
        nx, ny, nz = self.shape
        out[:nx, :ny, :nz] = values
        return out.reshape(self.size, *values.shape[3:])

    def grid_view(self, x: np.ndarray) -> np.ndarray:
        """The node-grid view (b, m_x, m_y, m_z, m) of a field (b, length, m)."""
        return x[:, : self.size].reshape(x.shape[0], *self.node_dims, x.shape[-1])

    def fill_ghosts(self, x: np.ndarray) -> None:
        """Periodic: copy the first node layer of each axis to the ghost layer, in place."""
        if not self.periodic:
            return
        g = self.grid_view(x)
        nx, ny, nz = self.shape
        g[:, nx] = g[:, 0]
        g[:, :, ny] = g[:, :, 0]
        g[:, :, :, nz] = g[:, :, :, 0]

    def fold_ghosts(self, x: np.ndarray) -> None:
        """Periodic: add the ghost layers onto the first layers (transpose of the fill)."""
        if not self.periodic:
            return
        g = self.grid_view(x)
        nx, ny, nz = self.shape
        g[:, :, :, 0] += g[:, :, :, nz]
        g[:, :, 0] += g[:, :, ny]
        g[:, 0] += g[:, nx]


def _element_products(
    layout: _Layout,
    x: np.ndarray,
    moduli: np.ndarray | None,
    matrix: np.ndarray,
) -> np.ndarray:
    """``sum_e A_e^T k_e A_e x`` on the padded layout (no masking, no ghost handling).

    Either ``moduli`` (L,) with one ``matrix`` (8 b, 8 b): ``k_e = moduli_e matrix``; or
    ``moduli`` None with per-element matrices ``matrix`` (L, 8 b, 8 b).
    """
    b, _, m = x.shape
    size, offsets = layout.size, layout.offsets
    run = max(256, RUN_ELEMENTS // m)
    out = np.zeros_like(x)
    gathered = np.empty((8 * b, run, m), dtype=x.dtype)
    # one modulus per (element, right-hand side): a broadcast along the short last axis
    # costs as much as the GEMM (numpy inner loops of length m)
    scale = None if moduli is None else np.repeat(moduli[:size], m)
    for start in range(0, size, run):
        stop = min(size, start + run)
        width = stop - start
        u = gathered[:, :width]
        for a, offset in enumerate(offsets):
            u[b * a : b * a + b] = x[:, offset + start : offset + stop]
        if scale is not None:
            u = u.reshape(8 * b, width * m)
            u *= scale[None, start * m : stop * m]
            f = (matrix @ u).reshape(8 * b, width, m)
        else:
            f = np.matmul(matrix[start:stop], u.transpose(1, 0, 2)).transpose(1, 0, 2)
        for a, offset in enumerate(offsets):
            out[:, offset + start : offset + stop] += f[b * a : b * a + b]
    return out


@dataclass(frozen=True, eq=False)
class _Level:
    """One grid of the hierarchy: operator data, unknown mask and Jacobi weights."""

    layout: _Layout
    moduli: np.ndarray | None  # (L,) on the finest level, else None
    matrix: np.ndarray  # (8b, 8b) finest, else (L, 8b, 8b) element matrices
    mask: np.ndarray  # (length,) 1 on unknowns, 0 on fixed, empty, ghost and padding nodes
    jacobi: np.ndarray  # (b, length, 1) weight / diagonal on unknowns, 0 elsewhere
    _wide: dict = field(default_factory=dict, repr=False)

    def wide(self, name: str, m: int) -> np.ndarray:
        """``mask`` (1, length, m) or ``jacobi`` (b, length, m) repeated over ``m`` right-hand
        sides (cached for the last ``m``): numpy multiplies by a broadcast along the short
        last axis several times slower than by a full array."""
        key = (name, m)
        if key not in self._wide:
            for old in [k for k in self._wide if k[0] == name]:
                del self._wide[old]
            values = self.mask[None, :, None] if name == "mask" else self.jacobi
            self._wide[key] = np.repeat(values, m, axis=2)
        return self._wide[key]

    def smooth(self, r: np.ndarray) -> np.ndarray:
        """One damped-Jacobi step from zero, ``D_w^-1 r`` (b, length, m)."""
        return self.wide("jacobi", r.shape[-1]) * r

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``A x`` for a masked field x (b, length, m); x's ghost entries are used as scratch."""
        mask = self.wide("mask", x.shape[-1])
        self.layout.fill_ghosts(x)
        out = _element_products(self.layout, x, self.moduli, self.matrix)
        if self.layout.periodic:
            x *= mask  # back to zero ghosts
            self.layout.fold_ghosts(out)
        out *= mask
        return out


def _diagonal(layout: _Layout, moduli: np.ndarray | None, matrix: np.ndarray, b: int) -> np.ndarray:
    """Diagonal (b, length) of the unmasked operator."""
    diagonal = np.zeros((b, layout.length))
    if moduli is None:
        element_diagonal = np.diagonal(matrix, axis1=1, axis2=2).T  # (8b, L)
    else:
        element_diagonal = np.diag(matrix)[:, None] * moduli[None, :]
    for a, offset in enumerate(layout.offsets):
        diagonal[:, offset : offset + layout.size] += element_diagonal[b * a : b * a + b]
    layout.fold_ghosts(diagonal[:, :, None])
    return diagonal


def _interpolations(b: int) -> np.ndarray:
    """``Q_t`` (8 children, 8 b, 8 b): a coarse voxel's node values to child ``t``'s nodes."""
    Q = np.zeros((8, 8 * b, 8 * b))
    for t, corner in enumerate(BINARY_NODES):
        xi = (corner[None, :] + BINARY_NODES) / 2.0  # child's local nodes in the coarse voxel
        N = shape_functions(xi, BINARY_NODES)[0]  # (8 child nodes, 8 coarse nodes)
        Q[t] = np.kron(N, np.eye(b))
    return Q


def _galerkin_bases(matrix: np.ndarray, levels: int) -> list[np.ndarray]:
    """Fixed matrices ``M_s`` per level: (2^l, 2^l, 2^l, 8b, 8b) for l = 1..levels."""
    b = matrix.shape[0] // 8
    Q = _interpolations(b)
    current = matrix[None, None, None]
    bases = []
    for _ in range(levels):
        half = current.shape[0]
        nxt = np.empty((2 * half,) * 3 + matrix.shape)
        for t, (tx, ty, tz) in enumerate(BINARY_NODES):
            block = np.matmul(np.matmul(Q[t].T, current), Q[t])
            nxt[tx * half : (tx + 1) * half, ty * half : (ty + 1) * half,
                tz * half : (tz + 1) * half] = block  # fmt: skip
        bases.append(nxt)
        current = nxt
    return bases


def _coarse_matrices(moduli: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Coarse element matrices (n_c per axis..., 8b, 8b) from fine moduli (shape) and the fixed
    matrices ``basis`` (2^l, 2^l, 2^l, 8b, 8b)."""
    r = basis.shape[0]
    nx, ny, nz = (n // r for n in moduli.shape)
    grouped = moduli.reshape(nx, r, ny, r, nz, r).transpose(0, 2, 4, 1, 3, 5)
    flat = grouped.reshape(nx * ny * nz, r**3)
    size = basis.shape[-1]
    out = flat @ basis.reshape(r**3, size * size)
    return out.reshape(nx, ny, nz, size, size)


def _prolong(fine: _Layout, coarse: _Layout, xc: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Trilinear prolongation of a coarse field (b, length_c, m) to the fine layout, masked
    by ``mask`` (1, length, m)."""
    coarse.fill_ghosts(xc)
    g = coarse.grid_view(xc)
    for axis in (1, 2, 3):
        shape = list(g.shape)
        shape[axis] = 2 * shape[axis] - 1
        out = np.empty(shape, dtype=g.dtype)
        even = [slice(None)] * 5
        odd = [slice(None)] * 5
        even[axis], odd[axis] = slice(0, None, 2), slice(1, None, 2)
        out[tuple(even)] = g
        left = [slice(None)] * 5
        right = [slice(None)] * 5
        left[axis], right[axis] = slice(0, -1), slice(1, None)
        out[tuple(odd)] = 0.5 * (g[tuple(left)] + g[tuple(right)])
        g = out
    x = np.zeros((xc.shape[0], fine.length, xc.shape[-1]), dtype=xc.dtype)
    x[:, : fine.size] = g.reshape(xc.shape[0], fine.size, xc.shape[-1])
    x *= mask
    return x


def _restrict(fine: _Layout, coarse: _Layout, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Transpose of :func:`_prolong`: a masked fine field to the coarse layout, masked by
    ``mask`` (1, length_c, m)."""
    g = fine.grid_view(x)
    for axis in (3, 2, 1):
        even = [slice(None)] * 5
        odd = [slice(None)] * 5
        even[axis], odd[axis] = slice(0, None, 2), slice(1, None, 2)
        out = g[tuple(even)].copy()
        half = 0.5 * g[tuple(odd)]
        low = [slice(None)] * 5
        high = [slice(None)] * 5
        low[axis], high[axis] = slice(0, -1), slice(1, None)
        out[tuple(low)] += half
        out[tuple(high)] += half
        g = out
    xc = np.zeros((x.shape[0], coarse.length, x.shape[-1]), dtype=x.dtype)
    xc[:, : coarse.size] = g.reshape(x.shape[0], coarse.size, x.shape[-1])
    coarse.fold_ghosts(xc)
    xc *= mask
    return xc


class VoxelStiffness:
    """Matrix-free ``K_ff`` of a voxel model (see the module docstring).

    grid: C-ordered :class:`~metainv.fem.grid.HexGrid` (bounded or periodic)
    moduli: per-element scalars, shape ``grid.shape`` (0 where there is no element)
    element_matrix: (8 b, 8 b) element matrix for the scalar 1, ``BINARY_NODES`` order
    free: (n_nodes,) index of each node among the unknowns, -1 where fixed or without an
        element (the convention of :func:`~metainv.fem.assembly.assemble_stencil`)

    ``K @ X`` takes ``X`` (b n_free,) or (b n_free, m) in the unknowns' order (node-major) and
    equals ``assemble_stencil(grid, shifted_moduli(grid, moduli), element_matrix, free) @ X``.
    """

    def __init__(
        self, grid: HexGrid, moduli: np.ndarray, element_matrix: np.ndarray, free: np.ndarray
    ) -> None:
        if grid.order != "C":
            raise MetainvError("the matrix-free voxel stiffness needs a C-ordered grid")
        self.grid = grid
        self.moduli = np.asarray(moduli, dtype=np.float64).reshape(grid.shape)
        self.element_matrix = np.asarray(element_matrix, dtype=np.float64)
        self.b = self.element_matrix.shape[0] // 8
        self.free = np.asarray(free)
        self.layout = _Layout(grid.shape, grid.periodic)
        active = np.flatnonzero(self.free >= 0)
        order = np.argsort(self.free[active])
        #: padded index of unknown node q
        self.slots = self.layout.nodes(grid)[active[order]]
        self.n_unknowns = self.b * active.size
        self._moduli_padded = self.layout.element_field(self.moduli)
        mask = np.zeros(self.layout.length)
        mask[self.slots] = 1.0
        self.mask = mask
        self._blas = ThreadpoolController()

    def one_blas_thread(self):
        """Context with one BLAS thread. The element products are GEMMs with 24 rows (and
        batches of tiny ones on coarse grids), which a multi-threaded OpenBLAS runs about 20
        times slower (measured: 24 x 24 by 24 x 16,384 float32, 16 ms on two threads, 0.7 ms
        on one)."""
        return self._blas.limit(limits=1, user_api="blas")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_unknowns, self.n_unknowns)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    def embed(self, X: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Unknowns (b n_free, m) -> padded field (b, length, m)."""
        m = X.shape[1]
        out = np.zeros((self.b, self.layout.length, m), dtype=dtype)
        out[:, self.slots] = X.reshape(-1, self.b, m).transpose(1, 0, 2)
        return out

    def extract(self, x: np.ndarray) -> np.ndarray:
        """Padded field (b, length, m) -> unknowns (b n_free, m)."""
        return x[:, self.slots].transpose(1, 0, 2).reshape(self.n_unknowns, x.shape[-1])

    def level(self, dtype=np.float64, smoother: bool = True) -> _Level:
        """The finest level (operator, mask, Jacobi weights unless not ``smoother``) in
        ``dtype``."""
        diagonal = _diagonal(self.layout, self._moduli_padded, self.element_matrix, self.b)
        return _jacobi_level(
            self.layout,
            self._moduli_padded.astype(dtype),
            self.element_matrix.astype(dtype),
            self.mask,
            diagonal,
            dtype,
            smoother,
        )

    @cached_property
    def _level64(self) -> _Level:
        return self.level(np.float64, smoother=False)

    def apply_padded(self, x: np.ndarray) -> np.ndarray:
        """``K x`` on padded fields (b, length, m), float64."""
        with self.one_blas_thread():
            return self._level64.apply(x)

    def __matmul__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        single = X.ndim == 1
        X2 = X[:, None] if single else X
        out = self.extract(self.apply_padded(self.embed(X2)))
        return out[:, 0] if single else out

    def diagonal(self) -> np.ndarray:
        """Diagonal (b n_free,) of ``K_ff``."""
        d = _diagonal(self.layout, self._moduli_padded, self.element_matrix, self.b)
        return d[:, self.slots].T.reshape(-1)

    def assemble(self) -> sp.bsr_matrix:
        """The same operator as an assembled BSR matrix (for direct solvers and checks)."""
        shifted = shifted_moduli(self.grid, self.moduli)
        return assemble_stencil(self.grid, shifted, self.element_matrix, self.free)


def _jacobi_level(layout, moduli, matrix, mask, diagonal, dtype, smoother=True) -> _Level:
    """A level with the damped-Jacobi smoother ``(4/3) / lambda_max(D^-1 A)`` on its unknowns
    (``lambda_max`` estimated by Lanczos, :func:`_lambda_max`)."""
    b = diagonal.shape[0]
    keep = (mask > 0)[None, :] & (diagonal > 0)
    inverse = np.zeros_like(diagonal)
    inverse[keep] = 1.0 / diagonal[keep]
    level = _Level(
        layout=layout,
        moduli=moduli,
        matrix=matrix,
        mask=mask.astype(dtype),
        jacobi=inverse.reshape(b, -1, 1).astype(dtype),
    )
    if smoother:
        lam = _lambda_max(level) * LAMBDA_SAFETY
        level.jacobi[...] *= JACOBI_WEIGHT / lam if lam > 0 else 0.0
    return level


def lanczos_lambda_max(alphas: list[float], betas: list[float]) -> float:
    """Largest eigenvalue estimate of a preconditioned operator from the coefficients of ``k``
    CG steps: the top eigenvalue of the Lanczos tridiagonal matrix ``T`` (k, k), with
    ``T_jj = 1/alpha_j + beta_(j-1)/alpha_(j-1)`` and ``T_j,j+1 = sqrt(beta_j)/alpha_j``
    (Saad, Iterative Methods for Sparse Linear Systems, Sec. 6.7.3); 1.0 without steps."""
    k = len(alphas)
    if k == 0:
        return 1.0
    T = np.zeros((k, k))
    for j in range(k):
        T[j, j] = 1.0 / alphas[j] + (betas[j - 1] / alphas[j - 1] if j > 0 else 0.0)
        if j + 1 < k:
            T[j, j + 1] = T[j + 1, j] = np.sqrt(betas[j]) / alphas[j]
    return float(np.linalg.eigvalsh(T)[-1])


def _lambda_max(level: _Level) -> float:
    """Largest eigenvalue of ``D^-1 A`` on a level's unknowns from the Lanczos matrix of a few
    Jacobi-preconditioned CG steps (random start, fixed seed)."""
    rng = np.random.default_rng(0)
    b = level.jacobi.shape[0]
    r = rng.standard_normal((b, level.mask.size, 1)).astype(level.jacobi.dtype)
    r *= level.mask[None, :, None]
    z = level.jacobi * r
    p = z.copy()
    rz = float(np.vdot(r, z))
    alphas: list[float] = []
    betas: list[float] = []
    for _ in range(LANCZOS_STEPS):
        Ap = level.apply(p)
        pAp = float(np.vdot(p, Ap))
        if not pAp > 0 or not rz > 0:
            break
        alpha = rz / pAp
        r -= level.jacobi.dtype.type(alpha) * Ap
        z = level.jacobi * r
        rz_next = float(np.vdot(r, z))
        alphas.append(alpha)
        betas.append(rz_next / rz)
        if rz_next <= 1e-12 * rz:
            break
        p = z + level.jacobi.dtype.type(rz_next / rz) * p
        rz = rz_next
    return lanczos_lambda_max(alphas, betas)


def _coarse_mask(layout: _Layout, diagonal: np.ndarray) -> np.ndarray:
    """Unknown nodes of a coarse level: not on a bounded grid's boundary, not ghosts, with
    stiffness."""
    dims = layout.node_dims
    inner = np.zeros(dims, dtype=bool)
    if layout.periodic:
        inner[:-1, :-1, :-1] = True
    else:
        inner[1:-1, 1:-1, 1:-1] = True
    mask = np.zeros(layout.length)
    mask[: layout.size] = inner.reshape(-1)
    mask[np.all(diagonal <= 0, axis=0)] = 0.0
    return mask


def _sparse_operator(level: _Level, b: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The assembled operator of a coarse level on its unknowns (for the LU), and the padded
    index of each unknown node."""
    layout = level.layout
    nodes = np.flatnonzero(level.mask > 0)
    index = np.full(layout.length, -1, dtype=np.int64)
    index[nodes] = np.arange(nodes.size)
    _, my, mz = layout.node_dims
    nx, ny, nz = layout.shape
    corner = (np.arange(nx)[:, None, None] * my + np.arange(ny)[None, :, None]) * mz
    corner = (corner + np.arange(nz)[None, None, :]).reshape(-1)
    element_nodes = corner[:, None] + layout.offsets[None, :]  # (nel, 8)
    if layout.periodic:
        g = np.stack(np.unravel_index(element_nodes, layout.node_dims), -1)
        g %= np.asarray(layout.shape)
        element_nodes = (g[..., 0] * my + g[..., 1]) * mz + g[..., 2]
    dofs = (b * index[element_nodes][:, :, None] + np.arange(b)).reshape(-1, 8 * b)
    dofs[np.repeat(index[element_nodes] < 0, b, axis=1)] = -1
    values = level.matrix[corner].astype(np.float64)
    rows = np.broadcast_to(dofs[:, :, None], values.shape)
    cols = np.broadcast_to(dofs[:, None, :], values.shape)
    keep = (rows >= 0) & (cols >= 0)
    n = b * nodes.size
    K = sp.coo_matrix((values[keep], (rows[keep], cols[keep])), shape=(n, n)).tocsr()
    return K, nodes


def _factor(A: sp.spmatrix):
    """Sparse LU (symmetric mode, :data:`COARSE_ORDERING`) of a small SPD matrix, with a tiny
    diagonal shift against coarse nodes whose interpolated supports are dependent."""
    A = sp.csc_matrix(A)
    shift = 1e-12 * float(np.abs(A.diagonal()).max()) if A.shape[0] else 0.0
    return splu(
        sp.csc_matrix(A + shift * sp.identity(A.shape[0])),
        permc_spec=COARSE_ORDERING,
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )


def _sparse_coarse(layout: _Layout, mask: np.ndarray, b: int) -> bool:
    """Whether a coarse level of a bounded grid is small and sparse enough for an exact LU
    (:data:`MAX_DIRECT_DOFS` unknowns, at most :data:`SPARSE_COARSE_SHARE` of its grid's)."""
    unknowns = b * int((mask > 0).sum())
    return unknowns <= min(MAX_DIRECT_DOFS, SPARSE_COARSE_SHARE * b * layout.size)


class VoxelMultigrid:
    """One V-cycle of Galerkin geometric multigrid for a :class:`VoxelStiffness` (module
    docstring); call with residuals on the padded layout (b, length, m) (float64) to get
    ``M^-1 R`` in the same layout."""

    def __init__(self, K: VoxelStiffness, dtype=np.float32) -> None:
        self.dtype = dtype
        self.b = b = K.b
        shapes = [K.grid.shape]
        coarsest = PERIODIC_COARSEST_DOFS if K.grid.periodic else COARSEST_DOFS
        while (
            all(n % 2 == 0 and n >= 2 for n in shapes[-1])
            and b * int(np.prod([n + 1 for n in shapes[-1]])) > coarsest
        ):
            shapes.append(tuple(n // 2 for n in shapes[-1]))
        bases = _galerkin_bases(K.element_matrix, len(shapes) - 1)
        self.K = K
        with K.one_blas_thread():
            self.levels = [K.level(dtype)]
        for depth in range(1, len(shapes)):
            layout = _Layout(shapes[depth], K.grid.periodic)
            matrices = _coarse_matrices(K.moduli, bases[depth - 1]).astype(dtype)
            padded = layout.element_field(matrices)
            diagonal = _diagonal(layout, None, padded, b)
            mask = _coarse_mask(layout, diagonal)
            with K.one_blas_thread():
                self.levels.append(_jacobi_level(layout, None, padded, mask, diagonal, dtype))
            if depth < len(shapes) - 1 and not K.grid.periodic and _sparse_coarse(layout, mask, b):
                break  # solve this sparse level exactly instead of coarsening further
        self.lu = None
        if len(self.levels) == 1:  # no coarser grid: LU of the whole (small) system
            if K.n_unknowns <= MAX_DIRECT_DOFS:
                self.lu = _factor(K.assemble())
                self.coarse_nodes, self.pinned = K.slots, 0
        elif b * int((self.levels[-1].mask > 0).sum()) <= MAX_DIRECT_DOFS:
            A, nodes = _sparse_operator(self.levels[-1], b)
            # periodic: the coarse operator keeps the rigid translations; pin one node
            self.pinned = b if K.grid.periodic and nodes.size else 0
            self.lu = _factor(A[self.pinned :, self.pinned :])
            self.coarse_nodes = nodes

    @property
    def sizes(self) -> list[int]:
        """Unknowns per level, finest first."""
        return [self.b * int((level.mask > 0).sum()) for level in self.levels]

    def _coarsest(self, r: np.ndarray) -> np.ndarray:
        level = self.levels[-1]
        if self.lu is None:
            z = level.smooth(r)
            for _ in range(COARSE_SWEEPS - 1):
                z += level.smooth(r - level.apply(z))
            return z
        b, m = self.b, r.shape[-1]
        rhs = r[:, self.coarse_nodes].transpose(1, 0, 2).reshape(-1, m)[self.pinned :]
        solution = np.zeros((self.coarse_nodes.size * b, m))
        solution[self.pinned :] = self.lu.solve(rhs.astype(np.float64))
        z = np.zeros_like(r)
        z[:, self.coarse_nodes] = solution.reshape(-1, b, m).transpose(1, 0, 2)
        return z

    def _cycle(self, depth: int, r: np.ndarray) -> np.ndarray:
        if depth == len(self.levels) - 1:
            return self._coarsest(r)
        level, coarse = self.levels[depth], self.levels[depth + 1]
        m = r.shape[-1]
        sweeps = 1 if depth == 0 else COARSE_LEVEL_SWEEPS
        z = level.smooth(r)
        for _ in range(sweeps - 1):
            z += level.smooth(r - level.apply(z))
        for _ in range(1 if depth == 0 else CYCLE_INDEX):
            residual = r - level.apply(z)
            rc = _restrict(level.layout, coarse.layout, residual, coarse.wide("mask", m))
            correction = self._cycle(depth + 1, rc)
            z += _prolong(level.layout, coarse.layout, correction, level.wide("mask", m))
        for _ in range(sweeps):
            z += level.smooth(r - level.apply(z))
        return z

    def __call__(self, r: np.ndarray) -> np.ndarray:
        with self.K.one_blas_thread():
            out = self._cycle(0, r.astype(self.dtype, copy=False))
        return out.astype(r.dtype, copy=False)


def _column_dots(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per right-hand side ``sum x * y`` (m,) of fields (b, length, m), float64 (a blocked
    GEMM keeps float32 sums accurate)."""
    m = x.shape[-1]
    return np.diagonal(x.reshape(-1, m).T @ y.reshape(-1, m)).astype(np.float64)


def padded_pcg(
    apply: Callable[[np.ndarray], np.ndarray],
    B: np.ndarray,
    precondition: Callable[[np.ndarray], np.ndarray],
    tolerance: np.ndarray,
    maxiter: int,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Preconditioned CG on every right-hand side of padded fields ``B`` (b, length, m) at
    once, in B's dtype; column ``j`` stops once ``||r_j|| <= tolerance[j]``.

    A converged column leaves the block: its solution is stored and the products of the later
    steps (operator and preconditioner) run on the remaining columns only, so the cost is the
    sum of the columns' iterations rather than ``m`` times the largest (six voxel load cases
    of a thin spinodoid, 64^3: iterations 23 to 58, 248 column steps instead of 348).

    Returns ``(X, iterations (m,), converged)``.
    """
    m = B.shape[-1]
    X = np.zeros_like(B)
    iterations = np.zeros(m, dtype=np.int64)
    columns = np.flatnonzero(np.sqrt(_column_dots(B, B)) > tolerance)
    if columns.size == 0:
        return X, iterations, True
    R = np.ascontiguousarray(B[..., columns])
    Xa = np.zeros_like(R)
    Z = precondition(R)
    P = Z.copy()
    rz = _column_dots(R, Z)
    for iteration in range(1, maxiter + 1):
        AP = apply(P)
        pap = _column_dots(P, AP)
        alpha = np.where(pap > 0, rz / np.where(pap > 0, pap, 1.0), 0.0)
        step = alpha.astype(B.dtype)
        Xa += step * P
        R -= step * AP
        done = np.sqrt(_column_dots(R, R)) <= tolerance[columns]
        if done.any():
            X[..., columns[done]] = Xa[..., done]
            iterations[columns[done]] = iteration
            keep = ~done
            columns, rz = columns[keep], rz[keep]
            Xa, R, P = (np.ascontiguousarray(v[..., keep]) for v in (Xa, R, P))
            if columns.size == 0:
                return X, iterations, True
        Z = precondition(R)
        rz_new = _column_dots(R, Z)
        beta = rz_new / np.where(rz > 0, rz, 1.0)
        P *= beta.astype(B.dtype)
        P += Z
        rz = rz_new
    X[..., columns] = Xa
    iterations[columns] = maxiter
    return X, iterations, False
