"""The seven elementary truss unit cells of Bastek et al. (PNAS 2022) and their tessellation.

Definitions follow ``shared/spec/truss.md`` section 2 exactly (node order and connectivity of the
reference implementation, converted from 1-indexed to 0-indexed). Coordinates are fractional
coordinates of the reference unit cube ``[0, 1]^3`` (dimensionless); the physical cell is obtained
later by an affine map ``x = F X``.

Cells here are *non-periodic* graphs in the closed unit cube: a node on a cube face appears on
both opposite faces, a strut on a cube edge appears four times. Periodic identification is done by
:func:`metainv.truss.lattice.lattice_from_graph`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

import numpy as np

from metainv.errors import DesignError

__all__ = [
    "CELL_NAMES",
    "ELEMENTARY_CELLS",
    "N_CELLS",
    "TESSELLATIONS",
    "CellGraph",
    "elementary_cell",
    "tessellate",
    "validate_cell",
    "validate_tessellation",
]

N_CELLS = 7
TESSELLATIONS = (1, 2)

CELL_NAMES: Mapping[int, str] = MappingProxyType(
    {
        1: "simple cubic",
        2: "octet (FCC)",
        3: "BCC",
        4: "BCC with vertical (x3) edges",
        5: "BCC with top and bottom square edges",
        6: "diamond-like",
        7: "hexagonal honeycomb (x1-x2 plane, extruded along x3)",
    }
)


@dataclass(frozen=True, eq=False)
class CellGraph:
    """A (non-periodic) truss graph in the reference unit cube.

    nodes:  (n, 3) float64, fractional coordinates in [0, 1]^3 (dimensionless)
    struts: (m, 2) int64, 0-indexed node indices (start, end)

    Arrays are made read-only on construction so that cached graphs cannot be mutated.
    """

    nodes: np.ndarray
    struts: np.ndarray

    def __post_init__(self) -> None:
        nodes = np.array(self.nodes, dtype=np.float64, copy=True).reshape(-1, 3)
        struts = np.array(self.struts, dtype=np.int64, copy=True).reshape(-1, 2)
        if struts.size and (struts.min() < 0 or struts.max() >= len(nodes)):
            raise DesignError(f"strut indices must lie in [0, {len(nodes)}), got {struts.min()}..")
        nodes.setflags(write=False)
        struts.setflags(write=False)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "struts", struts)

    @property
    def n_nodes(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def n_struts(self) -> int:
        return int(self.struts.shape[0])


def validate_cell(cell: object) -> int:
    """Return ``cell`` as an int in 1..7 or raise :class:`DesignError`."""
    if isinstance(cell, bool) or not isinstance(cell, (int, np.integer)):
        raise DesignError(f"elementary cell must be an integer in 1..{N_CELLS}, got {cell!r}")
    if not 1 <= int(cell) <= N_CELLS:
        raise DesignError(f"elementary cell must be in 1..{N_CELLS}, got {cell}")
    return int(cell)


def validate_tessellation(tessellation: object) -> int:
    """Return ``tessellation`` as an int in {1, 2} or raise :class:`DesignError`."""
    if isinstance(tessellation, bool) or not isinstance(tessellation, (int, np.integer)):
        raise DesignError(f"tessellation must be 1 or 2, got {tessellation!r}")
    if int(tessellation) not in TESSELLATIONS:
        raise DesignError(f"tessellation must be 1 or 2, got {tessellation}")
    return int(tessellation)


_H = Fraction(1, 2)
_Q = Fraction(1, 4)
_CORNERS = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
_HEX_XY = [
    (0, 0),
    (1, 0),
    (0, Fraction(1, 6)),
    (1, Fraction(1, 6)),
    (_H, Fraction(1, 3)),
    (_H, Fraction(2, 3)),
    (0, Fraction(5, 6)),
    (1, Fraction(5, 6)),
    (0, 1),
    (1, 1),
]

# (nodes, 1-indexed connectivity) exactly as the spec lists them.
_CELL_DEFINITIONS: dict[int, tuple[list[tuple], str]] = {
    1: (_CORNERS, "1-2 2-3 3-4 4-1 5-6 6-7 7-8 8-5 1-5 2-6 3-7 4-8"),
    2: (
        [
            *_CORNERS,
            (_H, 0, _H),
            (_H, 1, _H),
            (0, _H, _H),
            (1, _H, _H),
            (_H, _H, 0),
            (_H, _H, 1),
        ],
        "1-13 2-13 3-13 4-13 5-14 6-14 7-14 8-14 1-11 4-11 5-11 8-11 2-12 3-12 6-12 7-12 1-9 2-9 "
        "5-9 6-9 3-10 4-10 7-10 8-10 9-11 9-12 9-13 9-14 10-11 10-12 10-13 10-14 11-13 11-14 "
        "12-13 12-14",
    ),
    3: ([*_CORNERS, (_H, _H, _H)], "1-9 2-9 3-9 4-9 5-9 6-9 7-9 8-9"),
    4: (
        [
            (0, 0, 0),
            (1, 0, 0),
            (0, 1, 0),
            (1, 1, 0),
            (_H, _H, _H),
            (0, 0, 1),
            (1, 0, 1),
            (0, 1, 1),
            (1, 1, 1),
        ],
        "1-5 1-6 2-5 2-7 3-5 3-8 4-5 4-9 5-6 5-7 5-8 5-9",
    ),
    5: (
        [
            (0, 0, 0),
            (1, 0, 0),
            (1, 1, 0),
            (0, 1, 0),
            (_H, _H, _H),
            (0, 1, 1),
            (0, 0, 1),
            (1, 0, 1),
            (1, 1, 1),
        ],
        "1-2 2-3 3-4 4-1 1-5 2-5 3-5 4-5 5-6 5-7 5-8 5-9 6-7 7-8 8-9 9-6",
    ),
    6: (
        [
            (0, 0, 0),
            (_H, _H, 0),
            (1, 1, 0),
            (_Q, _Q, _Q),
            (3 * _Q, 3 * _Q, _Q),
            (0, _H, _H),
            (_H, 0, _H),
            (_H, 1, _H),
            (1, _H, _H),
            (_Q, _Q, 3 * _Q),
            (3 * _Q, 3 * _Q, 3 * _Q),
            (0, 0, 1),
            (_H, _H, 1),
            (1, 1, 1),
        ],
        "1-4 4-2 2-5 5-3 4-6 4-7 5-8 5-9 6-10 7-10 8-11 9-11 10-12 10-13 11-13 11-14",
    ),
    7: (
        [(x, y, 0) for x, y in _HEX_XY] + [(x, y, 1) for x, y in _HEX_XY],
        "1-3 2-4 3-5 4-5 5-6 6-7 6-8 7-9 8-10 11-13 12-14 13-15 14-15 15-16 16-17 16-18 17-19 "
        "18-20 3-13 4-14 5-15 6-16 7-17 8-18",
    ),
}


def _build_cell(cell: int) -> CellGraph:
    points, connectivity = _CELL_DEFINITIONS[cell]
    nodes = np.array([[float(Fraction(c)) for c in p] for p in points], dtype=np.float64)
    pairs = [tuple(int(i) - 1 for i in edge.split("-")) for edge in connectivity.split()]
    return CellGraph(nodes=nodes, struts=np.array(pairs, dtype=np.int64))


ELEMENTARY_CELLS: Mapping[int, CellGraph] = MappingProxyType(
    {cell: _build_cell(cell) for cell in range(1, N_CELLS + 1)}
)
"""Cell number (1..7) -> non-periodic :class:`CellGraph` in the unit cube, as in the spec."""


def elementary_cell(cell: int) -> CellGraph:
    """The elementary cell ``cell`` (1..7) as a non-periodic graph in the unit cube."""
    return ELEMENTARY_CELLS[validate_cell(cell)]


_SHIFTS_2 = np.array(
    [[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=np.float64
)


def tessellate(graph: CellGraph, tessellation: int) -> CellGraph:
    """The ``t x t x t`` tessellation of ``graph`` scaled by ``1/t`` into the unit cube.

    ``t = 1`` returns ``graph`` itself. ``t = 2`` returns the 8 copies (copy order
    ``(i, j, k)`` with ``k`` fastest) *without merging*: nodes on the shared faces of the copies
    appear several times and struts on shared faces/edges are repeated.
    :func:`metainv.truss.compound.compound_graph` merges them (and the overlaps with the other
    cells of a compound) in one pass.
    """
    t = validate_tessellation(tessellation)
    if t == 1:
        return graph
    n = graph.n_nodes
    nodes = (graph.nodes[None, :, :] + _SHIFTS_2[:, None, :]) / 2.0
    struts = graph.struts[None, :, :] + (n * np.arange(len(_SHIFTS_2)))[:, None, None]
    return CellGraph(nodes=nodes.reshape(-1, 3), struts=struts.reshape(-1, 2))
