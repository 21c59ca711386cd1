"""The matrix-free voxel stiffness and its geometric-multigrid solver ("gmg"): the operator
against the assembled matrix, the Galerkin coarse grids against P^T K P, the V-cycle's
symmetry, and homogenization against the sparse solvers (affine and periodic, void removed
and ersatz, random and spinodoid fields)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from metainv.errors import MetainvError
from metainv.fem import (
    BINARY_NODES,
    HexGrid,
    Unknowns,
    VoxelMultigrid,
    VoxelStiffness,
    assemble_stencil,
    hex8_stiffness,
    make_solver,
    scalar_stiffness,
    shifted_moduli,
)
from metainv.fem.matfree import _coarse_matrices, _galerkin_bases, _Layout, _prolong, _restrict
from metainv.fem.solvers import _prolongation
from metainv.spinodoid import SpinodoidDesign, solid_mask
from metainv.tensors import isotropic_stiffness
from metainv.voxel import homogenize_voxels, homogenize_voxels_detailed

NU = 0.3


@pytest.fixture(autouse=True)
def small_coarsest_grid(monkeypatch):
    """Coarsen the small test grids too (16^3 -> 8^3), so the multigrid levels are used."""
    monkeypatch.setattr("metainv.fem.matfree.COARSEST_DOFS", 3000)
    monkeypatch.setattr("metainv.fem.matfree.PERIODIC_COARSEST_DOFS", 3000)


def blobs(n: int, fraction: float, seed: int = 0) -> np.ndarray:
    """A smooth random two-phase microstructure (periodic low-pass noise thresholded)."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n) * n
    K2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    noise = np.fft.ifftn(np.fft.fftn(rng.standard_normal((n, n, n))) * np.exp(-K2 / 4)).real
    return noise <= np.quantile(noise, fraction)


def random_model(shape, periodic, scalar, seed=0):
    """A grid with random moduli (some zero) and a random set of fixed nodes."""
    grid = HexGrid(shape, spacing=0.25, periodic=periodic)
    rng = np.random.default_rng(seed)
    moduli = rng.uniform(0.5, 2.0, grid.shape) * (rng.uniform(size=grid.shape) < 0.7)
    Ke = scalar_stiffness(0.25, BINARY_NODES) if scalar else hex8_stiffness(NU, 0.25)
    shifted = shifted_moduli(grid, moduli)
    unknown = (shifted.max(axis=0) > 0) & (rng.uniform(size=grid.n_nodes) < 0.8)
    free = np.full(grid.n_nodes, -1)
    free[unknown] = np.arange(unknown.sum())
    return grid, moduli, Ke, free, assemble_stencil(grid, shifted, Ke, free)


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("scalar", [False, True])
def test_matrix_free_product_equals_the_assembled_matrix(periodic, scalar):
    grid, moduli, Ke, free, A = random_model((4, 6, 5), periodic, scalar)
    K = VoxelStiffness(grid, moduli, Ke, free)
    assert K.shape == A.shape
    X = np.random.default_rng(1).standard_normal((A.shape[0], 3))
    np.testing.assert_allclose(K @ X, A @ X, rtol=0, atol=1e-13 * np.abs(A @ X).max())
    np.testing.assert_allclose(K @ X[:, 0], A @ X[:, 0], atol=1e-13 * np.abs(A @ X).max())
    np.testing.assert_allclose(K.diagonal(), A.diagonal(), rtol=1e-14)
    np.testing.assert_allclose(K.assemble().toarray(), A.toarray(), rtol=0, atol=0)


