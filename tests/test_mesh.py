"""The shared mesher: strut unions, level sets, the float32-safe STL check, fix and writer."""

from __future__ import annotations

import manifold3d
import numpy as np
import pytest
import trimesh

from metainv.errors import MetainvError
from metainv.mesh import (
    box_function,
    float32_collisions,
    is_watertight_stl,
    levelset_mesh,
    separate_coincident_vertices,
    stl_round_trip,
    strut_mesh,
    weld_nodes,
    write_stl,
)


def polygon_area(radius: float, segments: int) -> float:
    """Cross-section area of the ``segments``-gon inscribed in the circle of ``radius``."""
    return 0.5 * segments * radius**2 * np.sin(2 * np.pi / segments)


# ---------------------------------------------------------------- struts


def test_single_strut_is_watertight_with_the_cylinder_volume():
    r, length, segments = 0.1, 2.0, 16
    mesh = strut_mesh([[0, 0, 0], [length, 0, 0]], [[0, 1]], 2 * r, segments=segments)
    assert mesh.is_watertight and mesh.is_volume and is_watertight_stl(mesh)
    # prism + two half joint spheres; between the inscribed polygon and the circle
    low = polygon_area(r, segments) * length + 0.9 * 4 / 3 * np.pi * r**3
    high = np.pi * r**2 * (length + 0.03 * 2 * r) + 4 / 3 * np.pi * r**3
    assert low < mesh.volume < high


def test_cube_lattice_volume_matches_the_cylinders():
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    edges = np.array(
        [
            [a, b]
            for a in range(8)
            for b in range(a + 1, 8)
            if np.abs(corners[a] - corners[b]).sum() == 1
        ]
    )
    r, segments = 0.05, 12
    mesh = strut_mesh(corners, edges, 2 * r, segments=segments)
    assert len(edges) == 12 and mesh.is_watertight and is_watertight_stl(mesh)
    assert len(mesh.split(only_watertight=False)) == 1
    # exact union: the cylinders between the joint spheres, the end annuli outside the spheres
    # (pi r^3 / 3 each, overlaps at the corners ignored) and the eight spheres
    sphere = 4 / 3 * np.pi * r**3
    exact = 12 * (np.pi * r**2 * (1 - 2 * r) + 2 * np.pi * r**3 / 3) + 8 * sphere
    assert mesh.volume < exact
    # polygon error: inscribed 12-gon prisms between the joints, spheres at least 80 % full
    assert 12 * polygon_area(r, segments) * (1 - 2 * r) + 8 * 0.8 * sphere < mesh.volume


def test_per_strut_diameters_and_reproducible_output():
    nodes = [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
    a = strut_mesh(nodes, [[0, 1], [1, 2]], [0.1, 0.2], segments=8, seed=3)
    b = strut_mesh(nodes, [[0, 1], [1, 2]], [0.1, 0.2], segments=8, seed=3)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    thin = strut_mesh(nodes[:2], [[0, 1]], 0.1, segments=8).volume
    assert a.volume > thin + 0.8 * polygon_area(0.1, 8) * 1.0
    assert is_watertight_stl(a)


def test_bad_strut_input():
    with pytest.raises(MetainvError, match="segments must be at least 3"):
        strut_mesh([[0, 0, 0], [1, 0, 0]], [[0, 1]], 0.1, segments=2)
    with pytest.raises(MetainvError, match="no struts"):
        strut_mesh([[0, 0, 0]], np.zeros((0, 2)), 0.1)
    with pytest.raises(MetainvError, match="positive"):
        strut_mesh([[0, 0, 0], [1, 0, 0]], [[0, 1]], 0.0)


def test_weld_nodes_merges_chains_and_drops_collapsed_struts():
    nodes = np.array([[0, 0, 0], [1e-9, 0, 0], [2e-9, 0, 0], [1, 0, 0]], float)
    welded, struts, kept = weld_nodes(nodes, np.array([[0, 3], [1, 2], [2, 3]]), 1.5e-9)
    assert len(welded) == 2
    np.testing.assert_array_equal(kept, [True, False, True])
    np.testing.assert_array_equal(struts[kept], [[0, 1], [0, 1]])


# ---------------------------------------------------------------- float32


def naive_union(nodes: np.ndarray, struts: np.ndarray, diameter: float) -> trimesh.Trimesh:
    """Cylinders and spheres united by manifold3d in float64, with no float32 care."""
    solids = []
    for a, b in struts:
        axis = (nodes[b] - nodes[a]) / np.linalg.norm(nodes[b] - nodes[a])
        b1 = np.cross(axis, np.eye(3)[int(np.argmin(np.abs(axis)))])
        b1 /= np.linalg.norm(b1)
        frame = np.column_stack([b1, np.cross(axis, b1), axis, nodes[a]])
        length = np.linalg.norm(nodes[b] - nodes[a])
        solids.append(
            manifold3d.Manifold.cylinder(length, diameter / 2, diameter / 2, 8).transform(frame)
        )
    for x in nodes:
        ball = manifold3d.Manifold.sphere(diameter / 2, 8)
        solids.append(ball.transform(np.column_stack([np.eye(3), x])))
    union = manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add).to_mesh64()
    vertices = np.asarray(union.vert_properties)[:, :3]
    return trimesh.Trimesh(vertices, np.asarray(union.tri_verts, dtype=np.int64), process=False)


#: Two struts whose end nodes near x = 1001 differ by 1e-5, below float32 resolution (6e-5).
FAR_NODES = 1000.0 + np.array([[0, 0, 0], [1, 0, 0], [1 + 1e-5, 0, 0], [2, 0, 0], [1, 1, 0]])
FAR_STRUTS = np.array([[0, 1], [2, 3], [1, 4]])


