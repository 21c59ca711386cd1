"""Strut lattices as one watertight solid: cylinders for struts, spheres at joints, one union.

Input is plain arrays: nodes (n, 3), struts (m, 2) and a diameter per strut (or one for all), in
any length unit. Every strut is a ``segments``-gon prism of its own diameter; every node used by
a strut is a geodesic sphere of the largest diameter that meets there; manifold3d unites them in
one batch boolean (in float64).

Lattices are full of exact symmetries (collinear struts, mirror-symmetric joints) that make the
polygonal surfaces meet in degenerate configurations; the union is then topologically manifold
but has distinct vertices at identical positions, which an STL reader welds into non-manifold
edges. The discretization is therefore put in general position: each cylinder's polygon gets a
random twist about its axis and reaches 1-3 % of its radius into its end joints (collinear
neighbours overlap instead of sharing a cap), and each sphere a random orientation. Nodes closer
than the weld tolerance (a thousandth of the thinnest radius, and at least 16 float32 units of
the largest coordinate) are merged first, since no float32 STL can hold the slivers between
them. Vertices that the union still leaves at one float32 position are separated
(:func:`metainv.mesh.stl.separate_coincident_vertices`), enclosed cavity slivers of the union
are filled (:func:`metainv.mesh.levelset.fill_cavities`), and the result is checked as read back
from STL; failing that, the solid is rebuilt with fresh jitter, up to :data:`MESH_ATTEMPTS`
times. The solid differs from the exact one by far less than the polygon error.
"""

from __future__ import annotations

import logging

import manifold3d
import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from metainv.errors import MetainvError
from metainv.mesh.levelset import fill_cavities
from metainv.mesh.stl import is_watertight_stl, separate_coincident_vertices
from metainv.resources import check_segments
from metainv.tensors import random_rotations

logger = logging.getLogger(__name__)

#: Attempts with fresh discretization jitter before giving up on a watertight STL.
MESH_ATTEMPTS = 4
#: Extension of every cylinder into its end joints, as a fraction of its radius.
EXTENSION = (0.01, 0.03)
#: Weld tolerance of the nodes, as a fraction of the thinnest strut radius.
NODE_WELD = 1e-3
#: ... and at least this many float32 units of the largest coordinate.
NODE_WELD_ULPS = 16


