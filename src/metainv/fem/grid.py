"""A structured grid of axis-aligned hexahedral elements (voxels)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from metainv.errors import MetainvError
from metainv.fem.hex8 import VTK_NODES

ORDERS = ("C", "F")


@dataclass(frozen=True)
class HexGrid:
    """A box of ``shape[0] x shape[1] x shape[2]`` hexahedral elements.

    shape: elements per axis ``(n_x, n_y, n_z)``
    spacing: element edge lengths (3,) (a scalar is broadcast), in the caller's length unit
    origin: (3,) position of node ``(0, 0, 0)``, same unit
    periodic: opposite faces identified: ``shape`` nodes per axis instead of ``shape + 1``
    order: numbering of nodes and elements by their integer coordinates ``(i, j, k)``: ``"C"``
        (``k`` fastest, numpy's C order: ``p = (i m_y + j) m_z + k``) or ``"F"`` (``i`` fastest:
        ``p = i + m_x (j + m_y k)``)

    Element ``(i, j, k)`` occupies ``origin + spacing * [i, i+1] x [j, j+1] x [k, k+1]``; an
    element array reshapes to ``shape`` in the grid's order. Node ``p`` owns the elastic
    degrees of freedom ``3p, 3p+1, 3p+2`` (displacements along x, y, z).
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    periodic: bool = False
    order: str = "C"

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in np.broadcast_to(np.asarray(self.shape), (3,)))
        if min(shape) < 1:
            raise MetainvError(
                "grid needs at least one element per axis, got " + " x ".join(map(str, shape))
            )
        if self.order not in ORDERS:
            raise MetainvError(f"unknown grid order {self.order!r} (expected 'C' or 'F')")
        spacing = np.broadcast_to(np.asarray(self.spacing, dtype=np.float64), (3,))
        origin = np.broadcast_to(np.asarray(self.origin, dtype=np.float64), (3,))
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing", tuple(float(s) for s in spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in origin))
        object.__setattr__(self, "periodic", bool(self.periodic))

    @property
    def nx(self) -> int:
        return self.shape[0]

    @property
    def ny(self) -> int:
        return self.shape[1]

    @property
    def nz(self) -> int:
        return self.shape[2]

    @property
    def node_shape(self) -> tuple[int, int, int]:
        """Distinct nodes per axis: ``shape`` (periodic) or ``shape + 1``."""
        return self.shape if self.periodic else tuple(n + 1 for n in self.shape)  # type: ignore[return-value]

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape))

    @property
    def n_nodes(self) -> int:
        return int(np.prod(self.node_shape))

    @property
    def n_dofs(self) -> int:
        """Elastic degrees of freedom, ``3 n_nodes``."""
        return 3 * self.n_nodes

    def node_index(self, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Node numbers of integer node coordinates ``(i, j, k)`` (broadcast; wrapped when
        periodic)."""
        return _ravel(
            np.asarray(i), np.asarray(j), np.asarray(k), self.node_shape, self.order, self.periodic
        )

    def element_index(self, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Element numbers of integer element coordinates ``(i, j, k)`` (broadcast)."""
        return _ravel(np.asarray(i), np.asarray(j), np.asarray(k), self.shape, self.order, False)

    @cached_property
    def node_ijk(self) -> np.ndarray:
        """Integer coordinates (n_nodes, 3) of the nodes in numbering order."""
        return _unravel(self.node_shape, self.order)

    @cached_property
    def node_coordinates(self) -> np.ndarray:
        """Node positions (n_nodes, 3) ``origin + spacing * (i, j, k)``."""
        return np.asarray(self.origin) + self.node_ijk * np.asarray(self.spacing)

    @cached_property
    def element_ijk(self) -> np.ndarray:
        """Integer lower-corner coordinates (n_elements, 3) of the elements in numbering order."""
        return _unravel(self.shape, self.order)

    @cached_property
    def element_centres(self) -> np.ndarray:
        """Element centroids (n_elements, 3)."""
        return np.asarray(self.origin) + (self.element_ijk + 0.5) * np.asarray(self.spacing)

    def element_nodes_at(self, ijk: np.ndarray, nodes: np.ndarray = VTK_NODES) -> np.ndarray:
        """Node numbers (e, 8) of the elements with integer coordinates ``ijk`` (e, 3), local
        nodes in the order of ``nodes`` (8, 3) (see :mod:`metainv.fem.hex8`)."""
        corner = np.asarray(ijk)[:, None, :] + nodes[None, :, :]
        return self.node_index(corner[..., 0], corner[..., 1], corner[..., 2])

    @cached_property
    def element_nodes(self) -> np.ndarray:
        """Connectivity (n_elements, 8), local nodes in :data:`~metainv.fem.hex8.VTK_NODES`
        order."""
        return self.element_nodes_at(self.element_ijk)

    @cached_property
    def element_dofs(self) -> np.ndarray:
        """Elastic degrees of freedom (n_elements, 24) of each element: node-major, then x, y, z."""
        return (3 * self.element_nodes[:, :, None] + np.arange(3)).reshape(self.n_elements, 24)

    def nodes_where(self, i=None, j=None, k=None) -> np.ndarray:
        """Numbers of the nodes whose integer coordinates match the given ones.

        Each of ``i, j, k`` is None (any), an int, or a sequence of ints.
        """
        mask = np.ones(self.n_nodes, dtype=bool)
        for axis, value in enumerate((i, j, k)):
            if value is not None:
                mask &= np.isin(self.node_ijk[:, axis], np.atleast_1d(value))
        return np.flatnonzero(mask)

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Element coordinates (p, 3) of the element containing each point (p, 3), and the
        local coordinates (p, 3) in it.

        Points outside the grid use the nearest boundary element, with local coordinates
        outside [0, 1] (linear extrapolation).
        """
        scaled = (np.asarray(x, dtype=np.float64) - np.asarray(self.origin)) / np.asarray(
            self.spacing
        )
        element = np.clip(np.floor(scaled).astype(np.int64), 0, np.asarray(self.shape) - 1)
        return element, scaled - element


def _ravel(
    i: np.ndarray, j: np.ndarray, k: np.ndarray, shape: tuple[int, ...], order: str, wrap: bool
) -> np.ndarray:
    if wrap:
        i, j, k = i % shape[0], j % shape[1], k % shape[2]
    if order == "C":
        return (i * shape[1] + j) * shape[2] + k
    return i + shape[0] * (j + shape[1] * k)


def _unravel(shape: tuple[int, ...], order: str) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(int(np.prod(shape))), shape, order=order), axis=1)
