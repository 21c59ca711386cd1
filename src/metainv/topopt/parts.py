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
    (``rho_t < 0.002``) are left out. The part is the shared strut mesher
    :func:`metainv.mesh.strut_mesh` (every strut a cylinder of its own diameter, joint spheres,
    one manifold3d union in general position, float32-coincident vertices separated, checked as
    read back from STL and rebuilt with fresh jitter up to 4 times). Passive (solid) elements
    are drawn as the densest truss.
``spinodoid``
    The law's spinodoid field (Kumar et al. 2020, Eq. 1, same wave directions) with wavelength
    ``period`` elements (wave number ``beta = 2 pi / period``), solid where
    ``phi <= phi_0(rho(p))`` with the level of Eq. 3, ``phi_0 = sqrt(2) erfinv(2 rho - 1)``, at
    the interpolated density ``rho(p)`` (the ensemble rule: a region of uniform ``rho`` has
    density ``rho`` on average); sampled and closed on the box like the TPMS part
    (:func:`metainv.tpms.graded.field_mesh`, the shared level-set mesher
    :func:`metainv.mesh.levelset_mesh`); only the largest connected body is kept (islands would
    fall out of a print).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.special import erfinv

from metainv.errors import MetainvError
from metainv.mesh import largest_body, strut_mesh

#: Largest |level| of the spinodoid field (the field has unit variance): density 0 and 1.
_SPINODOID_LEVEL_CLIP = 10.0


@dataclass(frozen=True)
class PartOptions:
    """period: lattice period in elements (TPMS period, truss cell edge, spinodoid wavelength);
    voxels_per_element: samples per element edge (TPMS, spinodoid); segments: polygon sides of
    a strut (truss); seed: field realization and mesh jitter; keep_islands: keep every body of
    the part (default: only the largest; the others are counted in ``mesh.metadata``);
    element_size_mm: the edge of one finite element in mm, so that ``part.stl`` is written in mm
    (default None: in element units)."""

    period: float = 2.0
    voxels_per_element: int = 6
    segments: int = 8
    seed: int = 0
    keep_islands: bool = False
    element_size_mm: float | None = None

    def __post_init__(self) -> None:
        if not self.period > 0:
            raise MetainvError(f"lattice period must be positive, got {self.period}")
        if self.voxels_per_element < 1:
            raise MetainvError(f"voxels per element must be >= 1, got {self.voxels_per_element}")
        if self.element_size_mm is not None and not self.element_size_mm > 0:
            raise MetainvError(f"element size must be positive, got {self.element_size_mm} mm")


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
        keep_largest=not options.keep_islands,
    )


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
    from metainv.topopt.lattices import TRUSS_TOPOLOGY

    topology = tuple(tuple(pair) for pair in metadata.get("topology", TRUSS_TOPOLOGY))
    nodes, struts, diameters, _ = graded_truss_graph(
        density, topology, float(metadata["density_scale"]), options.period
    )
    if struts.size == 0:
        raise MetainvError("the density field is below the truss range everywhere: no struts")
    return strut_mesh(nodes, struts, diameters, segments=options.segments, seed=options.seed)


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
    return field_mesh(
        field, density.shape, options.voxels_per_element, keep_largest=not options.keep_islands
    )


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
    part builder (``metadata["part"]`` not in :data:`PARTS`). One body: unless
    ``options.keep_islands``, only the largest body is kept (islands are the fragments of
    near-void regions, which would fall out of a print); ``mesh.metadata`` records ``bodies``
    (found) and ``dropped_volume`` (fraction of the volume removed)."""
    builder = PARTS.get((metadata or {}).get("part", ""))
    if builder is None:
        return None
    options = options or PartOptions()
    mesh = builder(density, metadata, options)
    found = int(mesh.metadata.get("bodies", 1))
    dropped = float(mesh.metadata.get("dropped_volume", 0.0))
    if not options.keep_islands:
        mesh, bodies, more = largest_body(mesh)
        found, dropped = max(found, bodies), dropped + more
    mesh.metadata.update(bodies=found, dropped_volume=dropped)
    return mesh
