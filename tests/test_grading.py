"""Functionally graded truss lattices (SI Sec. 5): geometry, physics, outputs, CLI, bad input."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from metainv.cli import app
from metainv.errors import DesignError, MetainvError
from metainv.family import get_family, register_family, unregister_family
from metainv.grading import (
    GradingProblem,
    box_body,
    graded_lattice,
    graded_mesh,
    load_control_design,
    local_cell,
    local_check,
    quality_gates,
    rbf_weights,
    solve_projection_functions,
    stl_body,
    superposed_cell,
)
from metainv.tensors import nmse, rotation_from_angle_axis
from metainv.truss.compound import compound_graph
from metainv.truss.design import TrussDesign, deformation_gradient, design_to_dict
from metainv.truss.export import lattice_graph
from metainv.truss.homogenize import homogenize, homogenize_lattice, lattice_stiffness
from metainv.truss.lattice import periodic_lattice, strut_diameter

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "grading"
runner = CliRunner()


def design(cells, rho=0.04, U=(1.0, 1.0, 1.0), V=(1.0, 1.0, 1.0), R1=None, R2=None):
    return TrussDesign(
        topology=tuple((c, 1) for c in cells),
        relative_density=rho,
        U=np.array(U),
        V=np.array(V),
        R1=np.eye(3) if R1 is None else R1,
        R2=np.eye(3) if R2 is None else R2,
    )


OCTET = design((2, 2, 2), 0.05)
BCC = design((3, 3, 3), 0.03, V=(1.2, 1.0, 1.0))
ROTATED = design(
    (4, 2, 1),
    0.03,
    U=(1.0, 1.3, 0.8),
    V=(1.1, 1.0, 0.9),
    R1=rotation_from_angle_axis(np.float64(0.4), np.array([1.0, 2.0, 2.0]) / 3),
    R2=rotation_from_angle_axis(np.float64(-0.3), np.array([0.0, 0.6, 0.8])),
)


def two_point_problem(a, b, size=(10.0, 4.0, 4.0), zeta=0.5):
    return GradingProblem(
        points=[[0.0, 0.0, 0.0], [size[0], 0.0, 0.0]],
        designs=[a, b],
        zeta=zeta,
        body=box_body(size),
    )


@pytest.fixture(scope="module")
def octet_bcc():
    problem = two_point_problem(OCTET, BCC)
    return problem, graded_lattice(problem)


# ------------------------------------------------------------------------------------------
# SI Eqs. 14-17


def test_two_point_weights_are_si_eq17():
    """For x_1 = 0, x_2 = L on the x1 axis, N_2 is lambda(x1) of SI Eq. 17."""
    L, zeta = 6.0, 0.5
    x = np.linspace(-1.0, 7.0, 33)
    points = np.stack([x, np.full_like(x, 0.7), np.full_like(x, -0.2)], axis=1)
    weights = rbf_weights(points, np.array([[0.0, 0.7, -0.2], [L, 0.7, -0.2]]), zeta)
    lam = np.exp(-zeta * (x - L) ** 2) / (np.exp(-zeta * x**2) + np.exp(-zeta * (x - L) ** 2))
    np.testing.assert_allclose(weights[:, 1], lam, rtol=1e-12)
    np.testing.assert_allclose(weights.sum(1), 1.0)
    far = rbf_weights(np.array([[1e4, 0, 0]]), np.array([[0.0, 0, 0], [1.0, 0, 0]]), 1.0)
    np.testing.assert_allclose(far, [[0.0, 1.0]])  # no 0/0 far from every control point


def test_projection_functions_solve_si_eq13():
    """Uniform basis: phi = A^-1 (x - x0) exactly; graded: grad phi ~ A(x)^-1 in the bulk."""
    uniform = two_point_problem(ROTATED, ROTATED, size=(4.0, 3.0, 3.0))
    field = solve_projection_functions(uniform)
    x = np.random.default_rng(0).uniform(0.0, 3.0, size=(50, 3))
    phi, jacobian = field.evaluate(x)
    A_inv = np.linalg.inv(deformation_gradient(ROTATED))
    np.testing.assert_allclose(phi, x @ A_inv.T, atol=1e-9)
    np.testing.assert_allclose(jacobian, np.broadcast_to(A_inv, jacobian.shape), atol=1e-9)

    graded = two_point_problem(OCTET, BCC)
    field = solve_projection_functions(graded)
    bulk = np.array([[1.0, 2.0, 2.0], [9.0, 2.0, 2.0], [8.5, 1.0, 3.0]])
    _, jacobian = field.evaluate(bulk)
    np.testing.assert_allclose(jacobian, np.linalg.inv(graded.basis(bulk)), atol=0.03)


# ------------------------------------------------------------------------------------------
# acceptance: identical designs reproduce the tessellated cell


def test_identical_designs_reproduce_the_tessellation():
    stretched = design((2, 5, 1), 0.04, U=(1.2, 1.0, 0.8))
    cells = (5, 3, 2)
    size = (1.2 * cells[0], 1.0 * cells[1], 0.8 * cells[2])
    lattice = graded_lattice(two_point_problem(stretched, stretched, size))
    reference = lattice_graph(stretched, cells)
    assert lattice.n_nodes == len(reference.nodes)
    assert lattice.n_struts == len(reference.struts)
    distance, index = cKDTree(reference.nodes).query(lattice.nodes)
    assert distance.max() < 1e-8
    assert len(np.unique(index)) == lattice.n_nodes
    mapped = np.sort(index[lattice.struts], axis=1)
    assert {tuple(s) for s in mapped.tolist()} == {tuple(s) for s in reference.struts.tolist()}
    np.testing.assert_allclose(lattice.diameters, reference.diameter, rtol=1e-12)
    assert lattice.max_merge_distance < 1e-8


def test_identical_rotated_designs_give_translates_of_the_cell():
    lattice = graded_lattice(two_point_problem(ROTATED, ROTATED, (5.0, 4.0, 4.0)), clip=False)
    F = deformation_gradient(ROTATED)
    cell = compound_graph(ROTATED.topology)
    reference = np.linalg.solve(F, lattice.nodes.T).T  # a lattice point at the box corner
    wrapped = (reference[:, None, :] - cell.nodes[None, :, :] + 0.5) % 1.0 - 0.5
    assert np.linalg.norm(wrapped, axis=2).min(axis=1).max() < 1e-8
    vectors = reference[lattice.struts[:, 1]] - reference[lattice.struts[:, 0]]
    cell_vectors = cell.nodes[cell.struts[:, 1]] - cell.nodes[cell.struts[:, 0]]
    both = np.concatenate([cell_vectors, -cell_vectors])
    assert cKDTree(both).query(vectors)[0].max() < 1e-8
    assert len(lattice.centres) > 0 and lattice.max_merge_distance < 1e-8


# ------------------------------------------------------------------------------------------
# acceptance: dissimilar designs


@pytest.mark.parametrize("case", ["octet-bcc", "cubic-honeycomb"])
def test_dissimilar_designs_are_connected_and_unique(octet_bcc, case):
    """No dangling strut ends inside, no duplicate nodes or struts. The simple-cubic to
    honeycomb case leaves 4 interior nodes of degree 1 before the dangling struts are pruned."""
    if case == "octet-bcc":
        problem, lattice = octet_bcc
    else:
        problem = two_point_problem(design((1, 1, 1)), design((7, 7, 7)), size=(6.0, 2.0, 2.0))
        lattice = graded_lattice(problem)
    degree = lattice.degrees
    assert degree.min() >= 1
    assert ((degree >= 2) | lattice.boundary).all(), "dangling strut end inside the lattice"
    assert not lattice.boundary.all() and lattice.boundary.any()
    pairs = cKDTree(lattice.nodes).query_pairs(1e-6 * problem.cell_size)
    assert len(pairs) == 0
    assert len(np.unique(np.sort(lattice.struts, 1), axis=0)) == lattice.n_struts
    assert (lattice.diameters > 0).all()
    # both topologies are present, each on its side
    side = lattice.weights.argmax(1)
    assert (side == 0).sum() > 50 and (side == 1).sum() > 50


def test_far_cells_match_their_control_design(octet_bcc):
    """Cells more than 3/sqrt(zeta) from the transition: FE NMSE < 2 % against their control
    design, and the strut diameters there are the control's."""
    problem, lattice = octet_bcc
    C = [homogenize(d).C for d in problem.designs]
    middle = 0.5 * (problem.points[0] + problem.points[1])
    direction = problem.points[1] - problem.points[0]
    direction /= np.linalg.norm(direction)
    offset = (lattice.centres.positions - middle) @ direction
    far = np.abs(offset) > 3 / np.sqrt(problem.zeta)
    assert far.sum() >= 16
    errors = []
    for x, side in zip(lattice.centres.positions[far], offset[far] > 0, strict=True):
        cell = local_cell(problem, x)
        local = lattice_stiffness(cell.lattice, cell.lattice_vectors, cell.diameters)
        errors.append(float(nmse(C[int(side)], local)))
    assert max(errors) < 0.02
    for index, d in enumerate(problem.designs):
        F = deformation_gradient(d)
        expected = strut_diameter(periodic_lattice(d.topology), F, d.relative_density)
        mid = 0.5 * (lattice.nodes[lattice.struts[:, 0]] + lattice.nodes[lattice.struts[:, 1]])
        near = np.abs(mid[:, 0] - problem.points[index, 0]) < 1.0
        np.testing.assert_allclose(lattice.diameters[near], expected, rtol=1e-6)


