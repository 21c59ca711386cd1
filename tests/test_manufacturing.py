"""Physical units and printability: --cell-size in mm for every family, feature sizes
measured on the written STL and against geometry, the process table, the printable threshold,
the design constraint and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

import metainv
from metainv.cli import app
from metainv.errors import MetainvError
from metainv.manufacturing import (
    PrintConstraint,
    check_features,
    design_features,
    get_process,
    load_processes,
    parse_length,
    periodic_strut_gap,
    phase_thickness,
    segment_distances,
    smallest_cell_size,
)
from metainv.tpms.design import TpmsDesign
from metainv.truss.design import TrussDesign, deformation_gradient, sample_designs
from metainv.truss.export import lattice_graph
from metainv.truss.lattice import periodic_lattice

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "designs"


def truss(cell: int, rho: float = 0.05, **changes) -> TrussDesign:
    params = {
        "topology": ((cell, 1),) * 3,
        "relative_density": rho,
        "U": [1.0, 1.0, 1.0],
        "V": [1.0, 1.0, 1.0],
        "R1": np.eye(3),
        "R2": np.eye(3),
    }
    params.update(changes)
    return TrussDesign(**params)


# -- units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mm"),
    [("5mm", 5.0), ("0.5 mm", 0.5), ("5e-3m", 5.0), ("5", 5.0), ("0.4cm", 4.0), ("250um", 0.25)],
)
def test_cell_sizes_are_read_in_millimetres(text: str, mm: float) -> None:
    assert parse_length(text) == pytest.approx(mm)


@pytest.mark.parametrize("text", ["5parsec", "mm", "five mm", "-1mm", "0", "nan mm", ""])
def test_bad_cell_sizes_are_refused(text: str) -> None:
    with pytest.raises(MetainvError, match="--cell-size"):
        parse_length(text)


# -- the process table -------------------------------------------------------------------------


def test_process_table_is_sane() -> None:
    processes = load_processes()
    assert {"lpbf-ti64", "lpbf-316l", "sla-resin", "fdm-pla", "sls-pa12"} <= set(processes)
    for process in processes.values():
        for value in (process.min_strut_mm, process.min_wall_mm, process.min_pore_mm):
            assert 0.05 <= value <= 5.0  # mm: a printer's features, not metres or microns
        assert 0.0 <= process.self_supporting_angle_deg < 90.0
        assert process.source.strip() and process.label.strip()
    # a nozzle is coarser than a laser spot
    assert processes["fdm-pla"].min_strut_mm > processes["lpbf-ti64"].min_strut_mm
    with pytest.raises(MetainvError, match="unknown process 'laser'"):
        get_process("laser")


# -- feature geometry against oracles ----------------------------------------------------------


def test_segment_distance_oracles() -> None:
    p0 = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0]], float)
    p1 = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0]], float)
    q0 = np.array([[0, 1, 0], [2, 0, 0], [0.5, -1, 2]], float)  # parallel, collinear, skew
    q1 = np.array([[1, 1, 0], [3, 0, 0], [0.5, 1, 2]], float)
    assert segment_distances(p0, p1, q0, q1) == pytest.approx([1.0, 1.0, 2.0])


def brute_force_gap(design: TrussDesign, diameter: float) -> float:
    """Every pair of struts of the cell and its 26 neighbours, node sharing by identity."""
    lattice = periodic_lattice(design.topology)
    F = deformation_gradient(design)
    best = math.inf
    for a in range(lattice.n_struts):
        ends_a = {
            (lattice.struts[a, 0], (0, 0, 0)),
            (lattice.struts[a, 1], tuple(lattice.offsets[a])),
        }
        p0 = F @ lattice.nodes[lattice.struts[a, 0]]
        p1 = F @ (lattice.nodes[lattice.struts[a, 1]] + lattice.offsets[a])
        for b in range(lattice.n_struts):
            for c in np.ndindex(3, 3, 3):
                shift = np.array(c) - 1
                ends_b = {
                    (lattice.struts[b, 0], tuple(shift)),
                    (lattice.struts[b, 1], tuple(shift + lattice.offsets[b])),
                }
                if ends_a & ends_b:
                    continue
                q0 = F @ (lattice.nodes[lattice.struts[b, 0]] + shift)
                q1 = F @ (lattice.nodes[lattice.struts[b, 1]] + lattice.offsets[b] + shift)
                gap = segment_distances(p0[None], p1[None], q0[None], q1[None])[0] - diameter
                if gap > 0:
                    best = min(best, gap)
    return best


def test_truss_features_of_simple_cubic_are_analytic() -> None:
    # simple cubic: rho = 3 pi d^2 / 4 (struts of length 1), pore = 1 - d, struts at 0 and 90 deg
    features = design_features(truss(1, rho=0.05))
    d = math.sqrt(4 * 0.05 / (3 * math.pi))
    assert features.strut_diameter == pytest.approx(d)
    assert features.min_pore == pytest.approx(1 - d)
    assert sorted(np.round(features.strut_angles_deg)) == [0.0, 0.0, 90.0]


def test_truss_pore_matches_brute_force_on_stretched_rotated_lattices() -> None:
    for design in sample_designs(4, np.random.default_rng(3)):
        lattice = periodic_lattice(design.topology)
        if lattice.n_struts > 40:  # keep the brute force fast
            continue
        features = design_features(design)
        scale = features.design_cell_size
        expected = brute_force_gap(design, features.strut_diameter * scale)
        assert features.min_pore * scale == pytest.approx(expected, rel=1e-9)
    bcc = periodic_lattice(truss(3).topology)
    direct = periodic_strut_gap(bcc.nodes, bcc.struts, bcc.offsets, np.eye(3), 0.1)
    assert direct == pytest.approx(brute_force_gap(truss(3), 0.1))


def test_gyroid_sheet_wall_matches_density_over_surface_area() -> None:
    # a thin sheet around the gyroid: wall ~ rho / (area per volume), area ~ 3.09 per unit cell;
    # the voxel measurement rounds down by up to about a voxel (1/40): conservative
    features = design_features(TpmsDesign("gyroid", "sheet", 0.3))
    assert 0.3 / 3.09 - 1.6 / 40 <= features.min_wall <= 0.3 / 3.09
    assert features.min_pore > features.min_wall


@pytest.mark.parametrize("thickness", [1, 3, 5, 7, 8])
def test_local_thickness_of_a_slab_is_its_thickness(thickness: int) -> None:
    slab = np.zeros((32, 32, 32), dtype=bool)
    slab[:, :, 10 : 10 + thickness] = True  # periodic in x and y
    # odd widths exactly (balls are centred on voxels), even ones rounded down by one voxel
    expected = thickness if thickness % 2 else thickness - 1
    assert phase_thickness(slab) == pytest.approx(expected)
    assert phase_thickness(~slab) >= min(32 - thickness, 31) - 1  # capped at half a period


# -- printability threshold --------------------------------------------------------------------


def test_lpbf_prints_at_5mm_but_not_at_half_a_millimetre_with_the_threshold() -> None:
    design = truss(1, rho=0.05)  # simple cubic: d = 0.146 L, pore 0.854 L
    process = get_process("lpbf-ti64")
    at5 = metainv.check_print(design, "5mm", "lpbf-ti64")
    at05 = metainv.check_print(design, "0.5mm", "lpbf-ti64")
    assert at5.printable is True and at5.failures == ()
    assert at05.printable is False and any("strut diameter" in f for f in at05.failures)
    threshold = at05.smallest_cell_size_mm
    assert threshold == pytest.approx(process.min_strut_mm / math.sqrt(4 * 0.05 / (3 * math.pi)))
    assert 0.5 < threshold < 5
    features = design_features(design)
    assert check_features(features, threshold * (1 + 1e-9), process).printable
    assert not check_features(features, threshold * (1 - 1e-6), process).printable
    assert smallest_cell_size(features, process) == threshold


def test_overhang_share_counts_struts_below_the_self_supporting_angle() -> None:
    check = metainv.check_print(truss(1), "5mm", "lpbf-ti64")
    assert check.overhang_share == pytest.approx(2 / 3)  # two of the three cube struts lie flat
    assert metainv.check_print(truss(1), "5mm", "sls-pa12").overhang_share == 0.0


def test_print_constraint_keeps_only_printable_designs_and_names_the_size_that_works() -> None:
    designs = sample_designs(30, np.random.default_rng(0))
    constraint = PrintConstraint(get_process("lpbf-ti64"), 5.0)
    kept = [d for d in designs if constraint(d)]
    for design in kept:
        assert metainv.check_print(design, "5mm", "lpbf-ti64").printable
    tiny = PrintConstraint(get_process("lpbf-ti64"), 0.05)
    assert not any(tiny(d) for d in designs[:5])
    error = tiny.refusal(designs[:5])
    best = min(smallest_cell_size(design_features(d), tiny.process) for d in designs[:5])
    assert f"{best:.3g} mm" in str(error)


# -- export in millimetres ---------------------------------------------------------------------


def test_truss_export_at_5mm_has_the_expected_box_and_strut_diameter(tmp_path: Path) -> None:
    out = tmp_path / "octet.stl"
    args = ["export", str(EXAMPLES / "octet.json"), "--out", str(out), "--cells", "2", "2", "2"]
    result = runner.invoke(app, [*args, "--cell-size", "5mm", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    d = report["strut_diameter_mm"]
    features = design_features(metainv.load_design(EXAMPLES / "octet.json")[1])
    assert d == pytest.approx(5 * features.strut_diameter)
    mesh = trimesh.load(out, file_type="stl")
    # nodes at the corners of a 10 mm cube, joint spheres and struts of diameter d around them
    assert mesh.extents == pytest.approx([10 + d, 10 + d, 10 + d], rel=2e-3)
    assert report["bounding_box_mm"] == pytest.approx(mesh.extents.tolist())
    # the strut diameter measured on the STL: cut a strut lying in the bottom face (z = 0) across
    # its middle by a plane x = const; its section's height (along z) is the diameter
    graph = lattice_graph(metainv.load_design(EXAMPLES / "octet.json")[1], (2, 2, 2), scale=5.0)
    ends = graph.nodes[graph.struts]
    flat = np.flatnonzero(
        (np.abs(ends[:, :, 2]).max(1) < 1e-9) & (np.abs(ends[:, 1, 0] - ends[:, 0, 0]) > 1)
    )
    middle = ends[flat[0]].mean(0)
    section = mesh.section(plane_origin=middle, plane_normal=[1, 0, 0])
    loop = min(section.discrete, key=lambda p: np.linalg.norm(p.mean(0) - middle))
    assert np.ptp(loop[:, 2]) == pytest.approx(d, rel=0.03)


def test_stretched_truss_block_fits_its_cell_size(tmp_path: Path) -> None:
    design = truss(2, U=[2.0, 0.6, 1.0])
    out = tmp_path / "stretched.stl"
    metainv.export(design, out, (1, 1, 1), cell_size="4 mm")
    extents = trimesh.load(out, file_type="stl").extents
    d = 4 * design_features(design).strut_diameter
    assert extents.max() == pytest.approx(4 + d, rel=1e-3)  # the longest cell edge is 4 mm
    assert extents[1] == pytest.approx(4 * 0.6 / 2.0 + d, rel=1e-3)


def test_level_set_export_at_a_cell_size_is_in_millimetres(tmp_path: Path) -> None:
    out = tmp_path / "gyroid.stl"
    args = ["export", str(EXAMPLES / "gyroid_sheet.json"), "--out", str(out), "--cell-size", "3"]
    result = runner.invoke(app, [*args, "--resolution", "16", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["cell_size_mm"] == 3.0 and report["min_wall_mm"] > 0
    assert max(report["bounding_box_mm"]) == pytest.approx(3.0, rel=0.06)


def test_export_at_half_a_millimetre_warns_and_strict_refuses(tmp_path: Path) -> None:
    args = ["export", str(EXAMPLES / "simple_cubic.json"), "--process", "lpbf-ti64"]
    out = tmp_path / "sc.stl"
    warned = runner.invoke(app, [*args, "--out", str(out), "--cell-size", "0.5mm"])
    assert warned.exit_code == 0 and out.is_file()
    assert (
        "warning: not printable" in warned.output
        and "smallest printable cell size" in warned.output
    )
    strict_out = tmp_path / "strict.stl"
    refused = runner.invoke(
        app, [*args, "--out", str(strict_out), "--cell-size", "0.5mm", "--strict"]
    )
    assert refused.exit_code == 2 and not strict_out.exists()
    assert refused.output.count("\n") == 1 and "smallest printable cell size" in refused.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cell-size", "5parsec"], "unknown length unit 'parsec'"),
        (["--cell-size", "5mm", "--process", "laser"], "unknown process 'laser'"),
        (["--process", "lpbf-ti64"], "give --cell-size too"),
        (["--cell-size", "5mm", "--strict"], "give --process too"),
    ],
)
def test_bad_print_options_are_one_line_errors(tmp_path: Path, extra, message) -> None:
    out = tmp_path / "x.stl"
    result = runner.invoke(app, ["export", str(EXAMPLES / "octet.json"), "--out", str(out), *extra])
    assert result.exit_code == 2
    assert message in result.output and result.output.count("\n") == 1
    assert "Traceback" not in result.output and not out.exists()


def test_process_list_and_check_commands() -> None:
    listed = runner.invoke(app, ["process", "list", "--json"])
    assert listed.exit_code == 0
    assert {row["name"] for row in json.loads(listed.output)} == set(load_processes())
    design = str(EXAMPLES / "simple_cubic.json")
    ok = runner.invoke(
        app, ["process", "check", design, "--process", "fdm-pla", "--cell-size", "20mm"]
    )
    assert ok.exit_code == 0 and "printable          yes" in ok.output
    no = runner.invoke(
        app, ["process", "check", design, "--process", "fdm-pla", "--cell-size", "2mm"]
    )
    assert no.exit_code == 1 and "printable          NO" in no.output


# -- design with a cell size and a process -----------------------------------------------------


def test_design_keeps_printable_candidates_and_records_units(tmp_path: Path) -> None:
    out = tmp_path / "designs"
    args = ["design", "bone3", "--unit", "GPa", "--base-modulus", "114GPa", "--out", str(out)]
    fast = ["--samples", "40", "--no-verify", "--top", "2", "--library-neighbours", "0"]
    result = runner.invoke(app, [*args, *fast, "--cell-size", "30mm", "--process", "fdm-pla"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "designs.json").read_text())
    assert document["provenance"]["unit"] == "GPa"
    assert document["provenance"]["base_modulus_pa"] == pytest.approx(114e9)
    assert (
        document["print"]["cell_size_mm"] == 30.0
        and document["print"]["process"]["name"] == "fdm-pla"
    )
    for entry in document["candidates"]:
        assert entry["print"]["printable"] is True
        assert entry["print"]["strut_diameter_mm"] >= 1.0
        mesh = trimesh.load(out / entry["stl"], file_type="stl")
        assert 2 * 30 <= mesh.extents.max() <= 2 * 30 + 1.01 * entry["print"]["strut_diameter_mm"]
    refused = runner.invoke(
        app,
        [*args[:-1], str(tmp_path / "none"), *fast, "--cell-size", "0.5mm", "--process", "fdm-pla"],
    )
    assert refused.exit_code == 2 and "smallest cell size at which one" in refused.output
    assert refused.output.count("\n") == 1


# -- moduli in the user's unit -------------------------------------------------------------------


def test_surfaces_are_drawn_in_the_targets_unit_on_request(tmp_path: Path) -> None:
    from metainv.family import modulus_scale, plot_unit

    assert modulus_scale("GPa", 114e9) == (pytest.approx(114.0), "E(d) (GPa)")
    assert modulus_scale("mpa", 2e9) == (pytest.approx(2000.0), "E(d) (MPa)")
    assert modulus_scale("normalized", 114e9) == (1.0, "E(d) / E_b")
    assert plot_unit({"unit": "GPa", "base_modulus_pa": 114e9})[1] == "E(d) (GPa)"
    assert plot_unit({}) == (1.0, "E(d) / E_b")
    target = tmp_path / "normalized.json"
    target.write_text(json.dumps({"C": (0.01 * np.eye(6) + 0.001).tolist()}))
    refused = runner.invoke(
        app,
        [
            "stiffness",
            "surface",
            str(target),
            "--plot-unit",
            "GPa",
            "--out",
            str(tmp_path / "s.png"),
        ],
    )
    assert refused.exit_code == 2 and "needs the base modulus" in refused.output
    gpa = ["--unit", "GPa", "--base-modulus", "114GPa", "--plot-unit", "GPa"]
    drawn = runner.invoke(
        app, ["stiffness", "surface", "bone3", *gpa, "--out", str(tmp_path / "bone3.png")]
    )
    assert drawn.exit_code == 0 and (tmp_path / "bone3.png").stat().st_size > 0
