"""Tensor core: rotations, notations, elastic surface and metrics (numpy and torch float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metainv.tensors import (
    angle_axis_from_rotation,
    bond_matrix,
    c21_from_matrix,
    cubic_stiffness,
    directional_youngs_modulus,
    is_rotation,
    isotropic_stiffness,
    mandel_to_voigt,
    matrix_from_c21,
    matrix_from_orthotropic9,
    nmse,
    orthotropic9_from_matrix,
    r2_score,
    random_rotations,
    random_unit_vectors,
    rotate_stiffness,
    rotate_tensor4,
    rotation_from_6d,
    rotation_from_angle_axis,
    sixd_from_rotation,
    sphere_directions,
    tensor_to_voigt,
    voigt_to_mandel,
    voigt_to_tensor,
)


def random_stiffness(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """Random symmetric positive definite Voigt matrices (6, 6) or (n, 6, 6)."""
    shape = (6, 6) if n is None else (n, 6, 6)
    A = rng.standard_normal(shape)
    return A @ np.swapaxes(A, -1, -2) + 6 * np.eye(6)


def as_torch(x: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20220107)


# --- rotations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_bond_rotation_equals_fourth_order_rotation(rng: np.random.Generator, backend: str) -> None:
    C = random_stiffness(rng, 20)
    R = random_rotations(20, rng)
    if backend == "torch":
        C, R = as_torch(C), as_torch(R)
    by_bond = rotate_stiffness(C, R)
    by_tensor = tensor_to_voigt(rotate_tensor4(voigt_to_tensor(C), R))
    if backend == "torch":
        assert isinstance(by_bond, torch.Tensor)
        by_bond, by_tensor = by_bond.numpy(), by_tensor.numpy()
    np.testing.assert_allclose(by_bond, by_tensor, atol=1e-12, rtol=0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_rotating_by_r_then_r_transpose_is_identity(rng: np.random.Generator, backend: str) -> None:
    C = random_stiffness(rng, 10)
    R = random_rotations(10, rng)
    if backend == "torch":
        C, R = as_torch(C), as_torch(R)
    R_transpose = R.transpose(-1, -2) if backend == "torch" else np.swapaxes(R, -1, -2)
    back = rotate_stiffness(rotate_stiffness(C, R), R_transpose)
    assert type(back) is type(C)
    assert float(abs(back - C).max()) < 1e-12


def test_bond_matrix_of_a_product_is_the_product_of_bond_matrices(
    rng: np.random.Generator,
) -> None:
    R1, R2 = random_rotations(5, rng), random_rotations(5, rng)
    np.testing.assert_allclose(bond_matrix(R1 @ R2), bond_matrix(R1) @ bond_matrix(R2), atol=1e-12)


def test_isotropic_stiffness_is_invariant_under_every_rotation(rng: np.random.Generator) -> None:
    C = isotropic_stiffness(2.5, 0.3)
    rotated = rotate_stiffness(C, random_rotations(200, rng))
    np.testing.assert_allclose(rotated, np.broadcast_to(C, rotated.shape), atol=1e-12)


def test_rotation_about_e3_by_quarter_turn_swaps_c11_and_c22() -> None:
    C = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    R = rotation_from_angle_axis(np.array(np.pi / 2), np.array([0.0, 0.0, 1.0]))
    rotated = rotate_stiffness(C, R)
    np.testing.assert_allclose(np.diag(rotated), [2.0, 1.0, 3.0, 5.0, 4.0, 6.0], atol=1e-12)


def test_random_rotations_are_rotations(rng: np.random.Generator) -> None:
    assert is_rotation(random_rotations(100, rng)).all()


# --- directional Young's modulus ---------------------------------------------------------------


def test_youngs_modulus_of_isotropic_solid_is_the_same_in_every_direction(
    rng: np.random.Generator,
) -> None:
    E = 3.7
    directions = random_unit_vectors(500, rng)
    np.testing.assert_allclose(
        directional_youngs_modulus(isotropic_stiffness(E, 0.27), directions), E, rtol=1e-12
    )


def test_youngs_modulus_of_cubic_solid_matches_closed_form() -> None:
    c11, c12, c44 = 1.7, 1.2, 0.75
    # Cubic compliance in closed form (engineering shear strains).
    s11 = (c11 + c12) / ((c11 - c12) * (c11 + 2 * c12))
    s12 = -c12 / ((c11 - c12) * (c11 + 2 * c12))
    s44 = 1 / c44
    E100 = 1 / s11
    E111 = 1 / (s11 - 2 * (s11 - s12 - s44 / 2) / 3)
    C = cubic_stiffness(c11, c12, c44)
    axes_100 = np.eye(3)
    diagonals_111 = np.array([[1, 1, 1], [1, -1, 1], [-1, 1, 1], [1, 1, -1]]) / np.sqrt(3)
    np.testing.assert_allclose(directional_youngs_modulus(C, axes_100), E100, rtol=1e-12)
    np.testing.assert_allclose(directional_youngs_modulus(C, diagonals_111), E111, rtol=1e-12)
    assert not np.isclose(E100, E111)  # the example is really anisotropic


def test_youngs_modulus_rotates_with_the_stiffness(rng: np.random.Generator) -> None:
    C = random_stiffness(rng)
    R = random_rotations(1, rng)[0]
    directions = random_unit_vectors(50, rng)
    np.testing.assert_allclose(
        directional_youngs_modulus(rotate_stiffness(C, R), directions @ R.T),
        directional_youngs_modulus(C, directions),
        rtol=1e-10,
    )


def test_youngs_modulus_on_a_sphere_grid_keeps_the_grid_shape() -> None:
    directions, polar, azimuth = sphere_directions(7, 9)
    assert directions.shape == (7, 9, 3) and polar.shape == (7,) and azimuth.shape == (9,)
    moduli = directional_youngs_modulus(cubic_stiffness(2.0, 1.0, 0.5), directions)
    assert moduli.shape == (7, 9)


def test_youngs_modulus_is_batched_over_stiffnesses(rng: np.random.Generator) -> None:
    C = random_stiffness(rng, 4)
    directions = random_unit_vectors(11, rng)
    batched = directional_youngs_modulus(C, directions)
    assert batched.shape == (4, 11)
    np.testing.assert_allclose(batched[2], directional_youngs_modulus(C[2], directions))


# --- notations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_voigt_mandel_tensor_round_trips(rng: np.random.Generator, backend: str) -> None:
    C = random_stiffness(rng, 3)
    if backend == "torch":
        C = as_torch(C)
    for back in (
        mandel_to_voigt(voigt_to_mandel(C)),
        tensor_to_voigt(voigt_to_tensor(C)),
        matrix_from_c21(c21_from_matrix(C)),
    ):
        assert type(back) is type(C)
        np.testing.assert_allclose(np.asarray(back), np.asarray(C), atol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_orthotropic9_round_trip(rng: np.random.Generator, backend: str) -> None:
    c9 = rng.uniform(0.1, 1.0, size=(5, 9))
    if backend == "torch":
        c9 = as_torch(c9)
    C = matrix_from_orthotropic9(c9)
    assert tuple(C.shape) == (5, 6, 6)
    np.testing.assert_allclose(np.asarray(orthotropic9_from_matrix(C)), np.asarray(c9))
    assert float(abs(C[:, 0, 3:]).max()) == 0.0  # no normal-shear coupling


def test_mandel_eigenvalues_are_rotation_invariant(rng: np.random.Generator) -> None:
    C = random_stiffness(rng)
    R = random_rotations(1, rng)[0]
    np.testing.assert_allclose(
        np.linalg.eigvalsh(voigt_to_mandel(rotate_stiffness(C, R))),
        np.linalg.eigvalsh(voigt_to_mandel(C)),
        rtol=1e-12,
    )


def test_tensor_form_has_minor_and_major_symmetries(rng: np.random.Generator) -> None:
    T = voigt_to_tensor(random_stiffness(rng))
    np.testing.assert_array_equal(T, T.transpose(1, 0, 2, 3))
    np.testing.assert_array_equal(T, T.transpose(0, 1, 3, 2))
    np.testing.assert_array_equal(T, T.transpose(2, 3, 0, 1))


def test_c21_follows_spec_order() -> None:
    C = np.arange(36, dtype=float).reshape(6, 6)
    C = (C + C.T) / 2
    c21 = c21_from_matrix(C)
    assert c21.shape == (21,)
    assert c21[3] == C[0, 3]  # C14
    assert c21[6] == C[1, 1]  # C22
    assert c21[-1] == C[5, 5]  # C66


# --- 6-D representation and angle-axis --------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sixd_round_trip(rng: np.random.Generator, backend: str) -> None:
    R = random_rotations(50, rng)
    if backend == "torch":
        R = as_torch(R)
    back = rotation_from_6d(sixd_from_rotation(R))
    np.testing.assert_allclose(np.asarray(back), np.asarray(R), atol=1e-12)


def test_rotation_from_arbitrary_6d_vector_is_a_rotation(rng: np.random.Generator) -> None:
    assert is_rotation(rotation_from_6d(rng.standard_normal((100, 6)))).all()


def test_angle_axis_round_trip_including_near_zero_and_near_pi(rng: np.random.Generator) -> None:
    n = 200
    axis = random_unit_vectors(n, rng)
    angle = rng.uniform(0.0, np.pi, size=n)
    angle[:6] = [0.0, 1e-9, 1e-6, np.pi - 1e-6, np.pi - 1e-9, np.pi]
    R = rotation_from_angle_axis(angle, axis)
    angle_back, axis_back = angle_axis_from_rotation(R)
    np.testing.assert_allclose(rotation_from_angle_axis(angle_back, axis_back), R, atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(axis_back, axis=-1), 1.0, atol=1e-12)
    generic = slice(6, None)
    np.testing.assert_allclose(angle_back[generic], angle[generic], atol=1e-8)
    np.testing.assert_allclose(axis_back[generic], axis[generic], atol=1e-8)


def test_negative_angle_is_the_opposite_axis() -> None:
    axis = np.array([0.0, 0.6, 0.8])
    angle_back, axis_back = angle_axis_from_rotation(rotation_from_angle_axis(np.array(-1.0), axis))
    assert np.isclose(angle_back, 1.0)
    np.testing.assert_allclose(axis_back, -axis, atol=1e-12)


# --- gradients ---------------------------------------------------------------------------------


def test_gradcheck_rotation_from_6d(rng: np.random.Generator) -> None:
    a = as_torch(rng.standard_normal((3, 6)), grad=True)
    assert torch.autograd.gradcheck(rotation_from_6d, (a,))


def test_gradcheck_bond_matrix_and_rotate_stiffness(rng: np.random.Generator) -> None:
    a = as_torch(rng.standard_normal((2, 6)), grad=True)
    C = as_torch(random_stiffness(rng, 2), grad=True)
    assert torch.autograd.gradcheck(lambda x: bond_matrix(rotation_from_6d(x)), (a,))
    assert torch.autograd.gradcheck(lambda c, x: rotate_stiffness(c, rotation_from_6d(x)), (C, a))


def test_gradcheck_directional_youngs_modulus(rng: np.random.Generator) -> None:
    C = as_torch(random_stiffness(rng), grad=True)
    directions = as_torch(random_unit_vectors(8, rng))
    assert torch.autograd.gradcheck(lambda c: directional_youngs_modulus(c, directions), (C,))


# --- metrics -----------------------------------------------------------------------------------


def test_nmse_is_the_ratio_of_sums_on_a_hand_computed_example() -> None:
    # Target: C11 = 1, C22 = 2, C12 = C21 = 0.5, all other 32 entries 0.
    # Prediction: C11 = 1.1, C22 = 2.4, C12 = C21 = 0.5, C33 = 0.3.
    target = np.zeros((6, 6))
    target[0, 0], target[1, 1], target[0, 1], target[1, 0] = 1.0, 2.0, 0.5, 0.5
    predicted = target.copy()
    predicted[0, 0], predicted[1, 1], predicted[2, 2] = 1.1, 2.4, 0.3
    # Squared errors: 0.1^2 + 0.4^2 + 0.3^2 = 0.01 + 0.16 + 0.09 = 0.26.
    # Squared target: 1^2 + 2^2 + 0.5^2 + 0.5^2 = 5.5.  NMSE = 0.26 / 5.5 = 0.047272...
    assert nmse(target, predicted) == pytest.approx(0.26 / 5.5, rel=1e-14)
    # A mean of per-entry ratios differs: over the 4 non-zero target entries it is
    # (0.01/1 + 0.16/4 + 0 + 0) / 4 = 0.0125, and the C33 error (target 0) would divide by 0.
    per_entry_mean = (0.01 / 1 + 0.16 / 4 + 0 + 0) / 4
    assert not np.isclose(nmse(target, predicted), per_entry_mean)


def test_nmse_batch_shapes_and_torch(rng: np.random.Generator) -> None:
    target = random_stiffness(rng, 5)
    predicted = target * 1.1
    values = nmse(target, predicted)
    assert values.shape == (5,)
    np.testing.assert_allclose(values, 0.01, rtol=1e-12)  # uniform 10 % error -> 0.1^2
    assert nmse(target[None], predicted[:, None]).shape == (5, 5)  # broadcasting
    as_tensor = nmse(as_torch(target), as_torch(predicted))
    assert isinstance(as_tensor, torch.Tensor) and tuple(as_tensor.shape) == (5,)
    assert nmse(target[0], target[0]) == 0.0


def test_r2_score_known_case() -> None:
    y_true = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    y_predicted = np.array([[1.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    # Column 0: SS_res = 1, SS_tot = (1-2)^2 + 0 + (3-2)^2 = 2 -> R^2 = 0.5.
    # Column 1 is constant: SS_tot = 0 -> NaN.
    r2 = r2_score(y_true, y_predicted)
    assert r2[0] == pytest.approx(0.5)
    assert np.isnan(r2[1])
    assert r2_score(y_true[:, :1], y_true[:, :1])[0] == 1.0
    torch_r2 = r2_score(as_torch(y_true[:, :1]), as_torch(y_predicted[:, :1]))
    assert float(torch_r2[0]) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- material frames


def _random_spd_stiffness(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, 6, 6))
    return A @ np.swapaxes(A, -1, -2) + 6 * np.eye(6)


def test_contracted_tensors_match_the_fourth_order_definitions():
    from metainv.tensors import dilatational_tensor, voigt_contracted_tensor, voigt_to_tensor

    C = _random_spd_stiffness(3, 1)
    T = voigt_to_tensor(C)
    np.testing.assert_allclose(dilatational_tensor(C), np.einsum("...ijkk->...ij", T), atol=1e-12)
    np.testing.assert_allclose(
        voigt_contracted_tensor(C), np.einsum("...ikjk->...ij", T), atol=1e-12
    )


def test_material_frame_is_rotation_equivariant_and_canonical_form_invariant():
    from metainv.tensors import canonical_stiffness, material_frame, random_rotations

    C = _random_spd_stiffness(20, 2)
    R = random_rotations(20, np.random.default_rng(3))
    Q = material_frame(C)
    np.testing.assert_allclose(np.linalg.det(Q), 1.0, atol=1e-12)
    np.testing.assert_allclose(material_frame(rotate_stiffness(C, R)), R @ Q, atol=1e-9)
    _, canonical = canonical_stiffness(C)
    _, canonical_rotated = canonical_stiffness(rotate_stiffness(C, R))
    np.testing.assert_allclose(canonical_rotated, canonical, atol=1e-9)
    # torch gives the same frame as numpy
    torch_frame = material_frame(torch.as_tensor(C))
    np.testing.assert_allclose(torch_frame.numpy(), Q, atol=1e-10)