def test_transition_cell_superposes_both_topologies():
    """At the midpoint the local cell has both strut sets at half their diameters (SI Eq. 16)."""
    problem = two_point_problem(OCTET, BCC)
    cell = superposed_cell(problem.designs)
    sample = local_cell(problem, np.array([5.0, 1.0, 1.0]), cell=cell)
    d = cell.periodic_diameters.max(0)
    assert sample.lattice.n_struts == cell.periodic.n_struts
    np.testing.assert_allclose(sample.weights, [0.5, 0.5])
    np.testing.assert_allclose(np.unique(np.round(sample.diameters, 12)), np.sort(d / 2))
    np.testing.assert_allclose(sample.lattice_vectors, problem.bases.mean(0))


def test_superposed_cell_keeps_each_design_complete():
    """Every design's struts are found in the superposed cell: equal total lengths per design."""
    designs = [OCTET, design((1, 1, 1)), design((6, 7, 3))]
    cell = superposed_cell(designs)
    length = np.linalg.norm(
        cell.graph.nodes[cell.graph.struts[:, 1]] - cell.graph.nodes[cell.graph.struts[:, 0]],
        axis=1,
    )
    plength = np.linalg.norm(
        cell.periodic.nodes[cell.periodic.struts[:, 1]]
        + cell.periodic.offsets
        - cell.periodic.nodes[cell.periodic.struts[:, 0]],
        axis=1,
    )
    for i, d in enumerate(designs):
        graph = compound_graph(d.topology)
        own = np.linalg.norm(
            graph.nodes[graph.struts[:, 1]] - graph.nodes[graph.struts[:, 0]], axis=1
        )
        assert length[cell.diameters[:, i] > 0].sum() == pytest.approx(own.sum(), rel=1e-12)
        lattice = periodic_lattice(d.topology)
        own_p = np.linalg.norm(
            lattice.nodes[lattice.struts[:, 1]]
            + lattice.offsets
            - lattice.nodes[lattice.struts[:, 0]],
            axis=1,
        )
        assert plength[cell.periodic_diameters[:, i] > 0].sum() == pytest.approx(
            own_p.sum(), rel=1e-12
        )


