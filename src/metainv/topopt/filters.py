r"""Density filter on the structured grid (a sparse convolution matrix).

.. math:: \tilde\rho_e = \frac{\sum_i H_{ei} x_i}{\sum_i H_{ei}}, \qquad
          H_{ei} = \max(0, r_{min} - \lVert c_e - c_i \rVert),

with element centroids ``c`` in element units. The chain rule back to the design variables is
``df/dx = H^T (df/d\tilde\rho / H_s)`` with ``H_s = H 1``. The matrix is built by looping over
the few neighbour offsets inside the radius, never over elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from metainv.errors import MetainvError
from metainv.fem import HexGrid


@dataclass(frozen=True, eq=False)
class DensityFilter:
    """Weights ``H`` (nel, nel) CSR and row sums ``H_s`` (nel,)."""

    H: sp.csr_matrix
    Hs: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Filtered densities (nel,) of design variables (nel,)."""
        return (self.H @ x) / self.Hs

    def backward(self, gradient: np.ndarray) -> np.ndarray:
        """Gradient with respect to x (nel,) of a gradient with respect to the filtered field."""
        return self.H.T @ (gradient / self.Hs)


def density_filter(grid: HexGrid, radius: float) -> DensityFilter:
    """The density filter of radius ``radius`` (element units, > 0; <= 1 means no filtering)."""
    if not radius > 0:
        raise MetainvError(f"filter radius must be positive, got {radius}")
    reach = int(np.ceil(radius)) - 1
    ijk = grid.element_ijk
    shape = np.array(grid.shape)
    rows, cols, weights = [], [], []
    span = range(-reach, reach + 1)
    offsets = np.array([(a, b, c) for a in span for b in span for c in span]).reshape(-1, 3)
    for offset in offsets:
        weight = radius - float(np.linalg.norm(offset))
        if weight <= 0:
            continue
        target = ijk + offset
        inside = np.all((target >= 0) & (target < shape), axis=1)
        source = np.flatnonzero(inside)
        t = target[inside]
        rows.append(source)
        cols.append(grid.element_index(t[:, 0], t[:, 1], t[:, 2]))
        weights.append(np.full(source.size, weight))
    H = sp.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(grid.n_elements, grid.n_elements),
    )
    return DensityFilter(H=H, Hs=np.asarray(H.sum(axis=1)).ravel())
