"""STL as a printer sees it: float32 vertices welded by position.

Binary STL stores every triangle corner as three float32 numbers and readers weld corners by
position, so two vertices that are distinct in float64 but equal in float32 become one, and the
edges around them turn non-manifold. :func:`is_watertight_stl` is the one check of a mesh as
written; :func:`separate_coincident_vertices` is the one fix, applied by the shared meshers of
this package before they return a mesh; :func:`write_stl` writes atomically.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import trimesh

from metainv.errors import MetainvError
from metainv.files import write_bytes_atomic

logger = logging.getLogger(__name__)

#: Fraction of the way to its one-ring centroid that a float32-coincident vertex is moved.
SEPARATION = 1e-3
#: Least move of such a vertex, in float32 units (ulps) of its largest coordinate.
SEPARATION_ULPS = 8
#: Rounds of separation (each checks for collisions again).
SEPARATION_ROUNDS = 6


def stl_round_trip(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh as an STL reader sees it: written as binary STL (float32) and read back, which
    welds corners at equal float32 positions."""
    data = trimesh.exchange.stl.export_stl(mesh)
    return trimesh.load(io.BytesIO(data), file_type="stl", force="mesh")


def is_watertight_stl(mesh: trimesh.Trimesh) -> bool:
    """Whether ``mesh`` is still watertight after an STL (float32) round trip."""
    return bool(stl_round_trip(mesh).is_watertight)


def float32_collisions(vertices: np.ndarray) -> np.ndarray:
    """Indices (k,) of the vertices (n, 3) that share their float32 position with an earlier
    vertex (the first vertex at each position is not listed)."""
    vertices = np.asarray(vertices)
    if len(vertices) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(
        vertices.astype(np.float32), axis=0, return_index=True, return_inverse=True
    )
    return np.nonzero(first[inverse.ravel()] != np.arange(len(vertices)))[0]


def _one_ring_centroids(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(n, 3) mean of the face-adjacent vertices of every vertex (itself where it has none)."""
    total = np.zeros((len(vertices), 3))
    count = np.zeros(len(vertices))
    for corner in range(3):
        others = faces[:, [(corner + 1) % 3, (corner + 2) % 3]]
        np.add.at(total, faces[:, corner], vertices[others].sum(axis=1))
        np.add.at(count, faces[:, corner], 2.0)
    alone = count == 0
    total[alone] = vertices[alone]
    count[alone] = 1.0
    return total / count[:, None]


def separate_coincident_vertices(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Vertices (n, 3) float64 with topologically distinct vertices that share a float32
    position moved apart, so that an STL reader keeps them apart.

    vertices: (n, 3) positions (any float dtype); faces: (m, 3) vertex indices.

    Every repeated float32 position but its first vertex is moved towards the centroid of its
    adjacent vertices (along its own surface) by ``1e-3`` of the distance, at least 8 float32
    units of its largest coordinate and at most half the distance; repeated for a few rounds
    while collisions remain. The solid changes by far less than the polygon error.
    """
    moved = np.array(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    clash = float32_collisions(moved)
    if len(clash) == 0:
        return moved
    total = len(clash)
    centroid = _one_ring_centroids(moved, faces)
    for round_ in range(SEPARATION_ROUNDS):
        if len(clash) == 0:
            break
        offset = centroid[clash] - moved[clash]
        distance = np.linalg.norm(offset, axis=1)
        degenerate = distance == 0
        offset[degenerate] = 1.0
        distance[degenerate] = np.sqrt(3.0)
        ulp = np.spacing(np.abs(moved[clash]).max(axis=1).astype(np.float32)).astype(np.float64)
        step = np.maximum(SEPARATION * distance, SEPARATION_ULPS * (round_ + 1) * ulp)
        step = np.where(degenerate, step, np.minimum(step, 0.5 * distance))
        moved[clash] += offset * (step / distance)[:, None]
        clash = float32_collisions(moved)
    logger.info(
        "separated %d float32-coincident vertices of %d (%d left)", total, len(moved), len(clash)
    )
    return moved


def scaled_mesh(mesh: trimesh.Trimesh, factor: float) -> trimesh.Trimesh:
    """A copy of ``mesh`` with every position multiplied by ``factor`` (e.g. cell units to
    mm), its float32-coincident vertices moved apart (:func:`separate_coincident_vertices`):
    scaling changes float32 rounding, so distinct vertices may otherwise merge in an STL."""
    vertices = separate_coincident_vertices(np.asarray(mesh.vertices) * factor, mesh.faces)
    return trimesh.Trimesh(vertices, mesh.faces, process=False)


def write_stl(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """Write ``mesh`` as binary STL atomically (a temporary file in the same folder, then
    ``os.replace``); returns the path. STL has no unit: coordinates are written as they are."""
    path = Path(path)
    try:
        write_bytes_atomic(path, trimesh.exchange.stl.export_stl(mesh))
    except OSError as error:
        raise MetainvError(f"cannot write {path}: {error.strerror or error}") from None
    return path
