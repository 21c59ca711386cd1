r"""De-homogenization: the optimized density field as a printable graded lattice (STL).

A law names its part builder in ``metadata["part"]``; :data:`PARTS` maps that name to a
function ``(density (nx, ny, nz), metadata, PartOptions) -> trimesh.Trimesh`` (element units,
one element = edge 1). Laws without a builder (``solid``, ``isotruss``) write no part.

``tpms`` (gyroid)
    The TPMS with a spatially varying level offset, :func:`metainv.tpms.graded.graded_mesh`;
    ``period`` is the TPMS period in elements.
``truss``
    The law's truss (:data:`metainv.topopt.lattices.TRUSS_TOPOLOGY`) tessellated over the box:
    ``N_i = max(1, round(n_i / period))`` cells per axis, of edge ``n_i / N_i`` elements (so the
    cells fill the box exactly; cubic when ``period`` divides the grid). Every strut gets the
    diameter of the uniform lattice at the relative density ``rho_t = s rho(m)`` of its midpoint
    ``m`` (``s`` the law's density scale, ``rho(m)`` the trilinear interpolation of the element
    densities; :func:`metainv.truss.lattice.strut_diameter`); struts below the truss design range
    (``rho_t < 0.002``) are left out. Diameters are grouped into ``levels`` classes (each class
    drawn with the root-mean-square diameter of its struts, which keeps its volume); every class
    is the union of cylinders and joint spheres in general position of
    :mod:`metainv.truss.export` (its ``_solid``), the classes are united with manifold3d, and
    distinct vertices that the union leaves at one float32 position are moved apart
    (:func:`separate_coincident_vertices`). The union can still hold slivers that an STL
    reader welds into non-manifold edges (more likely the more struts), so the part is checked
    as read back from STL and rebuilt with fresh jitter, up to 4 times, before an error. Passive
    (solid) elements are drawn as the densest truss. Cost on one shared core, 60 x 20 x 4
    elements: 7 s at period 4 (2,600 struts), about 50 s per attempt at period 2 (18,500).
``spinodoid``
    The law's spinodoid field (Kumar et al. 2020, Eq. 1, same wave directions) with wavelength
    ``period`` elements (wave number ``beta = 2 pi / period``), solid where
    ``phi <= phi_0(rho(p))`` with the level of Eq. 3, ``phi_0 = sqrt(2) erfinv(2 rho - 1)``, at
    the interpolated density ``rho(p)`` (the ensemble rule: a region of uniform ``rho`` has
    density ``rho`` on average); sampled and closed on the box like the TPMS part
    (:func:`metainv.tpms.graded.field_mesh`); only the largest connected body is kept (islands
    would fall out of a print).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.special import erfinv

from metainv.errors import MetainvError

logger = logging.getLogger(__name__)

#: Largest |level| of the spinodoid field (the field has unit variance): density 0 and 1.
_SPINODOID_LEVEL_CLIP = 10.0


@dataclass(frozen=True)
class PartOptions:
    """period: lattice period in elements (TPMS period, truss cell edge, spinodoid wavelength);
    voxels_per_element: samples per element edge (TPMS, spinodoid); segments: polygon sides of
    a strut (truss); levels: diameter classes (truss); seed: field realization and mesh jitter."""

    period: float = 2.0
    voxels_per_element: int = 6
    segments: int = 8
    levels: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.period > 0:
            raise MetainvError(f"lattice period must be positive, got {self.period}")
        if self.voxels_per_element < 1:
            raise MetainvError(f"voxels per element must be >= 1, got {self.voxels_per_element}")
        if self.levels < 1:
            raise MetainvError(f"diameter classes must be >= 1, got {self.levels}")


PartBuilder = Callable[[np.ndarray, dict, PartOptions], trimesh.Trimesh]


def _check_density(density: np.ndarray) -> np.ndarray:
    density = np.asarray(density, dtype=float)
    if density.ndim != 3:
        raise MetainvError(f"density must be a 3-D array (nx, ny, nz), got shape {density.shape}")
    return density


def tpms_part(density: np.ndarray, metadata: dict, options: PartOptions) -> trimesh.Trimesh:
    """Graded TPMS (see the module docstring)."""
    from metainv.tpms.graded import graded_mesh

    return graded_mesh(
        _check_density(density),
        surface=metadata.get("surface", "gyroid"),
        variant=metadata.get("variant", "sheet"),
        period=options.period,
        voxels_per_element=options.voxels_per_element,
    )


def _is_watertight_stl(mesh: trimesh.Trimesh) -> bool:
    """Watertight as an STL reader sees it (float32 vertices welded by position)."""
    data = trimesh.exchange.stl.export_stl(mesh)
    return bool(trimesh.load(io.BytesIO(data), file_type="stl", force="mesh").is_watertight)


#: Attempts (fresh discretization jitter) at a watertight graded truss.
_TRUSS_ATTEMPTS = 4
#: Fraction of the way to its one-ring centroid that a coincident vertex is moved.
_SEPARATION = 1e-3


def separate_coincident_vertices(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Vertices (n, 3) float32 with topologically distinct vertices at the same position moved
    apart.

    A union of many solids is manifold but can leave distinct vertices at one float32 position
    (where the class meshes' surfaces meet by chance); an STL reader welds them into
    non-manifold edges. Every repeated position but its first vertex is moved ``1e-3`` of the
    way towards the centroid of its adjacent vertices (along its own surface, about 1e-5
    element units), which keeps them apart after the weld and changes the solid by far less
    than the polygon error.
    """
    vertices = np.array(vertices, dtype=np.float32)
    _, first = np.unique(vertices, axis=0, return_index=True)
    moved = np.ones(len(vertices), dtype=bool)
    moved[first] = False
    if not moved.any():
        return vertices
    total = np.zeros((len(vertices), 3))
    count = np.zeros(len(vertices))
    for corner in range(3):
        others = faces[:, [(corner + 1) % 3, (corner + 2) % 3]]
        np.add.at(total, faces[:, corner], vertices[others].sum(axis=1))
        np.add.at(count, faces[:, corner], 2.0)
    centroid = total / np.maximum(count, 1.0)[:, None]
    vertices[moved] += (_SEPARATION * (centroid[moved] - vertices[moved])).astype(np.float32)
    logger.info("separated %d coincident vertices of %d", int(moved.sum()), len(vertices))
    return vertices


