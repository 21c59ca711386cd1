"""Local check: homogenize the graded cell sampled at a point, compare with the target there.

The cell sampled at ``x`` is the superposed cell with basis ``A(x)`` (SI Eq. 15) and strut
diameters ``d^s(x)`` (SI Eq. 16), struts below the drop threshold removed, repeated periodically.
Its stiffness comes from the Timoshenko-beam homogenization of :mod:`metainv.truss.homogenize`
with one diameter per strut (:func:`metainv.truss.homogenize.lattice_stiffness`). The
interpolated target is ``sum_i N(x, x_i) C_i`` with ``C_i`` the FE stiffness of control design
``i``; the error is the NMSE of :func:`metainv.tensors.nmse`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from metainv.errors import MetainvError
from metainv.grading._problem import GradingProblem
from metainv.grading._superpose import SuperposedCell, superposed_cell
from metainv.tensors import nmse
from metainv.truss.homogenize import BeamMaterial, homogenize_many, lattice_stiffness
from metainv.truss.lattice import PeriodicLattice

__all__ = [
    "LocalCell",
    "LocalCheck",
    "grading_direction",
    "local_cell",
    "local_check",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LocalCell:
    """The graded cell at one point, as a periodic lattice with one diameter per strut.

    position: (3,) sampling point (cell units)
    lattice: periodic superposed cell without the dropped struts (and their unused nodes)
    lattice_vectors: (3, 3) ``A(x)``, columns are the lattice vectors (cell units)
    diameters: (m,) strut diameters ``d^s(x)`` (cell units)
    weights: (k,) RBF weights ``N(x, x_i)``
    """

    position: np.ndarray
    lattice: PeriodicLattice
    lattice_vectors: np.ndarray
    diameters: np.ndarray
    weights: np.ndarray


def local_cell(
    problem: GradingProblem,
    x: np.ndarray,
    min_relative_diameter: float = 0.05,
    cell: SuperposedCell | None = None,
) -> LocalCell:
    """The periodic graded cell at point ``x`` (3,) (see the module docstring)."""
    cell = cell or superposed_cell(problem.designs)
    x = np.asarray(x, dtype=np.float64).reshape(3)
    weights = problem.weights(x[None])[0]
    full = cell.periodic_diameters
    diameters = full @ weights  # SI Eq. 16
    keep = diameters > min_relative_diameter * full.max(1)
    lattice = cell.periodic
    used = np.unique(lattice.struts[keep])
    new_index = np.full(lattice.n_nodes, -1, dtype=np.int64)
    new_index[used] = np.arange(len(used))
    reduced = PeriodicLattice(
        nodes=lattice.nodes[used],
        struts=new_index[lattice.struts[keep]],
        offsets=lattice.offsets[keep],
        topology=(),
    )
    return LocalCell(
        position=x,
        lattice=reduced,
        lattice_vectors=problem.basis(x[None])[0],
        diameters=diameters[keep],
        weights=weights,
    )


@dataclass(frozen=True, eq=False)
class LocalCheck:
    """Local stiffness of the graded lattice along the grading direction.

    positions: (p, 3) sampling points (cell units)
    coordinate: (p,) their distance from the first control point along ``direction``
    direction: (3,) unit vector of the grading direction
    C_local: (p, 6, 6) stiffness of the sampled cells (units of E_b)
    C_target: (p, 6, 6) interpolated target ``sum_i N_i C_i``
    nmse: (p,) NMSE of ``C_local`` against ``C_target``
    C_controls: (k, 6, 6) FE stiffness of the control designs
    """

    positions: np.ndarray
    coordinate: np.ndarray
    direction: np.ndarray
    C_local: np.ndarray
    C_target: np.ndarray
    nmse: np.ndarray
    C_controls: np.ndarray


def grading_direction(problem: GradingProblem) -> tuple[np.ndarray, np.ndarray]:
    """Start point (3,) and unit direction (3,) of the grading: from the first control point to
    the farthest other one (the body's x1 axis for a single control point)."""
    points = problem.points
    start = points[0]
    distance = np.linalg.norm(points - start, axis=1)
    if distance.max() == 0.0:
        return start, np.array([1.0, 0.0, 0.0])
    far = points[int(np.argmax(distance))]
    return start, (far - start) / distance.max()


def local_check(
    problem: GradingProblem,
    n_samples: int = 21,
    min_relative_diameter: float = 0.05,
    material: BeamMaterial = BeamMaterial(),
) -> LocalCheck:
    """Sample ``n_samples`` cells along the grading direction, across the body's extent, and
    compare their stiffness with the interpolated target."""
    if n_samples < 2:
        raise MetainvError(f"the local check needs at least 2 samples, got {n_samples}")
    start, direction = grading_direction(problem)
    bounds = np.stack([problem.body.lower, problem.body.upper])  # (2, 3)
    corners = bounds[np.array(list(np.ndindex(2, 2, 2))), np.arange(3)]  # (8, 3)
    projections = (corners - start) @ direction
    coordinate = np.linspace(projections.min(), projections.max(), n_samples)
    positions = start + coordinate[:, None] * direction
    cell = superposed_cell(problem.designs)
    C_controls = homogenize_many(problem.designs, material)
    C_local = np.empty((n_samples, 6, 6))
    for i, x in enumerate(positions):
        sample = local_cell(problem, x, min_relative_diameter, cell)
        C_local[i] = lattice_stiffness(
            sample.lattice, sample.lattice_vectors, sample.diameters, material
        )
    C_target = np.einsum("pk,kij->pij", problem.weights(positions), C_controls)
    return LocalCheck(
        positions=positions,
        coordinate=coordinate,
        direction=direction,
        C_local=C_local,
        C_target=C_target,
        nmse=np.asarray(nmse(C_target, C_local)),
        C_controls=C_controls,
    )