def test_galerkin_coarse_elements_equal_the_triple_product():
    """Coarse element matrices from the fixed bases equal P^T K P (two levels, bounded)."""
    grid = HexGrid((4, 4, 8), spacing=0.25)
    rng = np.random.default_rng(2)
    moduli = rng.uniform(0.0, 1.0, grid.shape) * (rng.uniform(size=grid.shape) < 0.6)
    Ke = hex8_stiffness(NU, 0.25)
    everything = np.arange(grid.n_nodes)
    K = assemble_stencil(grid, shifted_moduli(grid, moduli), Ke, everything).tocsr()
    bases = _galerkin_bases(Ke, 2)
    fine = grid
    for level in (1, 2):
        P, coarse = _prolongation(fine, 3)
        K = (P.T @ K @ P).tocsr()
        matrices = _coarse_matrices(moduli, bases[level - 1])
        # assemble the coarse element matrices with the same stencil ordering
        reference = np.zeros((3 * coarse.n_nodes,) * 2)
        corner = coarse.element_ijk
        nodes = coarse.element_nodes_at(corner, BINARY_NODES)
        dofs = (3 * nodes[:, :, None] + np.arange(3)).reshape(-1, 24)
        flat = matrices.reshape(-1, 24, 24)
        np.add.at(reference, (dofs[:, :, None], dofs[:, None, :]), flat)
        np.testing.assert_allclose(reference, K.toarray(), atol=1e-12 * np.abs(reference).max())
        fine = coarse


@pytest.mark.parametrize("periodic", [False, True])
def test_restriction_is_the_transpose_of_prolongation(periodic):
    fine, coarse = _Layout((4, 6, 8), periodic), _Layout((2, 3, 4), periodic)
    rng = np.random.default_rng(3)

    def mask(layout):
        grid = HexGrid(layout.shape, periodic=periodic)
        out = np.zeros(layout.length)
        out[layout.nodes(grid)] = rng.uniform(size=grid.n_nodes) < 0.9
        return out

    mf, mc = mask(fine)[None, :, None], mask(coarse)[None, :, None]
    xc = rng.standard_normal((3, coarse.length, 2)) * mc
    xf = rng.standard_normal((3, fine.length, 2)) * mf
    left = np.vdot(_prolong(fine, coarse, xc.copy(), mf), xf)
    right = np.vdot(xc, _restrict(fine, coarse, xf, mc))
    assert abs(left - right) <= 1e-12 * abs(left)


@pytest.mark.parametrize("periodic", [False, True])
def test_v_cycle_is_symmetric_positive_definite(periodic):
    n = 16
    grid = HexGrid((n, n, n), spacing=1 / n, periodic=periodic)
    moduli = np.where(blobs(n, 0.5, seed=5), 1.0, 1e-6)
    free = np.arange(grid.n_nodes) - 1 if periodic else None
    if not periodic:
        ijk = grid.node_ijk
        inner = np.all((ijk > 0) & (ijk < n), axis=1)
        free = np.full(grid.n_nodes, -1)
        free[inner] = np.arange(inner.sum())
    K = VoxelStiffness(grid, moduli, hex8_stiffness(NU, 1 / n), free)
    M = VoxelMultigrid(K, dtype=np.float64)
    assert len(M.levels) >= 2 and M.lu is not None
    rng = np.random.default_rng(6)
    R = K.embed(rng.standard_normal((K.n_unknowns, 2)))
    Z = M(R)
    assert abs(np.vdot(R[..., 0], Z[..., 1]) - np.vdot(R[..., 1], Z[..., 0])) <= 1e-9 * abs(
        np.vdot(R[..., 0], Z[..., 0])
    )
    assert np.vdot(R[..., 0], Z[..., 0]) > 0 and np.vdot(R[..., 1], Z[..., 1]) > 0


@pytest.mark.parametrize("boundary", ["affine", "periodic"])
@pytest.mark.parametrize("void", [1e-6, None])
def test_gmg_agrees_with_the_sparse_solvers(boundary, void):
    solid = blobs(16, 0.5, seed=1)
    direct = homogenize_voxels(solid, boundary=boundary, void_modulus_ratio=void, solver="amg",
                               rtol=1e-10)  # fmt: skip
    fast = homogenize_voxels_detailed(
        solid, boundary=boundary, void_modulus_ratio=void, solver="gmg", rtol=1e-10
    )
    np.testing.assert_allclose(fast.C, direct, rtol=0, atol=1e-9 * np.abs(direct).max())
    assert fast.stats.max_relative_residual <= 1e-10
    # the default tolerance: the energy form keeps C to a few 1e-6
    loose = homogenize_voxels(solid, boundary=boundary, void_modulus_ratio=void, solver="gmg")
    assert np.abs(loose - direct).max() <= 2e-5 * np.abs(direct).max()


