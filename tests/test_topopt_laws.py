"""Tabulated truss and spinodoid laws, density ranges, passive solids and graded parts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from metainv.cli import app
from metainv.errors import MetainvError
from metainv.mesh import is_watertight_stl
from metainv.tensors import isotropic_stiffness
from metainv.topopt import (
    Settings,
    analyze,
    available_laws,
    build_model,
    density_filter,
    get_law,
    grey_level,
    isotruss_law,
    make_problem,
    make_solver,
    optimize,
    physical_density,
    solid_coefficients,
    stiffness,
    stiffness_derivative,
)
from metainv.topopt.lattices import (
    ISOTROPIC_BASIS,
    TRUSS_DENSITY_SCALE,
    TRUSS_TOPOLOGY,
    isotropic_projection,
    load_table,
    table_law,
)
from metainv.topopt.parts import (
    PartOptions,
    dehomogenize,
    graded_truss_graph,
)

runner = CliRunner()

TABLE_LAWS = ("truss", "spinodoid")


def inside(law, n=7):
    low, high = law.density_range
    return np.linspace(low + 0.02 * (high - low), high - 0.02 * (high - low), n)


# ---------------------------------------------------------------- the laws


def test_truss_and_spinodoid_are_registered():
    assert {"truss", "spinodoid", "gyroid", "isotruss"} <= set(available_laws())
    assert get_law("truss").density_range == (0.0, 1.0)
    assert get_law("spinodoid").density_range == (0.3, 1.0)


@pytest.mark.parametrize("name", [*TABLE_LAWS, "gyroid"])
def test_law_derivative_matches_central_differences(name):
    law = get_law(name)
    rho = inside(law)
    h = 1e-6
    fd = (stiffness(law, rho + h) - stiffness(law, rho - h)) / (2 * h)
    exact = stiffness_derivative(law, rho)
    assert np.abs(fd - exact).max() < 1e-5 * np.abs(exact).max()


@pytest.mark.parametrize("name", TABLE_LAWS)
def test_table_law_is_positive_definite_and_stiffens_with_density(name):
    law = get_law(name)
    rho = np.linspace(*law.density_range, 30)
    rho[0] = max(rho[0], 1e-3)
    D = stiffness(law, rho)
    assert np.all(np.linalg.eigvalsh(D) > 0)
    assert np.all(np.diff(D[:, 0, 0]) > 0) and np.all(np.diff(D[:, 3, 3]) > 0)
    # below the Voigt bound of the lattice's own solid fraction (spinodoid: rho; truss: s rho)
    solid = isotropic_stiffness(1.0, 0.3)
    scale = TRUSS_DENSITY_SCALE if name == "truss" else 1.0
    assert np.all(np.linalg.eigvalsh(scale * rho[:, None, None] * solid - D) > -1e-12)


@pytest.mark.parametrize("name", TABLE_LAWS)
def test_table_fit_reproduces_its_data(name):
    data = load_table(name)
    table, fit = data["table"], data["fit"]
    law = table_law(name)
    rho = np.array(table["density"]) / data["density_scale"]
    names = list(fit["coefficients"])
    values, _ = law.coefficients(rho)
    measured = np.stack([table[key] for key in names], axis=1)
    tolerance = 1e-6 if name == "truss" else 0.03  # exact beam model vs noisy voxel averages
    assert np.abs(values - measured).max() < tolerance * np.abs(measured).max()
    assert "python -m metainv.topopt" in data["command"]


def test_truss_law_is_the_beam_homogenization_of_its_design():
    from metainv.truss.homogenize import BeamMaterial, homogenize_lattice
    from metainv.truss.lattice import periodic_lattice, strut_diameter

    lattice = periodic_lattice(TRUSS_TOPOLOGY)
    rho_t = 0.037
    C = homogenize_lattice(
        lattice, np.eye(3), float(strut_diameter(lattice, np.eye(3), rho_t)), BeamMaterial()
    )
    D = stiffness(get_law("truss"), rho_t / TRUSS_DENSITY_SCALE)[0]
    np.testing.assert_allclose(D, C, atol=1e-7 * np.abs(C).max())


def test_isotropic_projection_of_an_isotropic_stiffness():
    C = isotropic_stiffness(2.0, 0.25)
    k, mu = isotropic_projection(C)
    np.testing.assert_allclose(k * ISOTROPIC_BASIS[0] + mu * ISOTROPIC_BASIS[1], C, atol=1e-14)
    assert k == pytest.approx(2.0 / (3 * 0.5)) and mu == pytest.approx(2.0 / 2.5)


@pytest.mark.parametrize("name", ["isotruss", "gyroid", *TABLE_LAWS])
def test_solid_coefficients_give_the_solid(name):
    law = get_law(name)
    D = np.einsum("k,kij->ij", solid_coefficients(law), law.basis)
    np.testing.assert_allclose(D, isotropic_stiffness(1.0, 0.3), atol=1e-12)


# ---------------------------------------------------------------- sensitivities


def finite_difference_error(problem, law, penalty, n_checks=8, seed=0):
    """Largest relative error of dC/dx against central differences (step 1e-6)."""
    low, high = law.density_range
    model = build_model(problem, law)
    solve = make_solver("direct", model.plan)
    flt = density_filter(problem.grid, 1.5)
    active = problem.active
    x = np.random.default_rng(seed).uniform(low + 0.1 * (high - low), high - 0.1 * (high - low),
                                            problem.grid.n_elements)  # fmt: skip

    def evaluate(design):
        rho = physical_density(flt, design, active, (low, high))
        return analyze(model, rho, penalty, 1e-3, solve)

    gradient = flt.backward(np.where(active, evaluate(x).sensitivity, 0.0))
    step = 1e-6
    candidates = np.flatnonzero(active)
    errors = []
    for e in candidates[np.linspace(0, candidates.size - 1, n_checks).astype(int)]:
        plus, minus = x.copy(), x.copy()
        plus[e] += step
        minus[e] -= step
        fd = (evaluate(plus).compliance - evaluate(minus).compliance) / (2 * step)
        errors.append(abs(fd - gradient[e]) / abs(gradient[e]))
    return max(errors)


@pytest.mark.parametrize("name", TABLE_LAWS)
@pytest.mark.parametrize(
    ("problem", "nel"), [("cantilever", (6, 4, 2)), ("lpbf-cantilever", (6, 5, 2))]
)
def test_sensitivity_of_table_laws(name, problem, nel):
    assert finite_difference_error(make_problem(problem, nel), get_law(name), 1.0) < 1e-5


# ---------------------------------------------------------------- density range


def test_optimizer_keeps_densities_in_the_law_range():
    law = get_law("spinodoid")
    problem = make_problem("cantilever", (10, 4, 2))
    result = optimize(problem, law, Settings(volume_fraction=0.5, max_iter=8))
    assert result.density.min() >= 0.3 - 1e-12 and result.density.max() <= 1.0 + 1e-12
    assert result.density_range == (0.3, 1.0)
    assert result.volume_fraction == pytest.approx(0.5, abs=2e-3)
    assert result.compliance < result.history[0].compliance
    assert result.summary()["density_range"] == [0.3, 1.0]


def test_density_range_errors():
    with pytest.raises(MetainvError, match=r"volfrac must lie in \(0.3, 1\)"):
        Settings(volume_fraction=0.2).bounds(get_law("spinodoid"))
    with pytest.raises(MetainvError, match="leaves the range"):
        Settings(volume_fraction=0.5, density_range=(0.1, 0.9)).bounds(get_law("spinodoid"))
    with pytest.raises(MetainvError, match="density range must satisfy"):
        Settings(density_range=(0.6, 0.2))
    with pytest.raises(MetainvError, match="density range must satisfy"):
        dataclasses.replace(isotruss_law(), density_range=(0.5, 1.2))


def test_grey_level_is_measured_in_the_range():
    assert grey_level(np.array([0.3, 1.0, 1.0]), (0.3, 1.0)) == 0.0
    assert grey_level(np.array([0.65]), (0.3, 1.0)) == pytest.approx(1.0)


def test_passive_elements_are_solid_whatever_the_law():
    problem = make_problem("lpbf-cantilever", (6, 5, 2))
    law = get_law("spinodoid")
    model = build_model(problem, law)
    rho = np.where(problem.active, 0.5, 1.0)
    analysis = analyze(model, rho, 1.0, 1e-3, make_solver("direct", model.plan))
    assert np.all(analysis.sensitivity[problem.passive_solid] == 0.0)
    # same analysis with the passive entries of rho changed: they are ignored
    again = analyze(
        model, np.where(problem.active, 0.5, 0.3), 1.0, 1e-3, make_solver("direct", model.plan)
    )
    assert again.compliance == pytest.approx(analysis.compliance, rel=1e-12)


# ---------------------------------------------------------------- graded parts


def test_graded_truss_part_is_watertight_and_graded():
    density = np.array([0.4, 1.0])[:, None, None] * np.ones((2, 1, 1))
    law = get_law("truss")
    mesh = dehomogenize(density, law.metadata, PartOptions(period=1.0, segments=6))
    assert mesh.is_watertight and is_watertight_stl(mesh)
    nodes, struts, diameters, edge = graded_truss_graph(density, TRUSS_TOPOLOGY, 0.1, 1.0)
    np.testing.assert_allclose(edge, 1.0)
    middle = 0.5 * (nodes[struts[:, 0]] + nodes[struts[:, 1]])
    # strut thickness follows the density: sqrt(rho) ratio between the two cell centres
    thin = diameters[np.all(middle < [0.5, 1.0, 1.0], axis=1)].min()
    thick = diameters[np.all(middle > [1.5, -1.0, -1.0], axis=1)].max()
    assert thick / thin == pytest.approx(np.sqrt(1.0 / 0.4), rel=1e-6)


def test_graded_spinodoid_part_is_watertight_and_follows_the_density():
    density = np.full((4, 3, 2), 0.6)
    mesh = dehomogenize(density, get_law("spinodoid").metadata, PartOptions(period=2.0))
    assert mesh.is_watertight and is_watertight_stl(mesh)
    assert mesh.volume / density.size == pytest.approx(0.6, abs=0.08)


def test_laws_without_a_part_write_none():
    assert dehomogenize(np.full((2, 2, 2), 0.5), isotruss_law().metadata) is None


def test_cli_topopt_spinodoid_writes_part(tmp_path: Path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["topopt", "--problem", "cantilever", "--nel", "4", "2", "2", "--material", "spinodoid",
         "--volfrac", "0.5", "--max-iter", "3", "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["density_range"] == [0.3, 1.0]
    assert (out / "part.stl").stat().st_size > 0


def test_cli_topopt_density_range_option(tmp_path: Path):
    result = runner.invoke(
        app,
        ["topopt", "--nel", "4", "2", "2", "--material", "isotruss", "--density-range", "0.1",
         "0.6", "--volfrac", "0.3", "--max-iter", "2", "--out", str(tmp_path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["density_range"] == [0.1, 0.6]
    bad = runner.invoke(
        app, ["topopt", "--nel", "4", "2", "2", "--material", "spinodoid", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 2
    assert "volfrac must lie in (0.3, 1)" in bad.output


def test_cli_topopt_keeps_results_when_the_part_fails(tmp_path: Path, monkeypatch):
    from metainv.topopt import parts

    def fail(density, metadata, options):
        raise MetainvError("no watertight mesh")

    monkeypatch.setitem(parts.PARTS, "tpms", fail)
    result = runner.invoke(
        app,
        ["topopt", "--nel", "4", "2", "2", "--material", "gyroid", "--max-iter", "2",
         "--out", str(tmp_path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "no watertight mesh" in summary["part_error"]
    assert not (tmp_path / "part.stl").exists()
    assert (tmp_path / "density.vtu").stat().st_size > 0
