"""Geometry of the elementary cells, compound cells and periodic lattices (spec truss.md 2-3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metainv.errors import DesignError
from metainv.tensors import rotation_from_angle_axis
from metainv.truss.cells import ELEMENTARY_CELLS, CellGraph, elementary_cell, tessellate
from metainv.truss.compound import compound_graph, crossing_points, split_at_nodes
from metainv.truss.lattice import (
    PeriodicLattice,
    canonical_topology,
    enumerate_topologies,
    fractional_strut_vectors,
    lattice_from_graph,
    node_degrees,
    periodic_lattice,
    relative_density_from_diameter,
    strut_diameter,
    strut_lengths,
    strut_vectors,
    topology_key,
    unique_topology_count,
)

ALL_CELLS = tuple(range(1, 8))

# non-periodic counts from the spec
SPEC_COUNTS = {1: (8, 12), 2: (14, 36), 3: (9, 8), 4: (9, 12), 5: (9, 16), 6: (14, 16), 7: (20, 24)}

# periodic (nodes, struts) per cell at t = 1, derived by hand:
#  S1: 8 corners -> 1 node; 12 edges, 4 images each -> 3 struts
#  S2: corner + 3 face centres = 4 nodes; 24 corner-face-centre struts in the faces, shared by
#      2 cells -> 12, plus 12 face-centre-to-face-centre struts = 24 (FCC: 4 * 12 / 2)
#  S3: corner + centre = 2 nodes, 8 diagonals
#  S4: S3 + the 4 vertical edges (one periodic strut) = 9
#  S5: S3 + 8 horizontal square edges (one x1 and one x2 periodic strut) = 10
#  S6: 8 nodes, 16 struts (spec)
#  S7: per layer 5 nodes ((0,0) (0,1/6) (1/2,1/3) (1/2,2/3) (0,5/6)), z=1 ~ z=0; 7 in-plane
#      struts (1-3 ~ 2-4 and 7-9 ~ 8-10 pair up), 4 vertical struts (3-13 ~ 4-14, 7-17 ~ 8-18)
PERIODIC_COUNTS = {1: (1, 3), 2: (4, 24), 3: (2, 8), 4: (2, 9), 5: (2, 10), 6: (8, 16), 7: (5, 11)}


def single(cell: int, t: int = 1) -> tuple[tuple[int, int], ...]:
    return ((cell, t),) * 3


def periodic_key(lattice: PeriodicLattice) -> set[tuple]:
    """Rounded (start, vector) rows of the periodic struts, both directions (test helper)."""
    start = lattice.nodes[lattice.struts[:, 0]]
    vec = fractional_strut_vectors(lattice)
    fwd = np.round(np.concatenate([start, vec], 1), 9) + 0.0
    end = (start + vec) % 1.0
    end[np.isclose(end, 1.0)] = 0.0
    bwd = np.round(np.concatenate([end, -vec], 1), 9) + 0.0
    return {min(tuple(a), tuple(b)) for a, b in zip(fwd.tolist(), bwd.tolist(), strict=True)}


def assert_clean(graph: CellGraph) -> None:
    """No duplicate nodes, no zero-length or duplicate struts, no overlap, T-junction, crossing."""
    nodes = graph.nodes
    d = np.linalg.norm(nodes[:, None] - nodes[None], axis=2) + np.eye(len(nodes))
    assert d.min() > 1e-6
    assert np.all(graph.struts[:, 0] != graph.struts[:, 1])
    assert len(np.unique(np.sort(graph.struts, 1), axis=0)) == graph.n_struts
    _, changed = split_at_nodes(nodes, graph.struts)
    assert not changed  # no node inside a strut => no collinear overlap, no T-junction
    assert len(crossing_points(nodes, graph.struts)) == 0


# ------------------------------------------------------------------------------------ cells


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_elementary_cell_counts_match_spec(cell: int) -> None:
    graph = elementary_cell(cell)
    assert (graph.n_nodes, graph.n_struts) == SPEC_COUNTS[cell]
    assert graph.nodes.dtype == np.float64 and graph.struts.dtype == np.int64
    assert graph.nodes.min() >= 0.0 and graph.nodes.max() <= 1.0
    assert ELEMENTARY_CELLS[cell] is graph
    assert_clean(graph)


def test_exact_fractions_in_honeycomb() -> None:
    y = np.unique(elementary_cell(7).nodes[:, 1])
    np.testing.assert_array_equal(y, [0.0, 1 / 6, 1 / 3, 2 / 3, 5 / 6, 1.0])


def test_cells_are_read_only() -> None:
    with pytest.raises(ValueError):
        elementary_cell(1).nodes[0, 0] = 0.5


@pytest.mark.parametrize("bad", [0, 8, -1, 2.0, "1", True, None])
def test_invalid_cell(bad: object) -> None:
    with pytest.raises(DesignError):
        elementary_cell(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, 3, 1.0, None])
def test_invalid_tessellation(bad: object) -> None:
    with pytest.raises(DesignError):
        tessellate(elementary_cell(1), bad)  # type: ignore[arg-type]


def test_tessellate_is_unmerged_scaled_copy() -> None:
    graph = elementary_cell(3)
    assert tessellate(graph, 1) is graph
    t2 = tessellate(graph, 2)
    assert (t2.n_nodes, t2.n_struts) == (8 * 9, 8 * 8)
    assert t2.nodes.min() == 0.0 and t2.nodes.max() == 1.0
    np.testing.assert_allclose(t2.nodes[8], [0.25, 0.25, 0.25])


# ---------------------------------------------------------------------------------- compound


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_compound_of_a_cell_with_itself_is_the_cell(cell: int) -> None:
    graph = compound_graph(single(cell))
    assert (graph.n_nodes, graph.n_struts) == SPEC_COUNTS[cell]
    ref = elementary_cell(cell)
    to_set = lambda g: {  # noqa: E731
        tuple(sorted((tuple(g.nodes[a].round(9)), tuple(g.nodes[b].round(9))))) for a, b in g.struts
    }
    assert to_set(graph) == to_set(ref)


def test_compound_merges_collinear_overlaps() -> None:
    graph = compound_graph(((1, 1), (1, 2), (1, 2)))
    t2 = compound_graph(single(1, 2))
    # S1 x1 edges are covered by S1 x2 edges: 27 nodes, 3 directions x 9 lines x 2 segments
    assert (graph.n_nodes, graph.n_struts) == (27, 54)
    np.testing.assert_array_equal(graph.nodes, t2.nodes)
    np.testing.assert_array_equal(graph.struts, t2.struts)
    assert_clean(graph)
    lattice = periodic_lattice(((1, 1), (1, 2), (1, 2)))
    identity = np.eye(3)
    assert strut_lengths(lattice, identity).sum() == pytest.approx(12.0)  # 24 struts of 1/2
    assert strut_lengths(periodic_lattice(single(1, 2)), identity).sum() == pytest.approx(12.0)


def test_compound_bcc_x1_is_covered_by_bcc_x2() -> None:
    # the x1 body diagonals run through the x2 sub-cells' diagonals (collinear, split at 1/4)
    mixed = periodic_lattice(((3, 1), (3, 2), (3, 2)))
    assert topology_key(mixed) == topology_key(periodic_lattice(single(3, 2)))


def has_node(graph: CellGraph, point: tuple[float, float, float]) -> bool:
    return bool(np.any(np.linalg.norm(graph.nodes - np.asarray(point), axis=1) < 1e-9))


def test_compound_splits_crossing_struts() -> None:
    # S7's vertical struts at (0, 1/6) and (1/2, 1/3) cross S1 x2's horizontal struts at z = 1/2
    graph = compound_graph(((1, 2), (7, 1), (7, 1)))
    for point in [(0, 1 / 6, 0.5), (1, 1 / 6, 0.5), (0.5, 1 / 3, 0.5), (0.5, 2 / 3, 0.5)]:
        assert has_node(graph, point)
        assert not has_node(elementary_cell(7), point)
    assert_clean(graph)
    # the crossing node has degree 4 (two struts split in two each)
    index = int(np.argmin(np.linalg.norm(graph.nodes - [0.5, 1 / 3, 0.5], axis=1)))
    assert np.count_nonzero(graph.struts == index) == 4
    # diagonal crossing: octet face diagonal (0,0,0)-(0,1/2,1/2) x honeycomb strut at (0, 1/6)
    octet_honeycomb = compound_graph(((2, 1), (7, 1), (7, 1)))
    assert has_node(octet_honeycomb, (0, 1 / 6, 1 / 6))
    # two honeycombs: (0,1/6)-(1/2,1/3) x1 crosses the x2 strut x = 1/4, y in [1/6, 1/3]
    assert has_node(compound_graph(((7, 1), (7, 2), (7, 2))), (0.25, 0.25, 0.0))


def test_compound_is_periodically_complete() -> None:
    # S6 x2 has a node at (0, 0, 1/2) but none at (1, 0, 1/2); the S1 vertical edges must be
    # split on all four (periodically equivalent) cube edges
    graph = compound_graph(((1, 1), (6, 2), (6, 2)))
    for x, y in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        assert has_node(graph, (x, y, 0.5))
    assert_clean(graph)


def test_compound_rejects_bad_topology() -> None:
    with pytest.raises(DesignError):
        compound_graph(((1, 1), (2, 1)))
    with pytest.raises(DesignError):
        compound_graph(((1, 1), (2, 1), (8, 1)))


# ---------------------------------------------------------------------------------- periodic


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_periodic_counts(cell: int) -> None:
    n, m = PERIODIC_COUNTS[cell]
    lattice = periodic_lattice(single(cell))
    assert (lattice.n_nodes, lattice.n_struts) == (n, m)
    assert lattice.topology == single(cell)
    t2 = periodic_lattice(single(cell, 2))
    assert (t2.n_nodes, t2.n_struts) == (8 * n, 8 * m)
    # bare elementary cell gives the same lattice
    assert topology_key(lattice_from_graph(elementary_cell(cell))) == topology_key(lattice)


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_periodic_lattice_invariants(cell: int) -> None:
    for t in (1, 2):
        lattice = periodic_lattice(((cell, t), (1, 1), (3, 2)))
        assert lattice.nodes.min() >= 0.0 and lattice.nodes.max() < 1.0
        assert np.all(node_degrees(lattice) >= 2)
        assert strut_lengths(lattice, np.eye(3)).min() > 1e-6
        # no strut listed twice (either direction or as a translate)
        assert len(periodic_key(lattice)) == lattice.n_struts
        # no periodic node duplicated on the torus
        diff = lattice.nodes[:, None] - lattice.nodes[None]
        diff -= np.rint(diff)
        dist = np.linalg.norm(diff, axis=2) + np.eye(lattice.n_nodes)
        assert dist.min() > 1e-6


def test_periodic_cell_degrees() -> None:
    expected_min = {1: 6, 2: 12, 3: 8, 4: 8, 5: 8, 6: 4, 7: 2}
    for cell, degree in expected_min.items():
        assert node_degrees(periodic_lattice(single(cell))).min() == degree


def test_periodic_octet_geometry() -> None:
    lattice = periodic_lattice(single(2))
    np.testing.assert_allclose(strut_lengths(lattice, np.eye(3)), math.sqrt(2) / 2)
    np.testing.assert_array_equal(node_degrees(lattice), 12)


def test_wrapping_of_nodes_at_one() -> None:
    # a single strut from (0.5, 0.5, 1) to (0.5, 0.5, 0.5) plus its mirror image: nodes at z=1
    # map to z=0 and the offset carries the image
    graph = CellGraph(
        nodes=np.array([[0.5, 0.5, 1.0 - 1e-12], [0.5, 0.5, 0.5], [0.5, 0.5, 0.0]]),
        struts=np.array([[0, 1], [1, 2]]),
    )
    lattice = lattice_from_graph(graph)
    assert lattice.n_nodes == 2
    np.testing.assert_allclose(lattice.nodes, [[0.5, 0.5, 0.0], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(
        np.sort(fractional_strut_vectors(lattice)[:, 2] ** 2), [0.25, 0.25], atol=1e-9
    )
    assert lattice.n_struts == 2


def test_canonical_topology_and_cache() -> None:
    topo = [(7, 2), (1, 1), (3, 2)]
    assert canonical_topology(topo) == ((1, 1), (3, 2), (7, 2))
    assert periodic_lattice(topo) is periodic_lattice(((3, 2), (7, 2), (1, 1)))
    with pytest.raises(DesignError):
        canonical_topology([(1, 1), (1, 1)])
    with pytest.raises(DesignError):
        canonical_topology([(1, 1), (1, 1), (1, 3)])
    with pytest.raises(DesignError):
        canonical_topology(5)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ strut geometry


def random_F(rng: np.random.Generator, batch: tuple[int, ...] = ()) -> np.ndarray:
    return rng.uniform(-0.4, 0.4, (*batch, 3, 3)) + np.eye(3)


def test_density_diameter_round_trip() -> None:
    rng = np.random.default_rng(0)
    lattice = periodic_lattice(((2, 1), (6, 2), (7, 1)))
    F = random_F(rng, (5,))
    rho = rng.uniform(0.002, 0.1, 5)
    d = strut_diameter(lattice, F, rho)
    assert d.shape == (5,)
    np.testing.assert_allclose(relative_density_from_diameter(lattice, F, d), rho, rtol=1e-12)
    # simple cubic, identity: rho = 3 * pi d^2 / 4
    sc = periodic_lattice(single(1))
    assert float(strut_diameter(sc, np.eye(3), 0.05)) == pytest.approx(
        math.sqrt(4 * 0.05 / (3 * math.pi))
    )


def test_strut_vectors_and_rotation_invariance() -> None:
    rng = np.random.default_rng(1)
    lattice = periodic_lattice(((2, 2), (5, 1), (6, 1)))
    F = random_F(rng)
    v = strut_vectors(lattice, F)
    np.testing.assert_allclose(v, fractional_strut_vectors(lattice) @ F.T)
    R = rotation_from_angle_axis(np.array(0.7), np.array([1.0, 2.0, -0.5]) / math.sqrt(5.25))
    base = strut_lengths(lattice, np.eye(3))
    np.testing.assert_allclose(strut_lengths(lattice, R), base, rtol=1e-12)
    np.testing.assert_allclose(strut_lengths(lattice, R @ F), strut_lengths(lattice, F))
    np.testing.assert_allclose(
        strut_diameter(lattice, R @ F, 0.03), strut_diameter(lattice, F, 0.03), rtol=1e-12
    )
    assert strut_vectors(lattice, np.stack([F, R])).shape == (2, lattice.n_struts, 3)


def test_strut_functions_accept_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    lattice = periodic_lattice(((1, 1), (3, 1), (7, 2)))
    F_np = random_F(rng, (3,))
    F = torch.tensor(F_np, dtype=torch.float64, requires_grad=True)
    v = strut_vectors(lattice, F)
    assert isinstance(v, torch.Tensor)
    np.testing.assert_allclose(v.detach().numpy(), strut_vectors(lattice, F_np))
    d = strut_diameter(lattice, F, torch.tensor([0.01, 0.05, 0.1], dtype=torch.float64))
    np.testing.assert_allclose(
        d.detach().numpy(), strut_diameter(lattice, F_np, np.array([0.01, 0.05, 0.1]))
    )
    (d.sum() + strut_lengths(lattice, F).sum()).backward()
    assert F.grad is not None and torch.isfinite(F.grad).all() and F.grad.abs().sum() > 0
    rho = relative_density_from_diameter(lattice, F, d.detach())
    np.testing.assert_allclose(rho.detach().numpy(), [0.01, 0.05, 0.1])


# ---------------------------------------------------------------------------------- catalog


def test_enumerate_topologies() -> None:
    topologies = enumerate_topologies()
    assert len(topologies) == 560 == math.comb(16, 3)
    assert len(set(topologies)) == 560
    assert all(canonical_topology(t) == t for t in topologies)


def translated(lattice: PeriodicLattice, shift: np.ndarray) -> PeriodicLattice:
    moved = lattice.nodes + shift
    image = np.floor(moved).astype(np.int64)
    s = lattice.struts
    return PeriodicLattice(
        nodes=moved - image,
        struts=s,
        offsets=lattice.offsets + image[s[:, 1]] - image[s[:, 0]],
        topology=lattice.topology,
    )


def permuted(lattice: PeriodicLattice, perm: list[int]) -> PeriodicLattice:
    return PeriodicLattice(
        nodes=lattice.nodes[:, perm],
        struts=lattice.struts,
        offsets=lattice.offsets[:, perm],
        topology=lattice.topology,
    )


def test_topology_key_rules() -> None:
    diamond = periodic_lattice(single(6))
    shifted = translated(diamond, np.array([0.25, 0.25, 0.25]))
    assert topology_key(shifted, "graph") != topology_key(diamond, "graph")
    assert topology_key(shifted, "lattice") == topology_key(diamond, "lattice")
    s4 = periodic_lattice(((4, 1), (7, 1), (7, 1)))
    swapped = permuted(s4, [2, 0, 1])
    assert topology_key(swapped, "graph") != topology_key(s4, "graph")
    assert topology_key(swapped, "cube") == topology_key(s4, "cube")
    # a 2x2x2 tessellation is the same infinite lattice
    assert topology_key(periodic_lattice(single(6, 2)), "lattice") == topology_key(
        diamond, "lattice"
    )
    assert topology_key(periodic_lattice(single(6, 2))) != topology_key(diamond)
    with pytest.raises(DesignError):
        topology_key(diamond, "nonsense")


def test_unique_topology_count_graph() -> None:
    assert unique_topology_count("graph") == 236