@pytest.mark.parametrize("boundary", ["affine", "periodic"])
def test_gmg_agrees_on_a_spinodoid(boundary):
    solid = solid_mask(SpinodoidDesign(0.4, [20, 70, 40], seed=2), 16)
    reference = homogenize_voxels(solid, boundary=boundary, void_modulus_ratio=None, rtol=1e-8,
                                  solver="amg")  # fmt: skip
    fast = homogenize_voxels(
        solid, boundary=boundary, void_modulus_ratio=None, solver="gmg", rtol=1e-8
    )
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-8 * np.abs(reference).max())


@pytest.mark.parametrize("boundary", ["affine", "periodic"])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_solid_block_is_the_base_material(boundary, n):
    C = homogenize_voxels(
        np.ones((n, n, n), dtype=bool), youngs_modulus=2.5, boundary=boundary, solver="gmg"
    )
    np.testing.assert_allclose(C, isotropic_stiffness(2.5, NU), rtol=0, atol=1e-10)


def test_a_sparse_coarse_level_is_solved_exactly():
    """A thin field's hierarchy stops at its first sparse coarse level (an exact LU there)
    while a solid one coarsens on; both solve the same system as the sparse solvers."""
    n = 32
    grid = HexGrid((n, n, n), spacing=1 / n)
    Ke = hex8_stiffness(NU, 1 / n)
    depths = {}
    for name, rho in (("thin", 0.15), ("solid", 1.0)):
        solid = solid_mask(SpinodoidDesign(rho, [30, 30, 0], seed=1), n) if rho < 1 else None
        moduli = np.ones(grid.shape) if solid is None else solid.astype(float)
        shifted = shifted_moduli(grid, moduli)
        inner = np.zeros((n + 1,) * 3, dtype=bool)
        inner[1:-1, 1:-1, 1:-1] = True
        active = inner.reshape(-1) & (shifted.max(axis=0) > 0)
        free = np.where(active, np.cumsum(active) - 1, -1)
        M = VoxelMultigrid(VoxelStiffness(grid, moduli, Ke, free))
        depths[name] = len(M.levels)
        assert M.lu is not None
    assert depths == {"thin": 2, "solid": 3}  # 32 -> 16 (LU) against 32 -> 16 -> 8 (LU)
    thin = solid_mask(SpinodoidDesign(0.15, [30, 30, 0], seed=1), n)
    reference = homogenize_voxels(thin, void_modulus_ratio=None, solver="amg", rtol=1e-9)
    fast = homogenize_voxels(thin, void_modulus_ratio=None, solver="gmg", rtol=1e-9)
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-8 * np.abs(reference).max())


def test_coarsest_grid_too_large_for_lu_falls_back_to_sweeps(monkeypatch):
    monkeypatch.setattr("metainv.fem.matfree.MAX_DIRECT_DOFS", 10)
    solid = blobs(10, 0.6, seed=7)
    reference = homogenize_voxels(solid, void_modulus_ratio=1e-3, solver="amg", rtol=1e-9)
    fast = homogenize_voxels(solid, void_modulus_ratio=1e-3, solver="gmg", rtol=1e-9)
    np.testing.assert_allclose(fast, reference, atol=1e-8 * np.abs(reference).max())


def test_gmg_needs_the_matrix_free_operator_and_warm_starts():
    grid, moduli, Ke, free, A = random_model((4, 4, 4), False, False)
    unknowns = Unknowns(grid, (3 * np.flatnonzero(free >= 0)[:, None] + np.arange(3)).ravel())
    solve = make_solver("gmg", unknowns, rtol=1e-9, warm_start=True)
    F = np.random.default_rng(8).standard_normal((A.shape[0], 2))
    with pytest.raises(MetainvError, match="VoxelStiffness"):
        solve(sp.csr_matrix(A), F)
    K = VoxelStiffness(grid, moduli, Ke, free)
    U, first = solve(K, F)
    np.testing.assert_allclose(A @ U, F, atol=1e-8 * np.abs(F).max())
    _, again = solve(K, F)
    assert max(again.iterations) == 0 < max(first.iterations)
    U0, stats = solve(K, np.zeros_like(F))
    assert not U0.any() and stats.max_relative_residual == 0.0
