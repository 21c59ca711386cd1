"""Voxel FE homogenization: exact solutions, bounds, symmetry, solver agreement, void handling."""

from __future__ import annotations

import numpy as np
import pytest

from metainv.errors import MetainvError
from metainv.tensors import check_stiffness, isotropic_stiffness, rotate_stiffness
from metainv.voxel import (
    homogenize_voxels,
    homogenize_voxels_detailed,
    keep_held_voxels,
    voxel_components,
)

NU = 0.3
TIGHT = 1e-10


def blobs(n: int, fraction: float, seed: int = 0) -> np.ndarray:
    """A smooth random two-phase microstructure (periodic low-pass noise thresholded)."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n) * n
    K2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    noise = np.fft.ifftn(np.fft.fftn(rng.standard_normal((n, n, n))) * np.exp(-K2 / 4)).real
    return noise <= np.quantile(noise, fraction)


def laminate_exact(phases: list[np.ndarray], fractions: list[float]) -> np.ndarray:
    """Exact stiffness of a laminate with layers normal to x1 (Backus averaging).

    Continuous across the interfaces: the tractions sigma_11, sigma_13, sigma_12 (Voigt t =
    0, 4, 5) and the in-plane strains eps_22, eps_33, 2 eps_23 (p = 1, 2, 3). With <.> the
    volume average: C_tt = <C_tt^-1>^-1, C_tp = C_tt <C_tt^-1 C_tp>,
    C_pp = <C_pp - C_pt C_tt^-1 C_tp> + <C_pt C_tt^-1> C_tt <C_tt^-1 C_tp>.
    """
    t, p = [0, 4, 5], [1, 2, 3]

    def avg(f):
        return sum(w * f(C) for C, w in zip(phases, fractions, strict=True))

    inv_tt = [np.linalg.inv(C[np.ix_(t, t)]) for C in phases]
    lookup = {id(C): inv for C, inv in zip(phases, inv_tt, strict=True)}
    Ctt = np.linalg.inv(avg(lambda C: lookup[id(C)]))
    a = avg(lambda C: lookup[id(C)] @ C[np.ix_(t, p)])
    b = avg(lambda C: C[np.ix_(p, t)] @ lookup[id(C)])
    Cpp = avg(lambda C: C[np.ix_(p, p)] - C[np.ix_(p, t)] @ lookup[id(C)] @ C[np.ix_(t, p)])
    Cpp = Cpp + b @ Ctt @ a
    out = np.zeros((6, 6))
    out[np.ix_(t, t)] = Ctt
    out[np.ix_(t, p)] = Ctt @ a
    out[np.ix_(p, t)] = (Ctt @ a).T
    out[np.ix_(p, p)] = Cpp
    return out


def loewner_psd(M: np.ndarray, tol: float = 1e-9) -> bool:
    return bool(np.linalg.eigvalsh(0.5 * (M + M.T)).min() >= -tol * np.abs(M).max())


# ----------------------------------------------------------------------------------------------
# exact solutions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", ["affine", "periodic"])
@pytest.mark.parametrize("void", [1e-6, None])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_full_solid_is_the_base_material(boundary, void, n):
    C = homogenize_voxels(
        np.ones((n, n, n), dtype=bool),
        youngs_modulus=2.5,
        poisson_ratio=NU,
        boundary=boundary,
        void_modulus_ratio=void,
    )
    np.testing.assert_allclose(C, isotropic_stiffness(2.5, NU), rtol=0, atol=1e-10)


@pytest.mark.parametrize("solver", ["amg", "direct"])
@pytest.mark.parametrize("thickness", [3, 6])
def test_periodic_laminate_is_exact(solver, thickness):
    """Two real phases (E = 1 and 0.2, same nu), layers normal to x1: trilinear elements
    represent the exact piecewise-affine solution, so periodic BCs give the closed form."""
    n, ratio = 10, 0.2
    solid = np.zeros((n, n, n), dtype=bool)
    solid[:thickness] = True
    C = homogenize_voxels(
        solid, boundary="periodic", void_modulus_ratio=ratio, solver=solver, rtol=TIGHT
    )
    phases = [isotropic_stiffness(1.0, NU), isotropic_stiffness(ratio, NU)]
    exact = laminate_exact(phases, [thickness / n, 1 - thickness / n])
    np.testing.assert_allclose(C, exact, rtol=0, atol=1e-9)
    # the through-thickness modulus is the Reuss-type (harmonic) mean in the constrained form
    # and the in-plane one lies between the Reuss and Voigt means
    voigt = sum(w * P for P, w in zip(phases, [thickness / n, 1 - thickness / n], strict=True))
    assert C[0, 0] < C[1, 1] < voigt[1, 1]


def test_laminate_orientation_permutes_the_stiffness():
    """Layers normal to x2 (axes permuted) give the permuted stiffness (a rotation by 120 deg
    about (1, 1, 1) maps x1 -> x2 -> x3 -> x1)."""
    n = 8
    solid = np.zeros((n, n, n), dtype=bool)
    solid[:3] = True
    C1 = homogenize_voxels(solid, boundary="periodic", void_modulus_ratio=0.1, rtol=TIGHT)
    moved = np.transpose(solid, (2, 0, 1))  # moved[i, j, k] = solid[j, k, i]: layers normal to x2
    C2 = homogenize_voxels(moved, boundary="periodic", void_modulus_ratio=0.1, rtol=TIGHT)
    R = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # e1 -> e2 -> e3 -> e1
    np.testing.assert_allclose(C2, rotate_stiffness(C1, R), atol=1e-9)


def test_affine_is_stiffer_than_periodic_and_within_voigt_reuss():
    n, ratio = 8, 0.2
    solid = np.zeros((n, n, n), dtype=bool)
    solid[:4] = True
    affine = homogenize_voxels(solid, boundary="affine", void_modulus_ratio=ratio, rtol=TIGHT)
    periodic = homogenize_voxels(solid, boundary="periodic", void_modulus_ratio=ratio, rtol=TIGHT)
    phases = [isotropic_stiffness(1.0, NU), isotropic_stiffness(ratio, NU)]
    voigt = 0.5 * (phases[0] + phases[1])
    reuss = np.linalg.inv(0.5 * (np.linalg.inv(phases[0]) + np.linalg.inv(phases[1])))
    assert loewner_psd(affine - periodic)
    assert not np.allclose(affine, periodic)
    assert loewner_psd(voigt - affine)
    assert loewner_psd(periodic - reuss)


# ----------------------------------------------------------------------------------------------
# general structures
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", ["affine", "periodic"])
@pytest.mark.parametrize("void", [1e-4, None])
def test_symmetric_positive_definite_and_solvers_agree(boundary, void):
    solid = blobs(10, 0.55)
    amg = homogenize_voxels_detailed(solid, boundary=boundary, void_modulus_ratio=void, rtol=1e-9)
    direct = homogenize_voxels(solid, boundary=boundary, void_modulus_ratio=void, solver="direct")
    np.testing.assert_allclose(amg.C, amg.C.T, atol=0)
    assert check_stiffness(amg.C, solid=(1.0, NU), max_relative_density=1.0).admissible
    np.testing.assert_allclose(amg.C, direct, rtol=0, atol=1e-9 * np.abs(direct).max())
    assert amg.stats.max_relative_residual <= 1e-9
    assert np.all(
        np.diag(amg.C) < np.diag(isotropic_stiffness(1.0, NU)) * amg.solid_fraction + 1e-3
    )


def test_default_tolerance_is_accurate():
    """The energy form is quadratic in the solver error: the default CG tolerance (1e-3) gives
    C to a few 1e-6 relative."""
    solid = blobs(16, 0.5, seed=3)
    loose = homogenize_voxels(solid, void_modulus_ratio=None)
    tight = homogenize_voxels(solid, void_modulus_ratio=None, rtol=1e-10)
    assert np.abs(loose - tight).max() <= 1e-5 * np.abs(tight).max()


def test_ersatz_modulus_converges_to_void_removal():
    solid = blobs(10, 0.5, seed=4)
    removed = homogenize_voxels(solid, void_modulus_ratio=None, rtol=1e-8)
    ersatz = homogenize_voxels(solid, void_modulus_ratio=1e-6, rtol=1e-8)
    assert np.abs(ersatz - removed).max() <= 1e-4 * np.abs(removed).max()
    assert loewner_psd(ersatz - removed, tol=1e-12)  # extra (soft) material only adds stiffness


def test_scaling_with_youngs_modulus():
    solid = blobs(8, 0.6, seed=5)
    C1 = homogenize_voxels(solid, youngs_modulus=1.0, rtol=TIGHT)
    C3 = homogenize_voxels(solid, youngs_modulus=3.0, rtol=TIGHT)
    np.testing.assert_allclose(C3, 3.0 * C1, rtol=1e-8, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# void removal and islands
# ----------------------------------------------------------------------------------------------


def test_components_face_connectivity_and_periodic_wrap():
    solid = np.zeros((6, 6, 6), dtype=bool)
    solid[0, 0, 0] = solid[1, 1, 0] = True  # edge contact only: two components
    solid[5, 3, 3] = solid[0, 3, 3] = True  # opposite faces: one component only if periodic
    count, labels = voxel_components(solid, periodic=False)
    assert count == 4 and labels[~solid].max() == -1
    count, labels = voxel_components(solid, periodic=True)
    assert count == 3 and labels[5, 3, 3] == labels[0, 3, 3]


def test_floating_islands_are_removed():
    n = 8
    frame = np.zeros((n, n, n), dtype=bool)
    frame[:, :3, :3] = frame[:3, :, :3] = frame[:3, :3, :] = True  # three bars through the cube
    with_island = frame.copy()
    with_island[5:7, 5:7, 5:7] = True  # floating in the corner opposite the bars
    held = keep_held_voxels(with_island, periodic=False)
    np.testing.assert_array_equal(held, frame)
    a = homogenize_voxels_detailed(with_island, void_modulus_ratio=None, solver="direct")
    b = homogenize_voxels(frame, void_modulus_ratio=None, solver="direct")
    np.testing.assert_allclose(a.C, b, atol=1e-12)
    assert a.kept_fraction < a.solid_fraction
    # periodic: only the largest component survives
    held = keep_held_voxels(with_island, periodic=True)
    np.testing.assert_array_equal(held, frame)


def test_disconnected_layers_are_all_held_by_affine_bcs():
    solid = np.zeros((8, 8, 8), dtype=bool)
    solid[1:3] = solid[5:7] = True
    np.testing.assert_array_equal(keep_held_voxels(solid, periodic=False), solid)
    assert keep_held_voxels(solid, periodic=True).sum() == solid.sum() // 2


# ----------------------------------------------------------------------------------------------
# input errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"solid": np.ones((4, 4, 3), dtype=bool)}, "cubic"),
        ({"solid": np.ones((4, 4, 4))}, "boolean"),
        ({"boundary": "traction"}, "unknown boundary"),
        ({"void_modulus_ratio": 0.0}, "void_modulus_ratio"),
        ({"poisson_ratio": 0.5}, "poisson_ratio"),
        ({"youngs_modulus": -1.0}, "youngs_modulus"),
        ({"solver": "gmres"}, "unknown solver"),
        ({"solid": np.zeros((4, 4, 4), dtype=bool), "void_modulus_ratio": None}, "no solid"),
    ],
)
def test_invalid_inputs(kwargs, reason):
    args = {"solid": np.ones((4, 4, 4), dtype=bool), **kwargs}
    with pytest.raises(MetainvError, match=reason):
        homogenize_voxels(**args)


def test_nothing_held_is_an_error():
    solid = np.zeros((8, 8, 8), dtype=bool)
    solid[3:5, 3:5, 3:5] = True
    with pytest.raises(MetainvError, match="no solid voxel is held"):
        homogenize_voxels(solid, void_modulus_ratio=None)
