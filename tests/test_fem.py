"""The shared hexahedral FE kernels: element, grid numbering, assembly, solvers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from metainv.errors import MetainvError
from metainv.fem import (
    BINARY_NODES,
    MATRIX_FREE_SOLVERS,
    SOLVERS,
    VTK_NODES,
    HexGrid,
    Unknowns,
    affine_displacement,
    assemble_matrix,
    assemble_node_vectors,
    assemble_stencil,
    assemble_vector,
    assembly_plan,
    element_stiffness,
    element_strain_loads,
    gradient_integral,
    hex8_mean_strain,
    hex8_stiffness,
    make_solver,
    mean_strain_operator,
    rigid_body_modes,
    scalar_stiffness,
    shape_functions,
    shifted_moduli,
)
from metainv.tensors import isotropic_stiffness

NU = 0.3
#: Position of each VTK-ordered local node in the binary order.
VTK_TO_BINARY = VTK_NODES[:, 0] + 2 * VTK_NODES[:, 1] + 4 * VTK_NODES[:, 2]


def full_matrix(grid: HexGrid, k_e: np.ndarray, b: int) -> np.ndarray:
    """Reference assembly by an explicit scatter (k_e (nel, 8b, 8b), VTK local order)."""
    dofs = (b * grid.element_nodes[:, :, None] + np.arange(b)).reshape(grid.n_elements, -1)
    full = np.zeros((b * grid.n_nodes,) * 2)
    np.add.at(full, (dofs[:, :, None], dofs[:, None, :]), k_e)
    return full


# ---------------------------------------------------------------------------------- element


def test_element_rigid_modes_and_mean_strain():
    h = 0.25
    Ke = hex8_stiffness(NU, h)
    np.testing.assert_allclose(Ke, Ke.T, atol=1e-14)
    eigenvalues = np.linalg.eigvalsh(Ke)
    assert np.sum(np.abs(eigenvalues) < 1e-10 * eigenvalues.max()) == 6  # 3 translations, 3 rot.
    strains = np.random.default_rng(1).standard_normal((4, 6))
    u = affine_displacement(strains, h, BINARY_NODES)
    np.testing.assert_allclose(u @ hex8_mean_strain(NU, h).T, strains, atol=1e-12)
    # element energy of a homogeneous strain: h^3 eps^T D eps
    D = isotropic_stiffness(1.0, NU)
    np.testing.assert_allclose(
        np.einsum("mi,ij,mj->m", u, Ke, u), h**3 * np.einsum("mi,ij,mj->m", strains, D, strains)
    )


def test_element_stiffness_rigid_modes_and_symmetry():
    k = element_stiffness(isotropic_stiffness(1.0, 0.3)[None])[0]
    np.testing.assert_allclose(k, k.T, atol=1e-14)
    eigenvalues = np.linalg.eigvalsh(k)
    assert np.all(np.abs(eigenvalues[:6]) < 1e-12)
    assert eigenvalues[6] > 1e-2
    # the rigid-body modes of the element's nodes span its null space
    modes = rigid_body_modes(VTK_NODES.astype(float))
    np.testing.assert_allclose(k @ modes, 0.0, atol=1e-13)


def test_mean_strain_operator_reproduces_uniform_strain():
    strain = np.array([0.1, -0.2, 0.3, 0.05, -0.04, 0.02])
    # u = eps x with engineering shears: u_i = sum_j eps_ij x_j
    eps = np.array(
        [
            [strain[0], strain[5] / 2, strain[4] / 2],
            [strain[5] / 2, strain[1], strain[3] / 2],
            [strain[4] / 2, strain[3] / 2, strain[2]],
        ]
    )
    u = (VTK_NODES @ eps.T).ravel()
    np.testing.assert_allclose(mean_strain_operator() @ u, strain, atol=1e-14)
    np.testing.assert_allclose(affine_displacement(strain), u, atol=1e-15)


def test_node_orders_are_permutations_of_one_element():
    spacing = np.array([0.3, 0.2, 0.5])
    D = isotropic_stiffness(2.0, 0.25)
    dofs = (3 * VTK_TO_BINARY[:, None] + np.arange(3)).ravel()
    k_vtk = element_stiffness(D, spacing, VTK_NODES)
    k_bin = element_stiffness(D, spacing, BINARY_NODES)
    np.testing.assert_array_equal(k_vtk, k_bin[np.ix_(dofs, dofs)])
    np.testing.assert_array_equal(
        mean_strain_operator(spacing), mean_strain_operator(spacing, BINARY_NODES)[:, dofs]
    )
    L_vtk, L_bin = scalar_stiffness(spacing), scalar_stiffness(spacing, BINARY_NODES)
    np.testing.assert_array_equal(L_vtk, L_bin[np.ix_(VTK_TO_BINARY, VTK_TO_BINARY)])
    # strain loads: the nodal forces of eps under D are K u(eps) for u = eps x
    strain = np.array([0.01, -0.02, 0.0, 0.005, 0.0, 0.01])
    f = element_strain_loads(D[None], strain, spacing)[0]
    np.testing.assert_allclose(f, k_vtk @ affine_displacement(strain, spacing), atol=1e-14)


def test_scalar_element_integrates_linear_fields_exactly():
    spacing = np.array([0.5, 1.5, 2.0])
    x = spacing * VTK_NODES  # nodal positions
    volume = np.prod(spacing)
    # the energy of phi = g . x is V |g|^2; the gradient integral maps nodal values to V grad phi
    g = np.array([0.3, -1.0, 2.0])
    phi = x @ g
    assert phi @ scalar_stiffness(spacing) @ phi == pytest.approx(volume * g @ g, rel=1e-13)
    np.testing.assert_allclose(gradient_integral(spacing).T @ np.ones(8), 0.0, atol=1e-14)
    values, gradients = shape_functions(np.array([[0.2, 0.7, 0.4]]))
    np.testing.assert_allclose(values.sum(), 1.0)
    np.testing.assert_allclose(values @ VTK_NODES, [[0.2, 0.7, 0.4]], atol=1e-15)
    np.testing.assert_allclose(gradients[0].T @ VTK_NODES, np.eye(3), atol=1e-15)


# ------------------------------------------------------------------------------------- grid


@pytest.mark.parametrize("order", ["C", "F"])
def test_grid_numbering(order):
    grid = HexGrid((3, 2, 4), spacing=(0.5, 1.0, 2.0), origin=(1.0, 0.0, -1.0), order=order)
    ijk = grid.node_ijk
    np.testing.assert_array_equal(
        grid.node_index(ijk[:, 0], ijk[:, 1], ijk[:, 2]), np.arange(36 + 24)
    )
    np.testing.assert_allclose(grid.node_coordinates, grid.origin + ijk * grid.spacing)
    e = grid.element_ijk
    np.testing.assert_array_equal(grid.element_index(e[:, 0], e[:, 1], e[:, 2]), np.arange(24))
    np.testing.assert_array_equal(grid.node_ijk[grid.element_nodes[:, 0]], e)
    corners = grid.node_ijk[grid.element_nodes] - e[:, None]
    np.testing.assert_array_equal(corners, np.broadcast_to(VTK_NODES, corners.shape))
    fast = 2 if order == "C" else 0
    assert np.all(np.diff(ijk[: grid.node_shape[fast], fast]) == 1)
    element, xi = grid.locate(grid.element_centres)
    np.testing.assert_array_equal(element, e)
    np.testing.assert_allclose(xi, 0.5)


def test_periodic_grid_wraps_and_bad_grids_fail():
    grid = HexGrid((2, 3, 2), periodic=True)
    assert grid.node_shape == (2, 3, 2) and grid.n_nodes == grid.n_elements
    last = grid.element_nodes[-1]
    np.testing.assert_array_equal(grid.node_ijk[last[6]], [0, 0, 0])  # corner (2, 3, 2) wraps
    with pytest.raises(MetainvError, match="at least one element"):
        HexGrid((3, 0, 2))
    with pytest.raises(MetainvError, match="grid order"):
        HexGrid((1, 1, 1), order="K")


# --------------------------------------------------------------------------------- assembly


def test_scatter_plan_equals_direct_sum():
    grid = HexGrid((3, 2, 2), order="F")
    rng = np.random.default_rng(0)
    basis = np.stack([isotropic_stiffness(1.0, 0.3), isotropic_stiffness(1.0, -0.2)])
    g = rng.uniform(0.1, 1.0, (grid.n_elements, 2))
    plan = assembly_plan(grid, np.arange(12))
    K = assemble_matrix(plan, g, element_stiffness(basis)).toarray()
    k_e = np.stack([element_stiffness(d) for d in np.einsum("ek,kij->eij", g, basis)])
    free = plan.free_dofs
    np.testing.assert_allclose(K, full_matrix(grid, k_e, 3)[np.ix_(free, free)], rtol=1e-12)


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("scalar", [False, True])
def test_stencil_equals_scatter(periodic, scalar):
    grid = HexGrid(
        (3, 4, 2) if not periodic else (3, 4, 3), spacing=(0.2, 0.3, 0.5), periodic=periodic
    )
    rng = np.random.default_rng(1)
    moduli = rng.uniform(0.5, 2.0, grid.n_elements) * (rng.uniform(size=grid.n_elements) < 0.8)
    b = 1 if scalar else 3
    if scalar:
        k_bin, k_vtk = scalar_stiffness(grid.spacing, BINARY_NODES), scalar_stiffness(grid.spacing)
    else:
        D = isotropic_stiffness(1.0, NU)
        k_bin, k_vtk = (element_stiffness(D, grid.spacing, n) for n in (BINARY_NODES, VTK_NODES))
    shifted = shifted_moduli(grid, moduli)
    free = np.arange(grid.n_nodes)
    K = assemble_stencil(grid, shifted, k_bin, free).toarray()
    reference = full_matrix(grid, moduli[:, None, None] * k_vtk, b)
    np.testing.assert_allclose(K, reference, rtol=1e-12, atol=1e-14 * np.abs(reference).max())
    # node vectors: sum_e s_e A_e^T g for one g, against the per-element scatter
    g = rng.standard_normal((8 * b, 2))
    perm = (b * VTK_TO_BINARY[:, None] + np.arange(b)).ravel()
    nodal = assemble_node_vectors(shifted, g).reshape(-1, 2)
    per_element = moduli[:, None, None] * g[perm][None]
    np.testing.assert_allclose(nodal, assemble_vector(grid, per_element), atol=1e-13)


# ---------------------------------------------------------------------------------- solvers


def poisson_system(shape=(8, 8, 8)):
    grid = HexGrid(shape, spacing=0.1)
    rng = np.random.default_rng(3)
    weights = np.where(rng.uniform(size=grid.n_elements) < 0.5, 1.0, 1e-3)
    free = np.arange(grid.n_nodes) - 1  # node 0 pinned
    K = assemble_stencil(
        grid, shifted_moduli(grid, weights), scalar_stiffness(grid.spacing, BINARY_NODES), free
    ).tocsr()
    F = rng.standard_normal((grid.n_nodes - 1, 3))
    return grid, K, F


def elastic_system(shape=(8, 4, 4)):
    grid = HexGrid(shape, order="F")
    rng = np.random.default_rng(4)
    plan = assembly_plan(grid, (3 * grid.nodes_where(i=0)[:, None] + np.arange(3)).ravel())
    moduli = np.where(rng.uniform(size=grid.n_elements) < 0.5, 1.0, 1e-3)[:, None]
    K = assemble_matrix(plan, moduli, element_stiffness(isotropic_stiffness(1.0, NU))[None])
    F = rng.standard_normal((plan.n_free, 2))
    return Unknowns(grid, plan.free_dofs), K, F


@pytest.mark.parametrize("name", [s for s in SOLVERS if s not in MATRIX_FREE_SOLVERS])
def test_solvers_agree_on_scalar_and_elastic_systems(name, monkeypatch):
    monkeypatch.setattr("metainv.fem.solvers.COARSEST_DOFS", 100)
    monkeypatch.setattr("metainv.fem.solvers.MAX_COARSE", 60)
    grid, K, F = poisson_system()
    scalar = Unknowns(grid, np.arange(1, grid.n_nodes), dofs_per_node=1)
    elastic, Ke, Fe = elastic_system()
    for unknowns, A, B in ((scalar, K, F), (elastic, Ke, Fe)):
        U, stats = make_solver(name, unknowns, rtol=1e-10, maxiter=2000, strict=True)(A, B)
        exact = sp.linalg.spsolve(A.tocsc(), B)
        np.testing.assert_allclose(U, exact, rtol=0, atol=1e-7 * np.abs(exact).max())
        assert stats.max_relative_residual <= 1e-9
        # one right-hand side as a vector
        u, _ = make_solver(name, unknowns, rtol=1e-10, maxiter=2000)(A, B[:, 0])
        assert u.shape == (B.shape[0],)


def test_solver_registry_rejects_unknown_names_and_warm_starts():
    unknowns, K, F = elastic_system()
    with pytest.raises(MetainvError, match="unknown solver"):
        make_solver("gmres", unknowns)
    solve = make_solver("amg", unknowns, rtol=1e-8, warm_start=True)
    _, first = solve(K, F)
    _, again = solve(K, F)
    assert max(again.iterations) == 0 < max(first.iterations)
    U, stats = solve(K, np.zeros_like(F))
    assert not U.any() and stats.max_relative_residual == 0.0
