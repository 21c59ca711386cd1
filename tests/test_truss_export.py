"""Export of finite lattice blocks: graph tiling, JSON content, watertight STL."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from metainv.errors import MetainvError
from metainv.tensors import rotation_from_angle_axis
from metainv.truss.design import TrussDesign, deformation_gradient, design_to_dict
from metainv.truss.export import (
    export_design,
    export_json,
    export_stl,
    lattice_graph,
    tile_reference_graph,
)


def design(cell: int, rho: float = 0.05, **changes) -> TrussDesign:
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


def skewed(cell: int, rho: float = 0.05) -> TrussDesign:
    return design(
        cell,
        rho,
        U=[1.0, 1.3, 0.8],
        V=[1.2, 1.0, 0.9],
        R1=rotation_from_angle_axis(np.float64(0.4), np.array([1.0, 2.0, 2.0]) / 3),
        R2=rotation_from_angle_axis(np.float64(-1.1), np.array([0.0, 0.6, 0.8])),
    )


def test_simple_cubic_block_counts():
    graph = lattice_graph(design(1), cells=(2, 2, 2))
    assert graph.nodes.shape == (27, 3)
    assert graph.struts.shape == (54, 2)  # 3 directions x 9 lines x 2 segments
    np.testing.assert_allclose(graph.strut_lengths, 1.0)
    assert len(np.unique(graph.struts, axis=0)) == len(graph.struts)
    assert (graph.struts[:, 0] < graph.struts[:, 1]).all()


def test_tiling_merges_shared_faces():
    nodes = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    struts = np.array([[0, 1]])
    merged_nodes, merged_struts = tile_reference_graph(nodes, struts, (3, 1, 1))
    assert len(merged_nodes) == 4 and len(merged_struts) == 3
    merged_nodes, merged_struts = tile_reference_graph(nodes, struts, (2, 2, 1))
    assert len(merged_nodes) == 6 and len(merged_struts) == 4


def test_octet_block_counts():
    graph = lattice_graph(design(2), cells=(2, 2, 2))
    # 27 corners + 36 face centres; 8 x 12 interior struts + 36 unit faces x 4 face diagonals
    assert len(graph.nodes) == 63
    assert len(graph.struts) == 8 * 12 + 36 * 4


def test_nodes_are_mapped_by_F_and_diameter_matches_density():
    d = skewed(1)
    graph = lattice_graph(d, cells=(2, 1, 3))
    F = deformation_gradient(d)
    np.testing.assert_allclose(graph.lattice_vectors, F)
    reference = graph.nodes @ np.linalg.inv(F).T
    np.testing.assert_allclose(reference.min(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(reference.max(axis=0), [2.0, 1.0, 3.0], atol=1e-12)
    assert graph.cells == (2, 1, 3)
    # simple cubic, periodic: three struts, lengths |a_i|; rho = pi d^2/4 sum|a_i| / det F
    lengths = np.linalg.norm(F, axis=0).sum()
    rho = np.pi * graph.diameter**2 / 4 * lengths / np.linalg.det(F)
    assert rho == pytest.approx(d.relative_density, rel=1e-10)


def test_export_json_content(tmp_path):
    d = skewed(3, rho=0.03)
    path = tmp_path / "bcc.json"
    graph = export_json(d, path, cells=(1, 2, 1))
    data = json.loads(path.read_text())
    assert set(data) == {"nodes", "struts", "diameter", "lattice_vectors", "cells", "design"}
    assert data["cells"] == [1, 2, 1]
    assert data["design"] == design_to_dict(d)
    np.testing.assert_allclose(data["nodes"], graph.nodes)
    assert np.array(data["struts"]).shape == (16, 2)  # 2 BCC cells, all struts interior
    assert len(data["nodes"]) == 9 + 9 - 4
    assert np.array(data["struts"]).max() < len(data["nodes"])
    np.testing.assert_allclose(data["lattice_vectors"], deformation_gradient(d))
    assert data["diameter"] == pytest.approx(graph.diameter)


def _check_stl(path, graph, expected_solid, lo=0.7, hi=1.5):
    mesh = trimesh.load(str(path), file_type="stl", force="mesh")
    assert mesh.is_watertight
    assert mesh.is_volume
    ratio = mesh.volume / expected_solid
    assert lo < ratio < hi, ratio
    # the union is never larger than all cylinders plus all spheres
    spheres = len(graph.nodes) * np.pi * graph.diameter**3 / 6
    assert mesh.volume < graph.strut_volume + spheres
    return mesh


def test_stl_bcc_block_watertight_with_expected_volume(tmp_path):
    d = design(3, rho=0.05)
    path = tmp_path / "bcc.stl"
    graph = export_stl(d, path, cells=(2, 2, 2), segments=8)
    # BCC has no boundary struts: the block volume is rho * V * N up to joints
    _check_stl(path, graph, 0.05 * 8.0, lo=0.85, hi=1.1)


def test_stl_octet_block_watertight(tmp_path):
    d = skewed(2, rho=0.04)
    path = tmp_path / "octet.stl"
    graph = export_stl(d, path, cells=(2, 2, 2), segments=8)
    solid = 0.04 * np.linalg.det(deformation_gradient(d)) * 8
    mesh = _check_stl(path, graph, solid)
    # against the cylinders actually exported: overlaps at joints only
    assert 0.8 < mesh.volume / graph.strut_volume < 1.1


def test_stl_compound_cell_watertight(tmp_path):
    d = design(1, rho=0.08, topology=((1, 1), (3, 2), (7, 1)))
    path = tmp_path / "compound.stl"
    graph = export_stl(d, path, segments=6)
    mesh = trimesh.load(str(path), file_type="stl", force="mesh")
    assert mesh.is_watertight
    assert 0.6 < mesh.volume / graph.strut_volume < 1.1


def test_export_design_format_dispatch(tmp_path):
    d = design(1)
    export_design(d, tmp_path / "a.json")
    assert "nodes" in json.loads((tmp_path / "a.json").read_text())
    export_design(d, tmp_path / "a.mesh", fmt="stl", segments=6)
    assert trimesh.load(str(tmp_path / "a.mesh"), file_type="stl").is_watertight
    with pytest.raises(MetainvError, match="unknown export format 'obj'"):
        export_design(d, tmp_path / "a.obj")


@pytest.mark.parametrize("cells", [(0, 1, 1), (1, 1), (1, 1, 2.5), (51, 1, 1)])
def test_bad_cell_counts(cells):
    with pytest.raises(MetainvError, match="cells must"):
        lattice_graph(design(1), cells=cells)


def test_stl_is_reproducible_and_bounded(tmp_path):
    d = skewed(6, rho=0.06)
    graph = export_stl(d, tmp_path / "a.stl", segments=6)
    export_stl(d, tmp_path / "b.stl", segments=6)
    assert (tmp_path / "a.stl").read_bytes() == (tmp_path / "b.stl").read_bytes()
    mesh = trimesh.load(str(tmp_path / "a.stl"), file_type="stl")
    r = graph.diameter / 2
    assert (mesh.bounds[0] >= graph.nodes.min(axis=0) - 1.01 * r).all()
    assert (mesh.bounds[1] <= graph.nodes.max(axis=0) + 1.01 * r).all()
    np.testing.assert_allclose(mesh.bounds[0], graph.nodes.min(axis=0) - r, atol=0.2 * r)


def test_too_few_segments(tmp_path):
    with pytest.raises(MetainvError, match="segments must be at least 3"):
        export_stl(design(1), tmp_path / "a.stl", segments=2)
