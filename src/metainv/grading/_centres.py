r"""Cell centres of the graded lattice from the projection functions (SI Eq. 13).

The relaxed lattice function :math:`\tau'(x) = \frac18 \prod_i [1 + \cos(2\pi\mu\phi_i(x))]`
(``mu = 1``) is 1 at the lattice points ``phi in Z^3`` and vanishes on the planes
``phi_i in Z + 1/2``; its isolated minima, where the three planes meet, are the points
``phi(x) = n + 1/2`` with ``n`` in ``Z^3``: the centres of the cells spanned by the lattice points
``n .. n + 1``. Each is found by Newton's method on the finite-element ``phi`` from the grid node
closest to it in ``phi``; the cells that meet the body are kept, each with its integer label
``n``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metainv.grading._body import Body
from metainv.grading._fem import ProjectionField

__all__ = ["CellCentres", "find_cell_centres"]

logger = logging.getLogger(__name__)

_NEWTON_STEPS = 30
_NEWTON_TOL = 1e-11


@dataclass(frozen=True, eq=False)
class CellCentres:
    """Cell centres of the graded lattice.

    positions: (N, 3) centres ``x_nu`` (cell units), where ``phi(x_nu) = indices + 1/2``
    indices: (N, 3) int64 lattice labels ``n`` of the cells (sorted lexicographically)
    """

    positions: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)


def _seeds(field: ProjectionField) -> tuple[np.ndarray, np.ndarray]:
    """One start point per cell label met on the grid: the node nearest the centre in phi."""
    nodes = field.grid.node_coordinates
    phi = field.values
    labels = np.floor(phi).astype(np.int64)
    error = np.abs(phi - labels - 0.5).max(axis=1)
    unique, inverse = np.unique(labels, axis=0, return_inverse=True)
    order = np.lexsort((error, inverse.ravel()))
    _, first = np.unique(inverse.ravel()[order], return_index=True)
    return unique, nodes[order[first]]


def _newton(field: ProjectionField, targets: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Solve ``phi(x) = targets`` (p, 3) from x (p, 3); returns (x, converged (p,) bool)."""
    x = x.copy()
    for _ in range(_NEWTON_STEPS):
        phi, jacobian = field.evaluate(x)
        residual = phi - targets
        if np.abs(residual).max(initial=0.0) < _NEWTON_TOL:
            break
        singular = np.abs(np.linalg.det(jacobian)) < 1e-12
        jacobian[singular] = np.eye(3)
        x -= np.linalg.solve(jacobian, residual[..., None])[..., 0]
    phi, _ = field.evaluate(x)
    return x, np.abs(phi - targets).max(axis=1) < 1e-8


#: Reference-cube points tested for overlap with the body: centre, face centres, corners.
_PROBES = (
    np.array(
        [p for p in np.ndindex(3, 3, 3) if sum(c == 1 for c in p) in (3, 2, 0)], dtype=np.float64
    )
    / 2
    - 0.5
)


_SHRINK = 1e-4


def find_cell_centres(
    field: ProjectionField,
    body: Body,
    basis: Callable[[np.ndarray], np.ndarray] | None = None,
) -> CellCentres:
    """All points ``phi(x) = n + 1/2`` (the isolated minima of tau', SI Eq. 13) whose cell
    meets the body: with ``basis`` (points (p, 3) -> bases (p, 3, 3)) a cell is kept when its
    centre, a face centre or a corner (``x + A(x) (X - 1/2)``) lies in the body (the lattice is
    then clipped to the body); without it, when its centre does."""
    labels, start = _seeds(field)
    positions, converged = _newton(field, labels + 0.5, start)
    if not converged.all():
        logger.warning("%d cell centres did not converge and are skipped", int((~converged).sum()))
    if basis is None:
        keep = converged & body.contains(positions)
    else:
        shrunk = _PROBES * (1.0 - _SHRINK)  # a cell that only touches the body is left out
        probes = positions[:, None, :] + np.einsum("cij,sj->csi", basis(positions), shrunk)
        keep = converged & body.contains(probes.reshape(-1, 3)).reshape(len(positions), -1).any(1)
    logger.info("cell centres: %d in the body (of %d candidates)", int(keep.sum()), len(keep))
    return CellCentres(positions=positions[keep], indices=labels[keep])