def test_float32_collapse_fails_the_naive_check_and_the_shared_mesher_fixes_it():
    naive = naive_union(FAR_NODES, FAR_STRUTS, 0.2)
    assert naive.is_watertight  # fine in float64 ...
    assert len(float32_collisions(naive.vertices)) > 0
    assert not is_watertight_stl(naive)  # ... not as written to STL
    fixed = trimesh.Trimesh(
        separate_coincident_vertices(naive.vertices, naive.faces), naive.faces, process=False
    )
    assert is_watertight_stl(fixed)
    assert np.abs(fixed.vertices - naive.vertices).max() < 1e-3
    mesh = strut_mesh(FAR_NODES, FAR_STRUTS, 0.2, segments=8)
    assert mesh.is_watertight and is_watertight_stl(mesh)
    assert len(float32_collisions(mesh.vertices)) == 0
    assert mesh.volume == pytest.approx(naive.volume, rel=0.05)


def test_the_check_fails_on_a_mesh_with_a_hole():
    box = trimesh.creation.box()
    assert is_watertight_stl(box)
    holed = trimesh.Trimesh(box.vertices, box.faces[1:], process=False)
    assert not is_watertight_stl(holed)
    assert not stl_round_trip(holed).is_watertight


def test_separate_coincident_vertices_moves_only_repeats():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)
    faces = np.array([[0, 1, 2], [3, 2, 1]])
    moved = separate_coincident_vertices(vertices, faces)
    np.testing.assert_array_equal(moved[:3], vertices[:3])
    assert not np.array_equal(moved[3], vertices[3])
    assert np.abs(moved[3] - vertices[3]).max() < 1e-2
    assert len(float32_collisions(moved)) == 0


def test_write_stl_is_atomic_and_round_trips(tmp_path):
    box = trimesh.creation.box(extents=[1.0, 2.0, 3.0])
    path = write_stl(box, tmp_path / "sub" / "box.stl")
    assert [p.name for p in path.parent.iterdir()] == ["box.stl"]  # no temporary left
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    assert path.stat().st_mode == reference.stat().st_mode  # usual permissions (umask)
    back = trimesh.load(str(path), file_type="stl")
    assert back.is_watertight and back.volume == pytest.approx(6.0)
    with pytest.raises(MetainvError, match="cannot write"):
        write_stl(box, path / "inside_a_file.stl")


# ---------------------------------------------------------------- level sets


def grid(n: int, low: float, high: float) -> tuple[list[np.ndarray], float]:
    axis = np.linspace(low, high, n)
    return [axis] * 3, float(axis[1] - axis[0])


def test_sphere_field_has_the_sphere_volume_and_one_body():
    axes, h = grid(41, -1.0, 1.0)
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    result = levelset_mesh(np.sqrt(X**2 + Y**2 + Z**2) - 0.7, h, (-1.0, -1.0, -1.0))
    assert result.bodies == 1 and result.dropped_volume == 0.0
    assert result.mesh.is_watertight and is_watertight_stl(result.mesh)
    assert result.mesh.volume == pytest.approx(4 / 3 * np.pi * 0.7**3, rel=0.01)
    np.testing.assert_allclose(result.mesh.centroid, 0.0, atol=1e-3)


def test_solid_cut_by_the_box_is_closed_on_its_faces():
    h = 0.05
    field = np.full((20, 20, 20), -1.0)  # voxel centres of the unit cube, all solid
    result = levelset_mesh(field, h, (h / 2,) * 3, box=(np.zeros(3), np.ones(3)))
    assert result.mesh.is_watertight and result.bodies == 1
    # marching cubes bevels the cube's edges by half a sample: 12 * (h / 2)^2 / 2
    assert result.mesh.volume == pytest.approx(1.0 - 1.5 * h**2, rel=1e-3)
    np.testing.assert_allclose(result.mesh.bounds, [[0, 0, 0], [1, 1, 1]], atol=1e-12)
    axes, h = grid(21, 0.0, 1.0)
    b = box_function(axes, (0.6, 0.6, 0.6))  # -distance to the faces inside, > 0 outside
    assert b[6, 6, 6] == pytest.approx(-0.3) and b[12, 6, 6] == pytest.approx(0.0, abs=1e-12)
    assert b[14, 6, 6] == pytest.approx(0.1) and b[0, 20, 20] == pytest.approx(0.4)


def test_islands_are_removed_and_counted():
    axes, h = grid(41, 0.0, 4.0)
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    big = np.sqrt((X - 1.0) ** 2 + (Y - 2) ** 2 + (Z - 2) ** 2) - 0.8
    small = np.sqrt((X - 3.2) ** 2 + (Y - 2) ** 2 + (Z - 2) ** 2) - 0.4
    field = np.minimum(big, small)
    kept = levelset_mesh(field, h)
    assert kept.bodies == 2
    assert kept.mesh.is_watertight and kept.mesh.body_count == 1
    assert kept.mesh.volume == pytest.approx(4 / 3 * np.pi * 0.8**3, rel=0.02)
    assert kept.dropped_volume == pytest.approx(0.4**3 / (0.4**3 + 0.8**3), rel=0.05)
    both = levelset_mesh(field, h, keep_largest=False)
    assert both.bodies == 2 and both.dropped_volume == 0.0
    assert both.mesh.volume == pytest.approx(4 / 3 * np.pi * (0.8**3 + 0.4**3), rel=0.02)


def test_empty_level_set_is_an_error():
    with pytest.raises(MetainvError, match="no solid"):
        levelset_mesh(np.ones((4, 4, 4)), 0.1)