def test_lattice_stiffness_matches_uniform_homogenization():
    lattice = periodic_lattice(ROTATED.topology)
    F = deformation_gradient(ROTATED)
    d = float(strut_diameter(lattice, F, ROTATED.relative_density))
    expected = homogenize_lattice(lattice, F, d, reduce_cell=False)
    np.testing.assert_allclose(
        lattice_stiffness(lattice, F, np.full(lattice.n_struts, d)),
        expected,
        rtol=1e-10,
        atol=1e-14,
    )


# ------------------------------------------------------------------------------------------
# mesh and bodies


def edge_manifold(mesh: trimesh.Trimesh) -> bool:
    edges = np.sort(mesh.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return bool((counts == 2).all())


def test_graded_stl_is_watertight():
    lattice = graded_lattice(two_point_problem(OCTET, BCC, size=(4.0, 1.0, 1.0)))
    mesh = graded_mesh(lattice, segments=6)
    stl = trimesh.load(io.BytesIO(trimesh.exchange.stl.export_stl(mesh)), file_type="stl")
    assert stl.is_watertight and edge_manifold(stl)
    cylinders = np.sum(np.pi * lattice.diameters**2 / 4 * lattice.strut_lengths)
    assert 0.5 * cylinders < stl.volume < 1.5 * cylinders


def test_stl_body_restricts_the_cells(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=2.5)
    sphere.apply_translation([3.0, 3.0, 3.0])
    path = tmp_path / "ball.stl"
    sphere.export(path)
    body = stl_body(path)
    problem = GradingProblem([[1.5, 3.0, 3.0], [4.5, 3.0, 3.0]], [OCTET, OCTET], 0.5, body)
    lattice = graded_lattice(problem)
    assert np.linalg.norm(lattice.nodes - 3.0, axis=1).max() < 2.5 + 1e-6  # clipped to it
    radius = np.linalg.norm(lattice.centres.positions - 3.0, axis=1)
    assert radius.max() < 2.5 + np.sqrt(3) / 2 and len(lattice.centres) > 20
    assert len(lattice.centres) < 0.7 * 8**3  # far fewer than the padded bounding box holds
    with pytest.raises(MetainvError, match="outside the body"):
        GradingProblem([[0.2, 0.2, 0.2]], [OCTET], 0.5, body)


# ------------------------------------------------------------------------------------------
# bad input


def test_bad_input_gets_clear_errors(tmp_path):
    with pytest.raises(MetainvError, match="outside the body"):
        GradingProblem([[0.0, 0.0, 0.0], [11.0, 0.0, 0.0]], [OCTET, BCC], 0.5, box_body([10, 4, 4]))
    for zeta in (0.0, -1.0, float("nan")):
        with pytest.raises(MetainvError, match="zeta must be positive"):
            two_point_problem(OCTET, BCC, zeta=zeta)
    bad = design_to_dict(OCTET) | {"colour": "red"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(DesignError, match=r"bad\.json: unknown key 'colour'"):
        load_control_design(path)
    with pytest.raises(MetainvError, match="positive edge lengths"):
        box_body([10, 0, 4])
    flipped = design(
        (2, 2, 2), R2=rotation_from_angle_axis(np.float64(np.pi), np.array([0.0, 0, 1]))
    )
    matched = two_point_problem(OCTET, flipped)  # the octet is symmetric under the flip
    np.testing.assert_allclose(matched.bases[1], matched.bases[0], atol=1e-12)
    with pytest.raises(MetainvError, match="degenerates"):
        GradingProblem(
            [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]],
            [OCTET, flipped],
            0.5,
            box_body([10.0, 4.0, 4.0]),
            match_bases=False,
        )


def test_designs_json_gives_the_best_candidate(tmp_path):
    document = {
        "target": np.eye(6).tolist(),
        "candidates": [
            {"design": design_to_dict(OCTET), "nmse_fe": 0.2},
            {"design": design_to_dict(BCC), "nmse_fe": 0.01},
        ],
    }
    path = tmp_path / "designs.json"
    path.write_text(json.dumps(document))
    assert load_control_design(path) == BCC


# ------------------------------------------------------------------------------------------
# CLI and the README example


def test_cli_writes_every_output(tmp_path):
    a, b = tmp_path / "octet.json", tmp_path / "bcc.json"
    a.write_text(json.dumps(design_to_dict(OCTET)))
    b.write_text(json.dumps(design_to_dict(BCC)))
    out = tmp_path / "out"
    args = ["grade", "--control", "0,0,0", str(a), "--control", "3,0,0", str(b)]
    result = runner.invoke(
        app, [*args, "--box", "3", "1", "1", "--segments", "5", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    for name in (
        "graded_lattice.json",
        "graded_lattice.stl",
        "graded_lattice.vtu",
        "graded_lattice.png",
        "local_check.png",
        "summary.json",
    ):
        assert (out / name).stat().st_size > 0
    data = json.loads((out / "graded_lattice.json").read_text())
    assert len(data["nodes"]) == summary["nodes"] and len(data["struts"]) == summary["struts"]
    assert summary["stl"]["watertight"] and summary["interior_dangling_nodes"] == 0
    import meshio

    vtu = meshio.read(out / "graded_lattice.vtu")
    assert len(vtu.cells_dict["line"]) == summary["struts"]
    np.testing.assert_allclose(vtu.cell_data["diameter"][0], data["diameters"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--control", "0,0,0", "A", "--control", "12,0,0", "B", "--box", "10", "4", "4"],
            "outside the body",
        ),
        (
            [
                "--control",
                "0,0,0",
                "A",
                "--control",
                "9,0,0",
                "B",
                "--box",
                "10",
                "4",
                "4",
                "--zeta",
                "0",
            ],
            "zeta must be positive",
        ),
        (["--control", "0,0", "A", "--box", "10", "4", "4"], "three comma-separated"),
        (
            ["--control", "0,0,0", "A", "--control", "1,0,0", "--box", "10", "4", "4"],
            "2 --control points but 1 design",
        ),
        (["--control", "0,0,0", "BAD", "--box", "10", "4", "4"], "unknown key 'colour'"),
        (["--control", "0,0,0", "A"], "either --box"),
        (["--control", "0,0,0", "A", "--box", "1", "1", "1", "--family", "foam"], "unknown family"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path, args, message):
    files = {"A": OCTET, "B": BCC}
    paths = {}
    for name, d in files.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(design_to_dict(d)))
    paths["BAD"] = tmp_path / "BAD.json"
    paths["BAD"].write_text(json.dumps(design_to_dict(OCTET) | {"colour": "red"}))
    argv = [str(paths[a]) if a in paths else a for a in args]
    result = runner.invoke(app, ["grade", *argv, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_grade_dispatches_through_the_family_registry(tmp_path):
    seen = {}

    def handler(controls, box, zeta, out, **options):
        seen.update(controls=controls, box=box, zeta=zeta, out=out, options=set(options))
        return {"files": {}}

    dummy = replace(get_family("truss"), name="dummy", grade=handler)
    register_family(dummy)
    try:
        result = runner.invoke(
            app,
            [
                "grade",
                "--family",
                "dummy",
                "--control",
                "1,2,3",
                "x.json",
                "--box",
                "4",
                "4",
                "4",
                "--zeta",
                "0.25",
                "--out",
                str(tmp_path),
                "--json",
            ],
        )
    finally:
        unregister_family("dummy")
    assert result.exit_code == 0, result.output
    assert seen["controls"] == [((1.0, 2.0, 3.0), Path("x.json"))]
    assert seen["box"] == (4.0, 4.0, 4.0) and seen["zeta"] == 0.25
    assert seen["options"] == {"body", "on_step"}


def test_readme_example_regression():
    """bone3 -> tilted bone target along x1, zeta = 0.5, box 10 x 4 x 4 (README, Fig. 3B)."""
    problem = GradingProblem(
        points=[[0.0, 2.0, 2.0], [10.0, 2.0, 2.0]],
        designs=[
            load_control_design(EXAMPLES / n)
            for n in ("bone3_design.json", "bone_tilted_design.json")
        ],
        zeta=0.5,
        body=box_body([10.0, 4.0, 4.0]),
    )
    lattice = graded_lattice(problem)
    assert (len(lattice.centres), lattice.n_nodes, lattice.n_struts) == (107, 1582, 2789)
    assert lattice.nodes.min() >= 0.0 and np.all(lattice.nodes.max(0) <= [10.0, 4.0, 4.0])
    gates = quality_gates(problem, lattice, local_check(problem, 7))
    assert all(g.passed for g in gates), gates
    degree = lattice.degrees
    assert ((degree >= 2) | lattice.boundary).all()
    C = [homogenize(d).C for d in problem.designs]
    for x, index in (([0.5, 2.0, 2.0], 0), ([9.5, 2.0, 2.0], 1)):
        cell = local_cell(problem, np.array(x))
        local = lattice_stiffness(cell.lattice, cell.lattice_vectors, cell.diameters)
        assert float(nmse(C[index], local)) < 1e-10
