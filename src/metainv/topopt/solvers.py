"""The linear solvers offered to topology optimization: :mod:`metainv.fem.solvers` on the free
dofs of an :class:`~metainv.fem.AssemblyPlan`, warm-started from the previous design's solution,
to the relative residual ``1e-8``.

* ``direct``: sparse LU (exact up to round-off; the sensitivity tests use it);
* ``mgcg``: geometric-multigrid-preconditioned CG (Amir, Aage and Lazarov 2014), the default of
  ``metainv topopt``;
* ``amg-cg``: smoothed-aggregation AMG-preconditioned CG (the ``"amg"`` solver of
  :mod:`metainv.fem`); kept for comparison: it needs many iterations at the high stiffness
  contrast of topology optimization.
"""

from __future__ import annotations

from metainv.errors import MetainvError
from metainv.fem import AssemblyPlan, Solve, Unknowns
from metainv.fem import make_solver as make_fem_solver

#: Relative residual ``|f - K u| / |f|`` at which the iterative solvers stop.
CG_TOLERANCE = 1e-8
MAX_CG_ITERATIONS = 1000

#: Solver name -> name of the :mod:`metainv.fem` solver.
_FEM_SOLVERS = {"direct": "direct", "mgcg": "mgcg", "amg-cg": "amg"}
#: The solver names.
SOLVERS = tuple(_FEM_SOLVERS)


def make_solver(name: str, plan: AssemblyPlan) -> Solve:
    """``solve(K_ff, f_free) -> (u_free, SolveStats)`` of the named solver for this plan."""
    if name not in _FEM_SOLVERS:
        raise MetainvError(f"unknown solver {name!r}; available: {', '.join(sorted(SOLVERS))}")
    return make_fem_solver(
        _FEM_SOLVERS[name],
        Unknowns(plan.grid, plan.free_dofs),
        rtol=CG_TOLERANCE,
        maxiter=MAX_CG_ITERATIONS,
        warm_start=True,
    )