def graded_truss_graph(
    density: np.ndarray,
    topology: tuple[tuple[int, int], ...],
    density_scale: float,
    period: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tessellated truss over the box with per-strut diameters.

    Returns ``(nodes (n, 3) in element units, struts (m, 2), diameters (m,), cell edges (3,))``;
    struts whose relative density is below the truss design range are dropped.
    """
    from metainv.tpms.graded import element_density_at
    from metainv.truss.compound import compound_graph
    from metainv.truss.design import RELATIVE_DENSITY_RANGE
    from metainv.truss.export import tile_reference_graph
    from metainv.truss.lattice import periodic_lattice, strut_diameter

    density = _check_density(density)
    shape = np.array(density.shape, dtype=float)
    cells = tuple(max(1, round(n / period)) for n in density.shape)
    edge = shape / np.array(cells)
    cell = compound_graph(topology)
    reference, struts = tile_reference_graph(
        np.asarray(cell.nodes, dtype=float), np.asarray(cell.struts, dtype=np.int64), cells
    )
    nodes = reference * edge
    middle = 0.5 * (nodes[struts[:, 0]] + nodes[struts[:, 1]])
    relative = density_scale * element_density_at(density, middle.T)
    keep = relative >= RELATIVE_DENSITY_RANGE[0]
    diameters = np.asarray(
        strut_diameter(periodic_lattice(topology), np.diag(edge), relative[keep]), dtype=float
    )
    return nodes, struts[keep], diameters, edge


def truss_part(density: np.ndarray, metadata: dict, options: PartOptions) -> trimesh.Trimesh:
    """Graded truss (see the module docstring)."""
    import manifold3d

    from metainv.topopt.lattices import TRUSS_TOPOLOGY
    from metainv.truss.export import LatticeGraph
    from metainv.truss.export import _solid as strut_union  # cylinders + joints, jittered

    topology = tuple(tuple(pair) for pair in metadata.get("topology", TRUSS_TOPOLOGY))
    nodes, struts, diameters, edge = graded_truss_graph(
        density, topology, float(metadata["density_scale"]), options.period
    )
    if struts.size == 0:
        raise MetainvError("the density field is below the truss range everywhere: no struts")
    edges = np.linspace(diameters.min(), diameters.max(), options.levels + 1)
    classes = np.clip(np.searchsorted(edges, diameters, side="right") - 1, 0, options.levels - 1)
    graphs = []
    for level in np.unique(classes):
        used, local = np.unique(struts[classes == level], return_inverse=True)
        graphs.append(
            LatticeGraph(
                nodes=nodes[used],
                struts=local.reshape(-1, 2),
                diameter=float(np.sqrt(np.mean(diameters[classes == level] ** 2))),
                lattice_vectors=np.diag(edge),
                cells=(1, 1, 1),
            )
        )
    rng = np.random.default_rng(options.seed)
    for attempt in range(_TRUSS_ATTEMPTS):
        solids = [strut_union(graph, options.segments, rng) for graph in graphs]
        union = manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add).to_mesh()
        faces = np.asarray(union.tri_verts, dtype=np.int64)
        vertices = separate_coincident_vertices(
            np.asarray(union.vert_properties, dtype=np.float32)[:, :3], faces
        )
        mesh = trimesh.Trimesh(vertices=vertices.astype(np.float64), faces=faces, process=False)
        if mesh.is_watertight and _is_watertight_stl(mesh):
            logger.info(
                "graded truss: %d struts in %d diameter classes, %d triangles",
                len(struts),
                len(graphs),
                len(mesh.faces),
            )
            return mesh
        logger.info("graded truss attempt %d not watertight as STL; new jitter", attempt)
    raise MetainvError("the graded truss mesh is not watertight; try another --period")


def graded_spinodoid_field(
    density: np.ndarray,
    theta: tuple[float, float, float] = (0.0, 0.0, 90.0),
    period: float = 2.0,
    voxels_per_element: int = 6,
    seed: int = 0,
) -> np.ndarray:
    """Signed field ``phi - phi_0(rho(p))`` (nx r, ny r, nz r) at voxel centres (solid < 0)."""
    from metainv.spinodoid.design import SpinodoidDesign
    from metainv.spinodoid.field import field_on_grid, sample_waves
    from metainv.tpms.graded import element_density_at

    density = _check_density(density)
    r = int(voxels_per_element)
    axes = [(np.arange(n * r) + 0.5) / r for n in density.shape]
    directions, phases = sample_waves(SpinodoidDesign(0.5, np.asarray(theta), seed=seed))
    phi = field_on_grid(directions, phases, axes, beta=2.0 * np.pi / period)
    rho = element_density_at(density, np.meshgrid(*axes, indexing="ij"))
    level = np.sqrt(2.0) * erfinv(np.clip(2.0 * rho - 1.0, -1.0, 1.0))
    return phi - np.clip(level, -_SPINODOID_LEVEL_CLIP, _SPINODOID_LEVEL_CLIP)


def spinodoid_part(density: np.ndarray, metadata: dict, options: PartOptions) -> trimesh.Trimesh:
    """Graded spinodoid (see the module docstring)."""
    from metainv.tpms.graded import field_mesh

    density = _check_density(density)
    field = graded_spinodoid_field(
        density,
        tuple(metadata.get("theta", (0.0, 0.0, 90.0))),
        options.period,
        options.voxels_per_element,
        options.seed,
    )
    mesh = field_mesh(field, density.shape, options.voxels_per_element)
    bodies = mesh.split(only_watertight=False)
    if len(bodies) > 1:
        volumes = np.array([abs(body.volume) for body in bodies])
        mesh = bodies[int(np.argmax(volumes))]
        logger.info(
            "graded spinodoid: kept the largest of %d bodies (%.3g %% of the volume dropped)",
            len(bodies),
            100 * (1 - volumes.max() / volumes.sum()),
        )
    if mesh.volume < 0:
        mesh.invert()
    return mesh


#: ``metadata["part"]`` of a law -> its part builder.
PARTS: dict[str, PartBuilder] = {
    "tpms": tpms_part,
    "truss": truss_part,
    "spinodoid": spinodoid_part,
}


def dehomogenize(
    density: np.ndarray, metadata: dict, options: PartOptions | None = None
) -> trimesh.Trimesh | None:
    """The graded part of a law's density field (nx, ny, nz), or None when the law has no
    part builder (``metadata["part"]`` not in :data:`PARTS`)."""
    builder = PARTS.get((metadata or {}).get("part", ""))
    if builder is None:
        return None
    return builder(density, metadata, options or PartOptions())
