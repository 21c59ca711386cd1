"""Level sets as closed solids: marching cubes of a sampled field, closed at the box, one body.

A solid ``{x : f(x) < 0}`` is given by samples ``f[i, j, k]`` at ``origin + (i, j, k) * spacing``.
The grid is padded with one layer of void (``f > 0``) on every side, so the iso-surface never
reaches the border of the sampled region and is closed where the solid meets the box; marching
cubes (scikit-image, Lewiner) triangulates ``f = 0``; coincident vertices are merged and the
degenerate triangles of samples exactly at ``f = 0`` dropped (trimesh process and validate).
Optionally the vertices are clamped into a box (the closing caps of a field sampled at voxel
centres then lie on the box faces). By default only the largest connected body is kept (loose
islands would fall out of a printed part) and the count of bodies is reported (also in
``mesh.metadata["bodies"]`` and ``["dropped_volume"]``); enclosed cavities are not bodies;
normals point outwards. Vertices that share a float32 position are separated
(:func:`metainv.mesh.stl.separate_coincident_vertices`), as for every mesh of this package.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import trimesh

from metainv.errors import MetainvError
from metainv.mesh.stl import separate_coincident_vertices

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LevelSetMesh:
    """A meshed level set.

    mesh: the closed ``trimesh.Trimesh`` (outward normals; the largest body unless asked not to)
    bodies: connected bodies of the full iso-surface (1 when there were no islands)
    dropped_volume: fraction of the total volume in the dropped bodies (0 when none dropped)
    """

    mesh: trimesh.Trimesh
    bodies: int
    dropped_volume: float


def box_function(axes: Sequence[np.ndarray], lengths: Sequence[float]) -> np.ndarray:
    """``b(x) = max_k max(-x_k, x_k - L_k)`` (negative inside ``[0, L1] x [0, L2] x [0, L3]``)
    on the grid of the three coordinate ``axes`` (n1,), (n2,), (n3,); returns (n1, n2, n3).

    ``max(g, b)`` clips the solid ``{g <= 0}`` to the box with a surface exactly on its faces.
    """
    X = np.meshgrid(*axes, indexing="ij", sparse=True)
    box = np.full(tuple(len(a) for a in axes), -np.inf)
    for x, length in zip(X, lengths, strict=True):
        box = np.maximum(box, np.maximum(-x, x - length))
    return box


def shells(mesh: trimesh.Trimesh) -> tuple[list[trimesh.Trimesh], list[trimesh.Trimesh]]:
    """The closed shells of ``mesh`` (outward normals) as ``(bodies, cavities)``: a shell of
    positive signed volume bounds a solid body, one of negative volume inside a body's bounding
    box an enclosed cavity (any other shell is a body wound inside out, returned inverted)."""
    parts = mesh.split(only_watertight=False)
    if len(parts) == 0:
        parts = [mesh]
    bodies = [part for part in parts if part.volume > 0]
    cavities = []
    for part in (part for part in parts if part.volume <= 0):
        low, high = part.bounds
        if any(np.all(low >= b.bounds[0]) and np.all(high <= b.bounds[1]) for b in bodies):
            cavities.append(part)
        else:  # a loose shell wound inside out is a body, not a cavity
            part.invert()
            bodies.append(part)
    return bodies, cavities


def count_bodies(mesh: trimesh.Trimesh) -> int:
    """Number of solid bodies of a closed mesh (enclosed cavities are not bodies)."""
    return len(shells(mesh)[0])


def fill_cavities(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, int]:
    """``(mesh without its cavity shells, number removed)``: enclosed voids (e.g. the slivers a
    boolean union leaves between overlapping struts) are filled; they could not be printed
    (trapped powder or resin) and an STL reader counts them as extra shells."""
    bodies, cavities = shells(mesh)
    if not cavities or not bodies:
        return mesh, 0
    return trimesh.util.concatenate(bodies), len(cavities)


def largest_body(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, int, float]:
    """``(largest body by volume, number of bodies, dropped volume fraction)`` of a closed mesh
    with outward normals; the cavities inside the kept body's bounding box stay with it."""
    bodies, cavities = shells(mesh)
    if len(bodies) <= 1:
        return mesh, max(len(bodies), 1), 0.0
    volumes = np.array([body.volume for body in bodies])
    largest = int(np.argmax(volumes))
    low, high = bodies[largest].bounds
    inner = [c for c in cavities if np.all(c.bounds[0] >= low) and np.all(c.bounds[1] <= high)]
    kept = trimesh.util.concatenate([bodies[largest], *inner]) if inner else bodies[largest]
    dropped = float(1 - volumes[largest] / volumes.sum())
    return kept, len(bodies), dropped


def levelset_mesh(
    field: np.ndarray,
    spacing: float,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    box: tuple[Sequence[float], Sequence[float]] | None = None,
    keep_largest: bool = True,
    void: float = 1.0,
) -> LevelSetMesh:
    """Closed triangle mesh of ``{f < 0}`` (module docstring).

    field: (n1, n2, n3) samples, at least 2 per axis; spacing: sample distance (output length
    unit); origin: (3,) position of sample ``[0, 0, 0]``; box: optional ``(lower (3,), upper
    (3,))`` that the vertices are clamped into; keep_largest: drop every body but the largest;
    void: value of the padding layer (> 0).

    Raises:
        MetainvError: when no sample is solid.
    """
    from skimage.measure import marching_cubes

    field = np.asarray(field, dtype=np.float64)
    if field.ndim != 3 or min(field.shape) < 2:
        raise MetainvError(f"the level set must be a 3-D grid of >= 2 samples, got {field.shape}")
    if not spacing > 0 or not void > 0:
        raise MetainvError(f"spacing and void must be positive, got {spacing}, {void}")
    if not (field < 0).any():
        raise MetainvError("the level set has no solid sample: nothing to mesh")
    padded = np.pad(-field, 1, mode="constant", constant_values=-void)  # solid where > 0
    vertices, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(spacing,) * 3)
    vertices += np.asarray(origin, dtype=np.float64) - spacing  # padded index 0 is outside
    if box is not None:
        vertices = np.clip(vertices, np.asarray(box[0], float), np.asarray(box[1], float))
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=True, validate=True)
    if mesh.volume < 0:
        mesh.invert()
    bodies, dropped = 1, 0.0
    if keep_largest:
        mesh, bodies, dropped = largest_body(mesh)
        if bodies > 1:
            logger.info(
                "kept the largest of %d bodies (dropped %.3g %% of the volume)",
                bodies,
                100 * dropped,
            )
    else:
        bodies = max(count_bodies(mesh), 1)
    mesh.vertices = separate_coincident_vertices(mesh.vertices, mesh.faces)
    mesh.metadata.update(bodies=bodies, dropped_volume=dropped)
    return LevelSetMesh(mesh=mesh, bodies=bodies, dropped_volume=dropped)
