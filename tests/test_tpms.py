"""TPMS fields, density <-> level, the shipped gyroid fit (SI Eq. 1) and graded lattices."""

from __future__ import annotations

import numpy as np
import pytest

from metainv.errors import MetainvError
from metainv.tensors import cubic_stiffness
from metainv.topopt import exponential_fit_law, gyroid_law, stiffness, stiffness_derivative
from metainv.tpms import (
    CUBIC_NAMES,
    SURFACES,
    VARIANTS,
    cubic_constants,
    density_of_level,
    exponential_fit,
    fit_exponential,
    homogenize_tpms,
    level_of_density,
    load_fit_data,
    sample_field,
    solid_cubic_constants,
    surface_field,
)
from metainv.tpms.graded import graded_mesh


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_fields_are_periodic_with_zero_mean(surface):
    field = surface_field(surface)
    p = np.random.default_rng(0).uniform(size=(3, 50))
    shifted = field(p[0] + 1.0, p[1] - 2.0, p[2] + 3.0)
    np.testing.assert_allclose(shifted, field(*p), atol=1e-12)
    assert abs(sample_field(surface, 16).mean()) < 1e-12


@pytest.mark.parametrize("surface", sorted(SURFACES))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_level_density_round_trip(surface, variant):
    n = 20
    densities = np.array([0.0, 0.05, 0.2, 0.37, 0.5, 0.81, 1.0])
    levels = level_of_density(surface, densities, n, variant)
    assert np.all(np.diff(levels) > 0)
    # symmetry makes groups of samples equal: the attainable fractions step by group sizes
    samples = VARIANTS[variant](sample_field(surface, n)).ravel()
    largest_group = np.unique(samples.round(12), return_counts=True)[1].max()
    round_trip = density_of_level(surface, levels, n, variant)
    np.testing.assert_allclose(round_trip, densities, atol=0.5 * largest_group / n**3 + 1e-12)
    assert round_trip[0] == 0.0 and round_trip[-1] == 1.0


def test_level_of_density_rejects_bad_density():
    with pytest.raises(MetainvError, match=r"\[0, 1\]"):
        level_of_density("gyroid", 1.2, 8)
    with pytest.raises(MetainvError, match="unknown TPMS"):
        level_of_density("neovius", 0.5, 8)


def test_network_gyroid_half_density_is_level_zero():
    assert abs(float(level_of_density("gyroid", 0.5, 32, "network"))) < 1e-3


def test_fit_exponential_recovers_known_parameters():
    rho = np.linspace(0.1, 1.0, 10)
    a, b, rms = fit_exponential(rho, 0.08 * (np.exp(2.6 * rho) - 1.0))
    assert a == pytest.approx(0.08, rel=1e-6)
    assert b == pytest.approx(2.6, rel=1e-6)
    assert rms < 1e-8


def test_cubic_constants_of_a_cubic_matrix():
    constants, deviation = cubic_constants(cubic_stiffness(0.5, 0.2, 0.1))
    np.testing.assert_allclose(constants, [0.5, 0.2, 0.1])
    assert deviation < 1e-15


@pytest.mark.parametrize("variant", ["sheet", "network"])
def test_gyroid_fit_reproduces_its_homogenization_data(variant):
    data = load_fit_data("gyroid")["variants"][variant]
    fit = exponential_fit("gyroid", variant)
    rho = np.array(data["voxel_density"])
    predicted, _ = fit.constants(rho)
    measured = np.stack([data[name] for name in CUBIC_NAMES], axis=1)
    solid = solid_cubic_constants(0.3)
    # stored RMS of D/D* is the residual of this very fit
    residual = np.sqrt(np.mean(((predicted - measured) / solid) ** 2, axis=0))
    np.testing.assert_allclose(residual, fit.rms, rtol=1e-6)
    assert np.all(fit.rms < 0.03)
    # every point within 5 % of the solid's constant, the dense half within 8 % of itself
    assert np.abs((predicted - measured) / solid).max() < 0.05
    dense = rho >= 0.5
    assert np.abs(predicted[dense] / measured[dense] - 1).max() < 0.08


def test_gyroid_law_shape_and_derivative():
    law = gyroid_law()
    rho = np.array([0.0, 0.3, 0.9])
    D = stiffness(law, rho)
    np.testing.assert_allclose(D[0], 0.0, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(D[1:]) > 0)
    # cubic: C11 = C22 = C33, C44 = C55 = C66, no coupling
    np.testing.assert_allclose(np.diag(D[1])[:3], D[1, 0, 0])
    h = 1e-6
    fd = (stiffness(law, rho + h) - stiffness(law, rho - h)) / (2 * h)
    np.testing.assert_allclose(stiffness_derivative(law, rho), fd, rtol=1e-6, atol=1e-12)


def test_homogenize_tpms_is_cubic_and_bounded():
    C, meshed = homogenize_tpms("gyroid", 0.4, n=10, variant="network")
    assert meshed == pytest.approx(0.4, abs=0.02)
    constants, deviation = cubic_constants(C)
    assert deviation < 0.02 * constants[0]
    solid = solid_cubic_constants(0.3)
    assert np.all(constants > 0) and np.all(constants < meshed * solid * 1.0001)


def test_graded_mesh_is_closed_and_follows_the_density():
    density = np.linspace(0.2, 0.8, 8)[:, None, None] * np.ones((8, 4, 2))
    mesh = graded_mesh(density, "gyroid", "sheet", period=2.0, voxels_per_element=6)
    assert mesh.is_watertight
    assert mesh.volume / density.size == pytest.approx(density.mean(), abs=0.05)
    with pytest.raises(MetainvError, match="void everywhere"):
        graded_mesh(np.zeros((2, 2, 2)))


def test_regeneration_records_options_and_bounds_the_law(tmp_path):
    from typer.testing import CliRunner

    from metainv.cli import app
    from metainv.tpms.__main__ import repeated_options

    out = tmp_path / "gyroid.json"
    old = ["--n", "8", "--densities", "0.3", "0.4", "0.5", "--variants", "network"]
    argv = repeated_options([*old, "--fit-range", "0.3", "0.5", "--out", str(out)])
    result = CliRunner().invoke(app, ["laws", "tpms", *argv])
    assert result.exit_code == 0, result.output
    data = load_fit_data("gyroid", out)
    assert data["voxels_per_cell"] == 8
    assert data["fit_range"] == [0.3, 0.5] and data["density_range"] == [0.3, 0.5]
    assert "--fit-range 0.3 0.5" in data["command"]
    fit = exponential_fit("gyroid", "network", out)
    assert fit.density_range == (0.3, 0.5)
    law = exponential_fit_law(fit, "bounded")
    assert law.density_range == (0.3, 0.5)
    # the solid point (rho = 1) is tabulated but outside the fit range: not fitted
    table = data["variants"]["network"]
    assert table["density"][-1] == 1.0
    predicted, _ = fit.constants(np.array(table["voxel_density"][:3]))
    measured = np.stack([table[name][:3] for name in CUBIC_NAMES], axis=1)
    assert np.abs(predicted - measured).max() < 0.05 * measured.max()


def test_shipped_gyroid_law_spans_all_densities():
    assert gyroid_law().density_range == (0.0, 1.0)
    assert gyroid_law().metadata["part"] == "tpms"
