"""Print-ready parts: graded lattices clipped to their box, quality gates, matched bases, one
body per written part, and the solid fraction of a spinodoid STL against its rho."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from metainv.cli import app
from metainv.grading import (
    MAX_MERGE_CELLS,
    GradingProblem,
    GradingQualityError,
    box_body,
    enforce_gates,
    graded_lattice,
    local_check,
    quality_gates,
)
from metainv.mesh import count_bodies, fill_cavities, is_watertight_stl, largest_body, levelset_mesh
from metainv.spinodoid.design import SpinodoidDesign
from metainv.spinodoid.export import SOLID_FRACTION_TOL, spinodoid_mesh
from metainv.tensors import rotation_from_angle_axis
from metainv.topopt.materials import get_law
from metainv.topopt.parts import PartOptions, dehomogenize
from metainv.truss.design import TrussDesign, design_to_dict

runner = CliRunner()


def design(cells, rho=0.04, U=(1.0, 1.0, 1.0), angle=0.0):
    R1 = rotation_from_angle_axis(np.float64(np.radians(angle)), np.array([0.0, 0.0, 1.0]))
    return TrussDesign(
        topology=tuple((c, 1) for c in cells),
        relative_density=rho,
        U=np.array(U),
        V=np.ones(3),
        R1=R1,
        R2=np.eye(3),
    )


OCTET = design((2, 2, 2), 0.05)
FAR = design((4, 2, 1), 0.005, U=(1.9, 0.6, 1.0), angle=40.0)


def problem(a, b, match=True, size=(6.0, 3.0, 3.0)):
    return GradingProblem(
        points=[[0.0, size[1] / 2, size[2] / 2], [size[0], size[1] / 2, size[2] / 2]],
        designs=[a, b],
        zeta=0.5,
        body=box_body(size),
        match_bases=match,
    )


def write_designs(tmp_path: Path, *designs: TrussDesign) -> list[str]:
    paths = []
    for i, d in enumerate(designs):
        path = tmp_path / f"d{i}.json"
        path.write_text(json.dumps(design_to_dict(d)))
        paths.append(str(path))
    return paths


def test_graded_stl_stays_in_its_box_and_is_one_body(tmp_path):
    a, b = write_designs(tmp_path, OCTET, design((3, 3, 3), 0.03, U=(1.2, 1.0, 1.0)))
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["grade", "--control", "0,1,1", a, "--control", "3,1,1", b, "--box", "3", "2", "2",
         "--segments", "6", "--no-check", "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    radius = summary["diameter_max"] / 2
    mesh = trimesh.load(out / "graded_lattice.stl")
    assert mesh.is_watertight and count_bodies(mesh) == 1 == summary["stl"]["bodies"]
    assert np.all(mesh.bounds[0] >= -radius * 1.01)
    assert np.all(mesh.bounds[1] <= np.array([3.0, 2.0, 2.0]) + radius * 1.01)
    assert summary["node_bounds"][0] == pytest.approx([0, 0, 0], abs=1e-12)
    assert summary["clipped_struts"] > 0 and summary["gates"]["merge_cells"]["passed"]


@pytest.mark.parametrize("cell_size, mm", [("5mm", 5.0), ("0.4cm", 4.0)])
def test_graded_part_in_mm_with_cell_size(tmp_path, cell_size, mm):
    a, b = write_designs(tmp_path, OCTET, design((3, 3, 3), 0.03, U=(1.2, 1.0, 1.0)))
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["grade", "--control", "0,1,1", a, "--control", "3,1,1", b, "--box", "3", "2", "2",
         "--segments", "6", "--no-check", "--cell-size", cell_size, "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    radius_mm = summary["diameter_max"] / 2 * mm
    mesh = trimesh.load(out / "graded_lattice.stl")
    assert is_watertight_stl(mesh) and count_bodies(mesh) == 1 and summary["stl"]["watertight"]
    extents = mesh.bounds[1] - mesh.bounds[0]
    box_mm = np.array([3.0, 2.0, 2.0]) * mm
    assert np.all(extents <= box_mm + 2.02 * radius_mm)
    assert np.all(extents >= box_mm - 1e-6)  # the clipped lattice reaches every face
    assert summary["length_unit"] == "mm" and summary["cell_size_mm"] == pytest.approx(mm)
    assert np.allclose(summary["stl"]["bounds"], mesh.bounds, atol=1e-4)
    written = json.loads((out / "summary.json").read_text())
    assert written["cell_size_mm"] == pytest.approx(mm)


def test_graded_part_refuses_a_bad_cell_size_before_any_work(tmp_path):
    a, b = write_designs(tmp_path, OCTET, OCTET)
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["grade", "--control", "0,1,1", a, "--control", "3,1,1", b, "--box", "3", "2", "2",
         "--cell-size", "5 parsecs", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--cell-size" in result.output and "expected" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_unclipped_lattice_sticks_out_of_the_box():
    tilted = design((2, 2, 2), 0.05, angle=30.0)
    unclipped = graded_lattice(problem(tilted, tilted, size=(3.3, 2.2, 2.2)), clip=False)
    clipped = graded_lattice(problem(tilted, tilted, size=(3.3, 2.2, 2.2)))
    assert np.any(unclipped.nodes.max(0) > np.array([3.3, 2.2, 2.2]) + 0.1)  # cells stick out
    assert np.all(clipped.nodes.max(0) <= [3.3, 2.2, 2.2]) and clipped.nodes.min() >= 0.0
    assert clipped.n_struts > 0 and clipped.islands_removed >= 0


def test_far_apart_designs_fail_the_gates():
    far = problem(OCTET, FAR)
    lattice = graded_lattice(far)
    gates = {g.name: g for g in quality_gates(far, lattice, local_check(far, 7))}
    assert gates["merge_cells"].value > MAX_MERGE_CELLS and not gates["merge_cells"].passed
    assert not gates["diameter_ratio"].passed
    with pytest.raises(GradingQualityError, match=r"merge_cells .* > 0.25.*--zeta"):
        enforce_gates(tuple(gates.values()))


def test_cli_refuses_a_broken_graded_lattice_with_exit_2(tmp_path):
    a, b = write_designs(tmp_path, OCTET, FAR)
    out = tmp_path / "run"
    args = ["grade", "--control", "0,1.5,1.5", a, "--control", "6,1.5,1.5", b,
            "--box", "6", "3", "3", "--no-stl", "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "quality gates" in result.output and "Traceback" not in result.output
    assert not (out / "graded_lattice.json").exists()
    forced = runner.invoke(app, [*args, "--ignore-gates", "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    gates = json.loads(forced.stdout)["gates"]
    assert gates["merge_cells"]["passed"] is False


def test_rotated_cell_is_graded_through_its_matched_basis():
    turned = design((2, 2, 2), 0.04, angle=80.0)
    plain = design((2, 2, 2), 0.04)
    matched, raw = problem(plain, turned), problem(plain, turned, match=False)
    np.testing.assert_allclose(np.abs(matched.basis_changes[1]).sum(0), 1.0)
    assert not np.allclose(matched.basis_changes[1], np.eye(3))
    good = {g.name: g for g in quality_gates(matched, graded_lattice(matched))}
    bad = {g.name: g for g in quality_gates(raw, graded_lattice(raw))}
    assert all(g.passed for g in good.values()), good
    assert (
        not bad["merge_cells"].passed and bad["merge_cells"].value > 5 * good["merge_cells"].value
    )


def test_islands_are_removed_and_counted_and_cavities_filled():
    x = np.linspace(-1, 7, 41)
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    blob = lambda c, r: np.sqrt((X - c) ** 2 + (Y - 3) ** 2 + (Z - 3) ** 2) - r  # noqa: E731
    field = np.minimum(blob(2.0, 1.5), blob(5.5, 0.5))
    kept = levelset_mesh(field, 0.2, (-1, -1, -1))
    assert kept.bodies == 2 and count_bodies(kept.mesh) == 1
    assert kept.dropped_volume == pytest.approx(0.5**3 / (0.5**3 + 1.5**3), rel=0.1)
    shell = np.maximum(blob(3.0, 2.0), -blob(3.0, 1.0))  # a hollow ball: one body, one cavity
    hollow = levelset_mesh(shell, 0.2, (-1, -1, -1)).mesh
    assert count_bodies(hollow) == 1 and largest_body(hollow)[1] == 1
    filled, removed = fill_cavities(hollow)
    assert removed == 1 and filled.volume > hollow.volume


def test_spinodoid_stl_solid_fraction_matches_rho():
    spinodoid = SpinodoidDesign(0.223, np.array([30.0, 30.0, 0.0]), seed=1)
    raw = spinodoid_mesh(spinodoid, 24, match_density=False)
    mesh = spinodoid_mesh(spinodoid, 24)
    assert abs(raw.metadata["solid_fraction"] - 0.223) > SOLID_FRACTION_TOL  # before the fix
    assert abs(mesh.volume - 0.223) <= SOLID_FRACTION_TOL
    assert mesh.is_watertight and count_bodies(mesh) == 1
    shell = spinodoid_mesh(SpinodoidDesign(0.223, np.array([30.0, 30.0, 0.0]), "shell", seed=1), 24)
    assert abs(shell.metadata["solid_fraction"] - 0.223) <= SOLID_FRACTION_TOL


def test_topopt_gyroid_part_is_one_body(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["topopt", "--problem", "bridge", "--nel", "8", "4", "2", "--material", "gyroid",
         "--volfrac", "0.3", "--max-iter", "4", "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    part = json.loads(result.stdout)["part"]
    mesh = trimesh.load(out / "part.stl")
    assert part["bodies"] == 1 == count_bodies(mesh) and part["watertight"]
    assert part["removed_volume_fraction"] < 0.05
    density = np.load(out / "density.npy")
    every = dehomogenize(density, get_law("gyroid").metadata, PartOptions(keep_islands=True))
    assert count_bodies(every) == part["islands_removed"] + 1


def test_topopt_part_in_mm_with_element_size(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["topopt", "--problem", "bridge", "--nel", "8", "4", "2", "--material", "gyroid",
         "--volfrac", "0.3", "--max-iter", "4", "--element-size", "2.5mm", "--out", str(out),
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    part = json.loads(result.stdout)["part"]
    mesh = trimesh.load(out / "part.stl")
    assert part["length_unit"] == "mm" and part["element_size_mm"] == 2.5
    assert part["watertight"] and is_watertight_stl(mesh) and count_bodies(mesh) == 1
    assert np.allclose(part["bounds"], mesh.bounds, atol=1e-4)
    extents = mesh.bounds[1] - mesh.bounds[0]
    assert np.all(extents <= np.array([8, 4, 2]) * 2.5 + 1e-6)
    assert extents[0] > 0.5 * 8 * 2.5  # the part spans the bridge in mm, not in elements
    bad = runner.invoke(
        app,
        ["topopt", "--nel", "8", "4", "2", "--element-size", "-1mm", "--out",
         str(tmp_path / "bad")],
    )  # fmt: skip
    assert bad.exit_code == 2 and "--element-size" in bad.output
    assert not (tmp_path / "bad").exists()


def test_every_exported_part_is_one_watertight_body(tmp_path):
    import metainv
    from metainv.spinodoid.graded import grade_spinodoid

    examples = Path(__file__).resolve().parents[1] / "examples" / "designs"
    for name, options in (
        ("compound.json", {"segments": 6}),
        ("gyroid_sheet.json", {"resolution": 16}),
        ("spinodoid_isotropic.json", {"resolution": 24}),
    ):
        path = metainv.export(examples / name, tmp_path / f"{name}.stl", **options)
        mesh = trimesh.load(path)
        assert mesh.is_watertight and count_bodies(mesh) == 1, name
    SP = {"family": "spinodoid", "theta": [0, 0, 90], "kind": "solid"}
    controls = [
        {"position": [0, 0.5, 0.5], "design": SP | {"relative_density": 0.4}},
        {"position": [2, 0.5, 0.5], "design": SP | {"relative_density": 0.6, "theta": [90, 0, 0]}},
    ]
    summary = grade_spinodoid(controls, (2, 1, 1), 0.5, tmp_path / "sp", resolution=16)
    mesh = trimesh.load(tmp_path / "sp" / "graded.stl")
    assert mesh.is_watertight and count_bodies(mesh) == 1 == summary["stl"]["bodies"]