def weld_nodes(
    nodes: np.ndarray, struts: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge nodes (n, 3) closer than ``tolerance`` (chains merge too) at their first member.

    Returns ``(nodes (n', 3), struts (m, 2) renumbered, kept (m,) bool)``: ``kept`` marks the
    struts that still join two distinct nodes (the others collapsed to a point).
    """
    pairs = cKDTree(nodes).query_pairs(tolerance, output_type="ndarray")
    if len(pairs) == 0:
        return nodes, struts, np.ones(len(struts), dtype=bool)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(nodes),) * 2)
    _, label = connected_components(graph, directed=False)
    _, first = np.unique(label, return_index=True)
    renumbered = label[struts]
    kept = renumbered[:, 0] != renumbered[:, 1]
    logger.debug("welded %d nodes closer than %.3g", len(nodes) - len(first), tolerance)
    return nodes[first], renumbered, kept


def _frame(direction: np.ndarray) -> np.ndarray:
    """(3, 3) rotation whose third column is the unit vector ``direction`` (3,)."""
    helper = np.eye(3)[int(np.argmin(np.abs(direction)))]
    b1 = np.cross(direction, helper)
    b1 /= np.linalg.norm(b1)
    b2 = np.cross(direction, b1)
    return np.column_stack([b1, b2, direction])


def _about_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _union(
    nodes: np.ndarray,
    struts: np.ndarray,
    radii: np.ndarray,
    segments: int,
    rng: np.random.Generator,
) -> trimesh.Trimesh:
    """One jittered cylinder-and-sphere union as a float64 ``trimesh.Trimesh`` (unprocessed)."""
    start = nodes[struts[:, 0]]
    vectors = nodes[struts[:, 1]] - start
    lengths = np.linalg.norm(vectors, axis=1)
    twists = rng.uniform(0.0, 2 * np.pi / segments, size=len(lengths))
    extension = radii[:, None] * rng.uniform(*EXTENSION, size=(len(lengths), 2))
    solids = []
    for p, v, length, radius, twist, (e0, e1) in zip(
        start, vectors, lengths, radii, twists, extension, strict=True
    ):
        axis = v / length
        frame = _frame(axis) @ _about_z(twist)
        cylinder = manifold3d.Manifold.cylinder(length + e0 + e1, radius, radius, segments)
        solids.append(cylinder.transform(np.column_stack([frame, p - e0 * axis])))
    joint = np.zeros(len(nodes))
    np.maximum.at(joint, struts[:, 0], radii)
    np.maximum.at(joint, struts[:, 1], radii)
    used = np.nonzero(joint > 0)[0]
    orientations = random_rotations(len(used), rng)
    for R, i in zip(orientations, used, strict=True):
        ball = manifold3d.Manifold.sphere(joint[i], segments)
        solids.append(ball.transform(np.column_stack([R, nodes[i]])))
    mesh = manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add).to_mesh64()
    vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def strut_mesh(
    nodes: np.ndarray,
    struts: np.ndarray,
    diameters: np.ndarray | float,
    segments: int = 16,
    seed: int = 0,
    attempts: int = MESH_ATTEMPTS,
) -> trimesh.Trimesh:
    """Watertight ``trimesh.Trimesh`` of the strut union (module docstring), in the unit of
    ``nodes``; stays watertight when written as float32 STL.

    nodes: (n, 3) node positions; struts: (m, 2) node indices; diameters: (m,) per strut, or
    one for all; segments: polygon sides of each strut and of the joint spheres (>= 3); seed:
    fixes the discretization jitter (the output is reproducible); attempts: fresh jitters
    before an error.

    Raises:
        MetainvError: on bad input, or when no mesh stayed watertight as STL.
    """
    nodes = np.asarray(nodes, dtype=np.float64).reshape(-1, 3)
    struts = np.asarray(struts, dtype=np.int64).reshape(-1, 2)
    segments = check_segments(segments, len(np.unique(struts)), len(struts))
    if len(struts) == 0:
        raise MetainvError("the lattice has no struts to mesh")
    if struts.min() < 0 or struts.max() >= len(nodes):
        raise MetainvError(f"strut node indices must lie in 0..{len(nodes) - 1}")
    radii = np.broadcast_to(np.asarray(diameters, dtype=np.float64), (len(struts),)) / 2
    if not np.all(np.isfinite(radii) & (radii > 0)) or not np.all(np.isfinite(nodes)):
        raise MetainvError("strut diameters must be positive and node positions finite")
    ulp = float(np.spacing(np.float32(np.abs(nodes).max())))
    nodes, struts, kept = weld_nodes(
        nodes, struts, max(NODE_WELD * radii.min(), NODE_WELD_ULPS * ulp)
    )
    struts, radii = struts[kept], radii[kept]
    if len(struts) == 0:
        raise MetainvError("every strut is shorter than the weld tolerance: nothing to mesh")
    rng = np.random.default_rng(seed)
    for attempt in range(attempts):
        mesh = _union(nodes, struts, radii, segments, rng)
        if mesh.is_watertight:
            mesh, filled = fill_cavities(mesh)
            if filled:
                logger.info("strut mesh: %d enclosed cavity slivers filled", filled)
            mesh.vertices = separate_coincident_vertices(mesh.vertices, mesh.faces)
            if is_watertight_stl(mesh):
                logger.info(
                    "strut mesh: %d struts, %d triangles, attempt %d",
                    len(struts),
                    len(mesh.faces),
                    attempt,
                )
                return mesh
        logger.info("strut mesh attempt %d not watertight as STL; new jitter", attempt)
    raise MetainvError(
        f"could not build a watertight STL mesh in {attempts} attempts; try other --segments"
    )
