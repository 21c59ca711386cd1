"""Watertight triangle mesh of a graded lattice, by the strut-union machinery of truss export.

:func:`metainv.truss.export.lattice_mesh` builds one uniform diameter; a graded lattice has one
per strut. The struts are grouped by diameter (bins of relative width ``diameter_step``, each
drawn at its mean diameter), each group becomes a :class:`~metainv.truss.export.LatticeGraph`
meshed by the same cylinder-and-sphere solid (:func:`metainv.truss.export._solid`, with its
general-position jitter), and the groups are united by manifold3d. Large unions can hold distinct
vertices closer than float32 resolution, which an STL reader welds into non-manifold edges; such
vertices are nudged apart by a few float32 units (far below the polygon error) before the STL
round trip is checked.
"""

from __future__ import annotations

import io
import logging

import manifold3d
import numpy as np
import trimesh

from metainv.errors import MetainvError
from metainv.grading._lattice import GradedLattice
from metainv.truss.export import LatticeGraph, _solid

__all__ = ["diameter_groups", "graded_mesh", "is_watertight_stl"]

logger = logging.getLogger(__name__)

_ATTEMPTS = 4
_NUDGE_ROUNDS = 5


def diameter_groups(diameters: np.ndarray, step: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Group label (m,) of each diameter (m,) in log bins of relative width ``step``, and the
    mean diameter (g,) of each group."""
    if not step > 0:
        raise MetainvError(f"diameter step must be positive, got {step}")
    bins = np.round(np.log(diameters) / np.log1p(step)).astype(np.int64)
    _, labels = np.unique(bins, return_inverse=True)
    labels = labels.ravel()
    means = np.bincount(labels, diameters) / np.bincount(labels)
    return labels, means


def _group_graph(lattice: GradedLattice, mask: np.ndarray, diameter: float) -> LatticeGraph:
    used, struts = np.unique(lattice.struts[mask], return_inverse=True)
    return LatticeGraph(
        nodes=lattice.nodes[used],
        struts=struts.reshape(-1, 2),
        diameter=float(diameter),
        lattice_vectors=np.eye(3),
        cells=(1, 1, 1),
    )


def _union(lattice: GradedLattice, segments: int, step: float, rng) -> trimesh.Trimesh:
    labels, means = diameter_groups(lattice.diameters, step)
    solids = [
        _solid(_group_graph(lattice, labels == g, means[g]), segments, rng)
        for g in range(len(means))
    ]
    mesh = manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add).to_mesh()
    vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def _float32_collisions(vertices: np.ndarray) -> np.ndarray:
    """Indices of vertices that share their float32 position with an earlier vertex."""
    _, first, inverse = np.unique(
        vertices.astype(np.float32), axis=0, return_index=True, return_inverse=True
    )
    return np.nonzero(first[inverse.ravel()] != np.arange(len(vertices)))[0]


def _nudge(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Move float32-coincident vertices towards their neighbours' centroid by 8 float32 ulps."""
    vertices = mesh.vertices.copy()
    for _ in range(_NUDGE_ROUNDS):
        clash = _float32_collisions(vertices)
        if len(clash) == 0:
            break
        neighbours = mesh.vertex_neighbors
        for i in clash:  # a handful per mesh
            centroid = vertices[neighbours[i]].mean(0)
            direction = centroid - vertices[i]
            ulp = np.spacing(np.abs(vertices[i]).max().astype(np.float32))
            vertices[i] += 8 * float(ulp) * direction / np.linalg.norm(direction)
        logger.info("nudged %d float32-coincident vertices", len(clash))
    return trimesh.Trimesh(vertices=vertices, faces=mesh.faces, process=False)


def is_watertight_stl(mesh: trimesh.Trimesh) -> bool:
    """Whether the mesh is still watertight as an STL reader sees it (float32, welded)."""
    data = trimesh.exchange.stl.export_stl(mesh)
    return bool(trimesh.load(io.BytesIO(data), file_type="stl", force="mesh").is_watertight)


def graded_mesh(
    lattice: GradedLattice, segments: int = 8, diameter_step: float = 0.02, seed: int = 0
) -> trimesh.Trimesh:
    """Watertight ``trimesh.Trimesh`` of a graded lattice (cell units).

    segments: polygon sides of each strut (and of the joint spheres).
    diameter_step: relative width of the diameter groups (0.02: within 1 % of each strut's own).
    seed: fixes the discretization jitter (reproducible output).

    Raises:
        MetainvError: if no mesh that stays watertight as STL was obtained.
    """
    if segments < 3:
        raise MetainvError(f"segments must be at least 3, got {segments}")
    if lattice.n_struts == 0:
        raise MetainvError("the graded lattice has no struts to mesh")
    rng = np.random.default_rng(seed)
    for attempt in range(_ATTEMPTS):
        mesh = _union(lattice, segments, diameter_step, rng)
        if mesh.is_watertight:
            mesh = _nudge(mesh)
            if is_watertight_stl(mesh):
                return mesh
        logger.info("graded mesh attempt %d not watertight as STL; new jitter", attempt)
    raise MetainvError(
        f"could not build a watertight STL mesh in {_ATTEMPTS} attempts; try other --segments"
    )
