"""Benchmark problems on a box of ``nx x ny x nz`` unit elements: supports, loads, passive parts.

The vertical axis is **y** in every problem (load direction of the cantilever and the bridge,
build direction of the LPBF part); ``x`` is the length and ``z`` the thickness, so one grid such
as ``60 x 20 x 4`` reads the same way for all of them. Loads total 1 (force unit ``E_s`` times the
element size squared) and are distributed over nodes with trapezoidal (consistent) weights.

``cantilever``
    All dofs fixed at ``x = 0``; a downward (-y) line load along z at the free end ``x = nx``, at
    mid-height ``y = ny/2`` (shared by the two middle node rows when ``ny`` is odd).
``bridge``
    Line supports along z at the two bottom corners: pinned (x, y, z fixed) at ``x = 0, y = 0``,
    roller (y, z fixed) at ``x = nx, y = 0``; a uniform downward pressure of total 1 on the top face
    ``y = ny``.
``lpbf-cantilever``
    An L-shaped cantilever built by laser powder bed fusion on a base plate (SI, "Figure S1"):
    every node on the plate ``y = 0`` is fixed; a solid (passive, density 1) root column
    ``x < t_root`` and a solid overhanging beam ``y >= ny - t_beam`` (``t_root = max(1, nx//10)``,
    ``t_beam = max(1, ny//5)``); the lattice-filled design domain is the support region under the
    overhang. No external load: every element carries the inherent strain of the process
    ``eps_inh = (-0.005, 0, -0.005, 0, 0, 0)`` (Voigt; shrinkage in the layer plane x-z, none along
    the build direction y), whose forces ``f_e = int B^T D_e eps_inh`` (SI Eq. 4) depend on the
    element's density. The value is a typical order of magnitude of the inherent strains
    calibrated for LPBF metals; compliance scales with its square, so the layout does not
    depend on it.

    Caveat (measured, see the tests and the benchmark notes): under inherent strain alone the
    compliance *falls* when lattice is removed (the lattice adds its own inherent-strain load),
    so with the volume as an upper bound (MMA) the optimum empties the support region (volume
    about 0.03 on 30 x 10 x 2); OC holds the volume at the bound (equality, as in the paper's
    formulation), where the compliance hardly depends on the layout (uniform 0.0168, empty 0.0158
    on 30 x 10 x 2) and the OC iterates oscillate at the move limit instead of converging.
    With the SI's own sensitivity (Eq. 7, the force treated as fixed: ``Settings(
    load_sensitivity="frozen")``) OC converges in 30-70 iterations to a nearly black-and-white
    layout (grey level about 0.09 on 48 x 20 x 2 and 60 x 20 x 4) for the gyroid and the
    iso-truss laws alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metainv.errors import MetainvError
from metainv.fem import HexGrid
from metainv.resources import check_elements

#: Inherent strain of the lpbf-cantilever (Voigt 11, 22, 33, 23, 13, 12; build direction y).
LPBF_INHERENT_STRAIN = np.array([-0.005, 0.0, -0.005, 0.0, 0.0, 0.0])


@dataclass(frozen=True, eq=False)
class Problem:
    """Supports, loads and passive elements of a compliance problem.

    grid: the element grid
    fixed_dofs: (n_fixed,) global dofs held at zero
    force: (n_dofs,) external nodal forces
    inherent_strain: (6,) Voigt inherent strain applied in every element, or None
    passive_solid: (nel,) bool, elements held at density 1 (not design variables)
    description: one line
    """

    name: str
    grid: HexGrid
    fixed_dofs: np.ndarray
    force: np.ndarray
    inherent_strain: np.ndarray | None
    passive_solid: np.ndarray
    description: str

    @property
    def active(self) -> np.ndarray:
        """(nel,) bool, the design elements."""
        return ~self.passive_solid


def _trapezoid(count: int) -> np.ndarray:
    """Trapezoidal weights (count + 1,) of a unit total over ``count`` unit intervals."""
    weights = np.full(count + 1, 1.0 / count)
    weights[[0, -1]] *= 0.5
    return weights


def _dofs(nodes: np.ndarray, directions: tuple[int, ...]) -> np.ndarray:
    return (3 * nodes[:, None] + np.array(directions)).ravel()


def cantilever(grid: HexGrid) -> Problem:
    """Clamped at x = 0, unit downward line load at the free end's mid-height edge."""
    fixed = _dofs(grid.nodes_where(i=0), (0, 1, 2))
    rows = sorted({grid.ny // 2, (grid.ny + 1) // 2})
    force = np.zeros(grid.n_dofs)
    z_weights = _trapezoid(grid.nz)
    for row in rows:
        nodes = grid.node_index(grid.nx, row, np.arange(grid.nz + 1))
        force[3 * nodes + 1] -= z_weights / len(rows)
    return Problem(
        name="cantilever",
        grid=grid,
        fixed_dofs=fixed,
        force=force,
        inherent_strain=None,
        passive_solid=np.zeros(grid.n_elements, dtype=bool),
        description="clamped at x=0, unit downward load along the free end's mid-height edge",
    )


def bridge(grid: HexGrid) -> Problem:
    """Pinned and roller line supports at the bottom corners, uniform load on the top face."""
    left = grid.nodes_where(i=0, j=0)
    right = grid.nodes_where(i=grid.nx, j=0)
    fixed = np.concatenate([_dofs(left, (0, 1, 2)), _dofs(right, (1, 2))])
    force = np.zeros(grid.n_dofs)
    k, i = np.meshgrid(np.arange(grid.nz + 1), np.arange(grid.nx + 1), indexing="ij")
    top = grid.node_index(i, grid.ny, k)
    weights = np.outer(_trapezoid(grid.nz), _trapezoid(grid.nx))
    force[3 * top.ravel() + 1] -= weights.ravel()
    return Problem(
        name="bridge",
        grid=grid,
        fixed_dofs=fixed,
        force=force,
        inherent_strain=None,
        passive_solid=np.zeros(grid.n_elements, dtype=bool),
        description="pinned/roller supports at the bottom corners, unit pressure on the top face",
    )


def lpbf_cantilever(grid: HexGrid) -> Problem:
    """L-shaped cantilever on a base plate, loaded by inherent strains only (SI Eq. 4)."""
    if grid.nx < 2 or grid.ny < 2:
        raise MetainvError(
            f"lpbf-cantilever needs nx >= 2 and ny >= 2, got {grid.nx} x {grid.ny} x {grid.nz}"
        )
    t_root, t_beam = max(1, grid.nx // 10), max(1, grid.ny // 5)
    ijk = grid.element_ijk
    passive = (ijk[:, 0] < t_root) | (ijk[:, 1] >= grid.ny - t_beam)
    return Problem(
        name="lpbf-cantilever",
        grid=grid,
        fixed_dofs=_dofs(grid.nodes_where(j=0), (0, 1, 2)),
        force=np.zeros(grid.n_dofs),
        inherent_strain=LPBF_INHERENT_STRAIN.copy(),
        passive_solid=passive,
        description=(
            f"L-shaped cantilever on a base plate (y=0), solid root {t_root} and beam {t_beam}"
            " elements thick, inherent strain -0.005 in the layer plane x-z, no external load"
        ),
    )


#: Problem name -> builder from a grid.
PROBLEMS: dict[str, Callable[[HexGrid], Problem]] = {
    "cantilever": cantilever,
    "bridge": bridge,
    "lpbf-cantilever": lpbf_cantilever,
}


def make_problem(name: str, nel: tuple[int, int, int]) -> Problem:
    """The named problem on a grid of ``nel = (nx, ny, nz)`` elements."""
    if name not in PROBLEMS:
        raise MetainvError(f"unknown problem {name!r}; available: {', '.join(sorted(PROBLEMS))}")
    if len(nel) != 3 or min(nel) < 1:
        raise MetainvError(f"--nel needs three positive element counts, got {tuple(nel)}")
    check_elements(tuple(nel))
    return PROBLEMS[name](HexGrid(tuple(int(n) for n in nel), order="F"))
