"""Spinodoids: design validation, random field, solid mask, homogenization, export, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from metainv.cli import app
from metainv.errors import DesignError, MetainvError
from metainv.spinodoid import (
    SpinodoidDesign,
    design_from_dict,
    design_to_dict,
    export_spinodoid,
    field_on_grid,
    gaussian_random_field,
    homogenize_spinodoid,
    load_design,
    sample_wave_directions,
    sample_waves,
    save_design,
    solid_mask,
    spinodoid_mesh,
)
from metainv.tensors import isotropic_stiffness, rotation_from_angle_axis

runner = CliRunner()

BASE = {"family": "spinodoid", "relative_density": 0.5, "theta": [0, 0, 90], "kind": "solid"}


def zener(C: np.ndarray) -> float:
    """Cubic-averaged anisotropy ratio 2 C44 / (C11 - C12): 1 for an isotropic stiffness."""
    c11 = np.mean(np.diag(C)[:3])
    c12 = np.mean([C[0, 1], C[0, 2], C[1, 2]])
    return float(2 * np.mean(np.diag(C)[3:]) / (c11 - c12))


def couplings(C: np.ndarray) -> float:
    """Largest entry outside the orthotropic pattern, relative to the largest diagonal."""
    mask = np.ones((6, 6), dtype=bool)
    mask[:3, :3] = False
    mask[[3, 4, 5], [3, 4, 5]] = False
    return float(np.abs(C[mask]).max() / np.diag(C).max())


# ----------------------------------------------------------------------------------------------
# design
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"relative_density": 0.1}, "relative_density = 0.1 is outside [0.15, 1]"),
        ({"relative_density": 1.2}, "relative_density = 1.2 is outside [0.15, 1]"),
        ({"relative_density": "half"}, "relative_density must be a number"),
        ({"theta": [0, 10, 90]}, "theta[1] = 10 deg must be 0 or lie in [15, 90]"),
        ({"theta": [0, 0, 95]}, "theta[2] = 95 deg"),
        ({"theta": [0, 0, 0]}, "at least one cone angle"),
        ({"theta": [30, 30]}, "theta must have 3 angles"),
        ({"theta": 30}, "theta must be a list"),
        ({"kind": "foam"}, "kind = 'foam' is not one of: solid, shell"),
        ({"rotation": [[1, 0.2, 0], [0, 1, 0], [0, 0, 1]]}, "rotation is not a rotation"),
        ({"rotation": [[1, 0], [0, 1]]}, "rotation must be a 3x3 matrix"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"theta": None}, "missing key 'theta'"),
        ({"family": "truss"}, "family must be 'spinodoid'"),
    ],
)
def test_invalid_designs_name_the_field(changes, reason):
    data = {**BASE, **changes}
    data = {key: value for key, value in data.items() if value is not None}
    with pytest.raises(DesignError) as info:
        design_from_dict(data)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_json_round_trip(tmp_path):
    R = rotation_from_angle_axis(np.array(0.4), np.array([0.0, 1.0, 1.0]) / math.sqrt(2))
    design = SpinodoidDesign(0.45, [15, 0, 60], kind="shell", rotation=R, seed=7)
    assert design_from_dict(design_to_dict(design)) == design
    assert load_design(save_design(design, tmp_path / "d.json")) == design
    defaults = design_from_dict({"family": "spinodoid", "relative_density": 1, "theta": [0, 90, 0]})
    assert defaults.kind == "solid" and defaults.rotation is None and defaults.seed == 0
    np.testing.assert_array_equal(defaults.rotation_matrix, np.eye(3))
    with pytest.raises(ValueError, match="read-only"):
        design.theta[0] = 1.0


# ----------------------------------------------------------------------------------------------
# random field
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("theta", [(0, 0, 15), (30, 0, 0), (20, 50, 0), (90, 90, 90)])
def test_wave_directions_lie_in_the_cones(theta):
    n = sample_wave_directions(theta, 3000, np.random.default_rng(0))
    assert n.shape == (3000, 3)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0)
    cos = np.cos(np.radians(theta))
    inside = np.any((np.abs(n) > cos) & (np.array(theta) > 0), axis=1)
    assert inside.all()


def test_wave_directions_fill_the_cone_uniformly():
    """Uniform on a cap of half-angle theta: |n3| is uniform on [cos theta, 1]."""
    n = sample_wave_directions((0, 0, 40), 20000, np.random.default_rng(1))
    heights = np.abs(n[:, 2])
    low = math.cos(math.radians(40))
    assert heights.min() > low
    assert np.mean(heights) == pytest.approx((1 + low) / 2, abs=0.005)


def test_rotation_turns_the_wave_vectors():
    R = rotation_from_angle_axis(np.array(math.pi / 2), np.array([1.0, 0.0, 0.0]))
    plain, phases = sample_waves(SpinodoidDesign(0.5, [0, 0, 20]), 200, seed=3)
    turned, phases2 = sample_waves(SpinodoidDesign(0.5, [0, 0, 20], rotation=R), 200, seed=3)
    np.testing.assert_allclose(turned, plain @ R.T, atol=1e-12)
    np.testing.assert_array_equal(phases, phases2)
    assert np.all(np.abs(turned[:, 1]) > math.cos(math.radians(20)))  # cone now about e2


def test_separable_field_equals_the_sum_of_cosines():
    directions, phases = sample_waves(SpinodoidDesign(0.5, [90, 0, 0]), 37, seed=2)
    axes = (np.linspace(0, 1, 5), np.linspace(-0.3, 0.7, 4), np.linspace(0.2, 1.4, 3))
    phi = field_on_grid(directions, phases, axes, beta=9.0)
    X = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # (5, 4, 3, 3)
    brute = math.sqrt(2 / 37) * np.cos(9.0 * X @ directions.T + phases).sum(-1)
    np.testing.assert_allclose(phi, brute, atol=1e-12)


def test_field_is_reproducible_and_normalized():
    design = SpinodoidDesign(0.5, [0, 0, 90], seed=11)
    a = gaussian_random_field(design, 24)
    np.testing.assert_array_equal(a, gaussian_random_field(design, 24))
    np.testing.assert_array_equal(a, gaussian_random_field(design, 24, seed=11))
    assert not np.allclose(a, gaussian_random_field(design, 24, seed=12))
    assert a.shape == (24, 24, 24)
    assert abs(a.mean()) < 0.1 and a.std() == pytest.approx(1.0, abs=0.1)


# ----------------------------------------------------------------------------------------------
# solid
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["solid", "shell"])
@pytest.mark.parametrize("rho", [0.3, 0.5, 0.8])
def test_measured_density(kind, rho):
    """Ensemble level (Eq. 3): the realization scatters about rho (isotropic: within 0.03 at
    32^3); the "exact" level hits rho to within one voxel."""
    design = SpinodoidDesign(rho, [0, 0, 90], kind=kind, seed=4)
    n = 32
    ensemble = solid_mask(design, n).mean()
    assert ensemble == pytest.approx(rho, abs=0.03)
    exact = solid_mask(design, n, threshold="exact").mean()
    assert abs(exact - rho) <= 1.0 / n**3


def test_full_density_is_all_solid():
    for kind in ("solid", "shell"):
        assert solid_mask(SpinodoidDesign(1.0, [0, 0, 90], kind=kind), 8).all()


def test_shell_is_a_thickened_zero_level_set():
    design = SpinodoidDesign(0.4, [0, 0, 90], kind="shell", seed=1)
    phi = gaussian_random_field(design, 20)
    shell = solid_mask(design, 20)
    assert np.abs(phi[shell]).max() < np.abs(phi[~shell]).min()


# ----------------------------------------------------------------------------------------------
# homogenization
# ----------------------------------------------------------------------------------------------


def test_homogenize_result_and_full_solid():
    result = homogenize_spinodoid(SpinodoidDesign(0.5, [0, 0, 90]), resolution=12)
    C = result.C
    np.testing.assert_allclose(C, C.T)
    assert np.linalg.eigvalsh(C).min() > 0
    assert result.resolution == 12 and result.seed == 0 and result.boundary == "affine"
    assert result.relative_density == pytest.approx(0.5, abs=0.03)
    assert np.all(np.diag(C) < 0.5 * np.diag(isotropic_stiffness(1.0, 0.3)))  # below Voigt
    full = homogenize_spinodoid(SpinodoidDesign(1.0, [0, 0, 90]), resolution=6)
    np.testing.assert_allclose(full.C, isotropic_stiffness(1.0, 0.3), atol=1e-10)


@pytest.mark.parametrize(
    ("theta", "soft"),
    [((0, 0, 30), [2]), ((30, 30, 0), [0, 1]), ((0, 40, 0), [1])],
)
def test_axis_aligned_cones_are_orthotropic(theta, soft):
    """Waves about e_j make layers normal to e_j: soft along e_j, stiff across; couplings
    outside the orthotropic pattern are noise (a few % of the diagonal at 16^3)."""
    C = homogenize_spinodoid(SpinodoidDesign(0.5, theta), resolution=16).C
    assert couplings(C) < 0.06
    stiff = [i for i in range(3) if i not in soft]
    assert max(C[i, i] for i in soft) < min(C[i, i] for i in stiff)


def test_isotropic_cones_give_nearly_isotropic_stiffness_small():
    C = homogenize_spinodoid(SpinodoidDesign(0.5, [90, 90, 90]), resolution=16).C
    assert zener(C) == pytest.approx(1.0, abs=0.1)
    assert couplings(C) < 0.05


@pytest.mark.slow
def test_isotropic_cones_give_nearly_isotropic_stiffness_64():
    C = homogenize_spinodoid(SpinodoidDesign(0.5, [90, 90, 90]), resolution=64).C
    assert zener(C) == pytest.approx(1.0, abs=0.1)


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["solid", "shell"])
def test_mesh_is_watertight_with_the_requested_size(kind):
    design = SpinodoidDesign(0.5, [0, 0, 90], kind=kind)
    mesh = spinodoid_mesh(design, resolution=24, size=10.0)
    assert mesh.is_watertight and mesh.volume > 0
    np.testing.assert_allclose(mesh.bounds, [[0, 0, 0], [10, 10, 10]], atol=1e-9)
    assert mesh.volume / 1000 == pytest.approx(0.5, abs=0.06)


def test_block_of_cells_and_formats(tmp_path):
    design = SpinodoidDesign(0.6, [0, 0, 90])
    path = export_spinodoid(design, tmp_path / "block.stl", resolution=12, cells=(2, 1, 1), size=5)
    mesh = trimesh.load(str(path), file_type="stl")
    assert mesh.is_watertight
    np.testing.assert_allclose(mesh.bounds, [[0, 0, 0], [10, 5, 5]], atol=1e-4)
    png = export_spinodoid(design, tmp_path / "view.png", resolution=10)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(MetainvError, match="unknown export format"):
        export_spinodoid(design, tmp_path / "x.obj")
    with pytest.raises(MetainvError, match="cells must be"):
        export_spinodoid(design, tmp_path / "x.stl", cells=(0, 1, 1))
    with pytest.raises(MetainvError, match="size must be positive"):
        export_spinodoid(design, tmp_path / "x.stl", size=0)


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


def write(tmp_path, **changes):
    path = tmp_path / "spinodoid.json"
    path.write_text(json.dumps({**BASE, **changes}))
    return path


def test_cli_homogenize(tmp_path):
    path = write(tmp_path, theta=[0, 0, 30])
    result = runner.invoke(app, ["homogenize", str(path), "--json", "--resolution", "10"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"family", "C", "relative_density", "resolution", "threshold"}
    assert data["resolution"] == 10 and 0.4 < data["relative_density"] < 0.6
    assert data["threshold"] == "ensemble"  # paper Eq. 3 unless asked
    exact = runner.invoke(
        app, ["homogenize", str(path), "--json", "--resolution", "10", "--threshold", "exact"]
    )
    assert exact.exit_code == 0, exact.output
    rho = json.loads(exact.stdout)["relative_density"]
    assert abs(rho - BASE["relative_density"]) <= 1 / 10**3  # the exact quantile: one voxel
    bad = runner.invoke(app, ["homogenize", str(path), "--threshold", "median"])
    assert bad.exit_code == 2 and "--threshold must be 'ensemble' or 'exact'" in bad.output
    assert np.linalg.eigvalsh(np.array(data["C"])).min() > 0
    table = runner.invoke(app, ["homogenize", str(path), "--resolution", "8"])
    assert table.exit_code == 0, table.output
    assert "resolution        8" in table.stdout and "relative density" in table.stdout
    assert "strut" not in table.stdout


def test_cli_export(tmp_path):
    path = write(tmp_path)
    out = tmp_path / "part.stl"
    args = ["export", str(path), "--out", str(out), "--size", "20", "--resolution", "12"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    mesh = trimesh.load(str(out), file_type="stl")
    assert mesh.is_watertight and mesh.bounds[1] == pytest.approx([20, 20, 20])


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["homogenize", "{truss}", "--resolution", "8"], "--resolution does not apply"),
        # (--size / --cell-size applies to every family now: a truss export takes a cell size)
        (["export", "{truss}", "--out", "{out}", "--resolution", "8"], "--resolution does not"),
        (["homogenize", "{bad}"], "theta[2] = 100 deg"),
        (["export", "{bad}", "--out", "{out}"], "theta[2] = 100 deg"),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, args, reason):
    from pathlib import Path

    truss = Path(__file__).resolve().parents[1] / "examples" / "designs" / "octet.json"
    names = {"truss": str(truss), "bad": str(write(tmp_path, theta=[0, 0, 100]))}
    names["out"] = str(tmp_path / "x.stl")
    result = runner.invoke(app, [a.format(**names) for a in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0]


@pytest.mark.parametrize(
    "name", ["spinodoid_isotropic", "spinodoid_columnar", "spinodoid_lamellar_shell"]
)
def test_example_designs_load(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "designs" / f"{name}.json"
    design = load_design(path)
    assert solid_mask(design, 8).any()
