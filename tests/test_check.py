"""check_stiffness: each admissibility check passes on physical input and names the fault."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from metainv.errors import MetainvError
from metainv.targets import load_target
from metainv.tensors import (
    StiffnessReport,
    check_stiffness,
    isotropic_stiffness,
    random_rotations,
    rotate_stiffness,
)
from metainv.tensors.check import acoustic_tensor

REPORT_KEYS = {
    "admissible",
    "shape",
    "finite",
    "symmetric",
    "positive_definite",
    "min_eigenvalue",
    "strongly_elliptic",
    "within_voigt_bound",
    "failures",
}


def lame_stiffness(lam: float, mu: float) -> np.ndarray:
    """Isotropic Voigt stiffness from Lame constants (any sign, for inadmissible examples)."""
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[np.arange(3), np.arange(3)] = lam + 2 * mu
    C[np.arange(3, 6), np.arange(3, 6)] = mu
    return C


def test_isotropic_solid_is_admissible() -> None:
    report = check_stiffness(isotropic_stiffness(1.0, 0.3))
    assert report.admissible and report.failures == ()
    assert report.symmetric and report.positive_definite and report.strongly_elliptic
    assert report.finite and report.shape == (6, 6)
    assert report.within_voigt_bound is None  # not requested


def test_bone3_is_admissible_and_its_eigenvalues_are_numpys() -> None:
    C = load_target("bone3")
    report = check_stiffness(C)
    assert report.admissible
    np.testing.assert_allclose(report.eigenvalues, np.linalg.eigvalsh(C), rtol=1e-12)
    assert report.min_eigenvalue == pytest.approx(np.linalg.eigvalsh(C)[0])


def test_report_is_frozen_and_json_serializable() -> None:
    report = check_stiffness(0.3 * isotropic_stiffness(1.0, 0.3), max_relative_density=0.5)
    assert isinstance(report, StiffnessReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.symmetric = False  # type: ignore[misc]
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert REPORT_KEYS <= set(data)
    assert data["admissible"] is True and data["shape"] == [6, 6]


def test_wrong_shape_is_a_failure_not_an_exception() -> None:
    report = check_stiffness(np.eye(5))
    assert not report.admissible
    assert report.failures == ("expected a 6x6 stiffness matrix, got shape (5, 5)",)
    assert report.positive_definite is None and report.min_eigenvalue is None
    assert json.dumps(report.to_dict(), allow_nan=False)


def test_non_numeric_input_is_a_failure() -> None:
    report = check_stiffness([["a", "b"], ["c"]])
    assert not report.admissible and "not all numbers" in report.failures[0]


@pytest.mark.parametrize(("value", "word"), [(np.nan, "NaN"), (np.inf, "infinite")])
def test_non_finite_entry_is_named(value: float, word: str) -> None:
    C = isotropic_stiffness(1.0, 0.3)
    C[1, 2] = value
    report = check_stiffness(C)
    assert report.finite is False and not report.admissible
    assert report.failures == (f"C23 is {word}",)
    assert json.dumps(report.to_dict(), allow_nan=False)  # no NaN leaks into the JSON


def test_asymmetry_names_the_worst_pair() -> None:
    C = isotropic_stiffness(1.0, 0.3)
    C[0, 3], C[3, 0] = 0.1, 0.2
    C[1, 4] = 0.01  # a smaller asymmetry that must not be the one named
    report = check_stiffness(C)
    assert report.symmetric is False and not report.admissible
    assert report.failures[0] == "not symmetric: C14 != C41 (0.1 vs 0.2)"
    assert report.max_asymmetry == pytest.approx(0.1)


def test_asymmetry_below_tolerance_is_accepted() -> None:
    C = isotropic_stiffness(1.0, 0.3)
    C[0, 1] += 1e-12
    assert check_stiffness(C).admissible


def test_indefinite_names_the_smallest_eigenvalue() -> None:
    C = np.eye(6)
    C[1, 1] = -0.5
    report = check_stiffness(C)
    assert report.positive_definite is False and report.min_eigenvalue == pytest.approx(-0.5)
    assert "not positive definite: smallest eigenvalue -0.5 <= 0 (strain mode mostly e22)" in (
        report.failures
    )


def test_negative_bulk_modulus_is_indefinite_but_strongly_elliptic() -> None:
    # lambda = -1, mu = 1: bulk modulus lambda + 2 mu / 3 < 0, but lambda + 2 mu > 0 and mu > 0.
    report = check_stiffness(lame_stiffness(-1.0, 1.0))
    assert report.positive_definite is False
    assert report.strongly_elliptic is True
    assert report.min_eigenvalue == pytest.approx(3 * -1.0 + 2 * 1.0)
    assert "strain mode mostly e11, e22, e33" in report.failures[0]  # the hydrostatic mode


def test_negative_shear_modulus_is_not_strongly_elliptic() -> None:
    # Acoustic tensor of an isotropic solid: mu I + (lambda + mu) n n^T, eigenvalues mu, lambda+2mu.
    report = check_stiffness(lame_stiffness(1.0, -0.2))
    assert report.strongly_elliptic is False
    assert report.min_acoustic_eigenvalue == pytest.approx(-0.2, abs=1e-9)
    assert any(failure.startswith("not strongly elliptic") for failure in report.failures)
    assert np.linalg.norm(report.worst_direction) == pytest.approx(1.0)


def test_worst_acoustic_direction_matches_a_dense_brute_force_scan() -> None:
    # Orthotropic and very soft along e3: the slowest wave travels close to e3 (slightly off it,
    # where the shear coupling lowers the smallest eigenvalue below C33 = 0.01).
    C = np.diag([1.0, 1.0, 0.01, 0.5, 0.5, 0.5])
    report = check_stiffness(C)
    assert report.admissible
    directions = np.random.default_rng(0).standard_normal((100_000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    brute_force = np.linalg.eigvalsh(acoustic_tensor(C, directions))[:, 0].min()
    assert brute_force - 1e-6 <= report.min_acoustic_eigenvalue <= brute_force
    assert report.min_acoustic_eigenvalue < 0.01
    assert abs(report.worst_direction[2]) > 0.99


def test_voigt_bound_passes_and_fails_with_the_eigenvalue() -> None:
    solid = (1.0, 0.3)
    inside = check_stiffness(0.05 * isotropic_stiffness(*solid), solid, max_relative_density=0.1)
    assert inside.admissible and inside.within_voigt_bound is True
    assert inside.voigt_margin_min_eigenvalue == pytest.approx(
        0.05 * np.linalg.eigvalsh(isotropic_stiffness(*solid))[0]
    )
    outside = check_stiffness(0.2 * isotropic_stiffness(*solid), solid, max_relative_density=0.1)
    assert outside.within_voigt_bound is False and not outside.admissible
    assert outside.failures[0].startswith(
        "exceeds the Voigt bound rho_max*C_solid (rho_max=0.1): smallest eigenvalue"
    )


def test_voigt_bound_is_a_loewner_order_not_entrywise() -> None:
    # 0.9 * (0.1 C_solid) plus a shear coupling C45 the solid lacks: every diagonal entry is below
    # the bound, C is positive definite, but rho_max C_solid - C is indefinite.
    bound = 0.1 * isotropic_stiffness(1.0, 0.3)
    C = 0.9 * bound
    C[3, 4] = C[4, 3] = 0.5 * bound[3, 3]
    report = check_stiffness(C, (1.0, 0.3), max_relative_density=0.1)
    assert report.positive_definite and not report.within_voigt_bound


def test_voigt_bound_defaults_to_normalized_base_material() -> None:
    report = check_stiffness(load_target("bone3"), max_relative_density=0.05)
    assert report.within_voigt_bound is True and report.max_relative_density == 0.05


def test_voigt_bound_accepts_a_solid_stiffness_matrix() -> None:
    solid = isotropic_stiffness(2.0, 0.25)
    assert check_stiffness(0.5 * solid, solid, 0.6).within_voigt_bound
    assert not check_stiffness(0.5 * solid, solid, 0.4).within_voigt_bound


@pytest.mark.parametrize(
    ("solid", "rho", "message"),
    [
        ((1.0, 0.3), 1.5, "max relative density must lie in (0, 1]"),
        ((1.0, 0.3), 0.0, "max relative density must lie in (0, 1]"),
        ((1.0, 0.6), 0.1, "invalid solid: Poisson ratio"),
        (np.eye(3), 0.1, "solid must be (E, nu) or a 6x6 stiffness"),
    ],
)
def test_invalid_bound_arguments_raise(solid: object, rho: float, message: str) -> None:
    with pytest.raises(MetainvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_stiffness(np.eye(6), solid, rho)


def test_rotation_does_not_change_the_verdict() -> None:
    rng = np.random.default_rng(3)
    C = load_target("bone3")
    for R in random_rotations(5, rng):
        rotated = check_stiffness(rotate_stiffness(C, R))
        assert rotated.admissible
        assert rotated.min_acoustic_eigenvalue == pytest.approx(
            check_stiffness(C).min_acoustic_eigenvalue, rel=1e-5
        )


def test_torch_input_is_accepted() -> None:
    C = torch.tensor(isotropic_stiffness(1.0, 0.3), requires_grad=True)
    assert check_stiffness(C).admissible


def test_zero_matrix_is_not_admissible() -> None:
    report = check_stiffness(np.zeros((6, 6)))
    assert not report.admissible and "all entries are zero" in report.failures
