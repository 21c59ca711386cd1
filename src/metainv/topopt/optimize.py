r"""Compliance minimization of a graded lattice under a volume constraint.

.. math:: \min_{x} \; C = F(\tilde\rho)^T U \quad \text{s.t.} \quad K(\tilde\rho) U = F(\tilde\rho),
          \quad \frac{1}{n_a} \sum_{e \in a} \tilde\rho_e \le V^*, \quad 0 \le x \le 1,

with the filtered densities ``tilde rho = filter(x)`` (passive elements held at 1), element
stiffness ``D_e = E_min D^H(1) + (1 - E_min) rho_e^p D^H(rho_e)`` (SI Eqs. 1-3, 8; see
:mod:`metainv.topopt.materials`), and loads ``F = F_ext + sum_e f_e(rho_e)`` holding the
inherent-strain forces ``f_e = int B^T D_e eps_inh`` (SI Eq. 4).

Sensitivity (adjoint, self-adjoint because C is the compliance)
---------------------------------------------------------------
.. math:: \frac{dC}{d\rho_e} = 2 U^T \frac{\partial F}{\partial \rho_e}
          - U^T \frac{\partial K}{\partial \rho_e} U
          = \sum_k g_k'(\rho_e) \left(2 u_e^T f_k - u_e^T k_k u_e\right),

which reduces to SI Eq. 7 when the loads do not depend on the design. Here ``u_e`` (24,) are the
element's displacements, ``k_k`` and ``f_k`` the reference element matrices and strain loads of
the law's basis, ``g_k'`` the SIMP-on-law coefficient derivatives. The filter chain rule maps
``dC/drho`` to ``dC/dx`` (:mod:`metainv.topopt.filters`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from metainv.errors import MetainvError
from metainv.topopt.fem import (
    AssemblyPlan,
    assemble_stiffness,
    assemble_vector,
    assembly_plan,
    element_stiffness_matrices,
    element_strain_loads,
)
from metainv.topopt.filters import DensityFilter, density_filter
from metainv.topopt.materials import MaterialLaw, simp_coefficients
from metainv.topopt.optimizers import MmaState, mma_update, oc_update
from metainv.topopt.problems import Problem
from metainv.topopt.solvers import SOLVERS, Solve, make_solver

logger = logging.getLogger(__name__)

OPTIMIZERS = ("oc", "mma")

#: MMA works on the objective scaled to this value at the first iteration.
MMA_OBJECTIVE_SCALE = 100.0


@dataclass(frozen=True)
class Settings:
    """Optimization parameters.

    volume_fraction: bound V* on the mean density of the design elements, in (0, 1)
    penalty: SIMP exponent p >= 0 applied on top of the law (the paper: 1)
    filter_radius: density filter radius r_min in element units
    e_min: stiffness floor relative to the law's dense stiffness, in (0, 1)
    max_iter: most iterations (finite-element analyses)
    tolerance: stop when the largest design change of an update is below this
    optimizer: "oc" or "mma"
    move: move limit of one update
    solver: a name from :data:`metainv.topopt.solvers.SOLVERS`
    """

    volume_fraction: float = 0.3
    penalty: float = 1.0
    filter_radius: float = 1.5
    e_min: float = 1e-9
    max_iter: int = 200
    tolerance: float = 0.01
    optimizer: str = "oc"
    move: float = 0.2
    solver: str = "direct"

    def __post_init__(self) -> None:
        checks = [
            (
                0.0 < self.volume_fraction < 1.0,
                f"volfrac must lie in (0, 1), got {self.volume_fraction}",
            ),
            (
                np.isfinite(self.penalty) and self.penalty >= 0.0,
                f"penalty must be a finite number >= 0, got {self.penalty}",
            ),
            (self.filter_radius > 0.0, f"filter radius must be positive, got {self.filter_radius}"),
            (0.0 < self.e_min < 1.0, f"e_min must lie in (0, 1), got {self.e_min}"),
            (self.max_iter >= 1, f"max-iter must be at least 1, got {self.max_iter}"),
            (self.tolerance > 0.0, f"tolerance must be positive, got {self.tolerance}"),
            (0.0 < self.move <= 1.0, f"move limit must lie in (0, 1], got {self.move}"),
            (
                self.optimizer in OPTIMIZERS,
                f"unknown optimizer {self.optimizer!r}; available: {', '.join(OPTIMIZERS)}",
            ),
            (
                self.solver in SOLVERS,
                f"unknown solver {self.solver!r}; available: {', '.join(sorted(SOLVERS))}",
            ),
        ]
        for passed, message in checks:
            if not passed:
                raise MetainvError(message)


@dataclass(frozen=True, eq=False)
class Model:
    """Everything fixed during an optimization: problem, law, assembly plan, reference matrices.

    reference_stiffness: (m, 24, 24) element matrices of the law's basis
    reference_loads: (m, 24) inherent-strain loads of the basis, or None
    """

    problem: Problem
    law: MaterialLaw
    plan: AssemblyPlan
    reference_stiffness: np.ndarray
    reference_loads: np.ndarray | None


def build_model(problem: Problem, law: MaterialLaw) -> Model:
    """Assembly plan and reference element matrices of a problem and a law."""
    loads = None
    if problem.inherent_strain is not None:
        loads = element_strain_loads(law.basis, problem.inherent_strain)
    return Model(
        problem=problem,
        law=law,
        plan=assembly_plan(problem.grid, problem.fixed_dofs),
        reference_stiffness=element_stiffness_matrices(law.basis),
        reference_loads=loads,
    )


@dataclass(frozen=True, eq=False)
class Analysis:
    """One finite-element analysis.

    compliance: ``C = F^T U``
    sensitivity: (nel,) ``dC/drho_e`` with respect to the physical densities
    displacement: (n_dofs,) ``U`` (zero on fixed dofs)
    force: (n_dofs,) ``F`` (external plus inherent-strain forces)
    solve_seconds: wall time of the linear solve alone
    """

    compliance: float
    sensitivity: np.ndarray
    displacement: np.ndarray
    force: np.ndarray
    solve_seconds: float = 0.0


def analyze(model: Model, rho: np.ndarray, penalty: float, e_min: float, solve: Solve) -> Analysis:
    """Solve ``K(rho) U = F(rho)`` and return the compliance and its sensitivity (nel,)."""
    plan = model.plan
    g, dg = simp_coefficients(model.law, rho, penalty, e_min)
    K = assemble_stiffness(plan, g, model.reference_stiffness)
    force = model.problem.force.copy()
    if model.reference_loads is not None:
        force += assemble_vector(plan, g @ model.reference_loads)
    u = np.zeros(plan.grid.n_dofs)
    tick = time.perf_counter()
    u[plan.free_dofs] = solve(K, force[plan.free_dofs])
    solve_seconds = time.perf_counter() - tick
    ue = u[plan.grid.element_dofs]  # (nel, 24)
    energy = np.einsum("ea,kab,eb->ek", ue, model.reference_stiffness, ue, optimize=True)
    if model.reference_loads is not None:
        energy = 2.0 * ue @ model.reference_loads.T - energy
    else:
        energy = -energy
    return Analysis(
        compliance=float(force @ u),
        sensitivity=np.sum(dg * energy, axis=1),
        displacement=u,
        force=force,
        solve_seconds=solve_seconds,
    )


def grey_level(rho: np.ndarray) -> float:
    """Grey-level measure ``4 sum rho (1 - rho) / n`` in [0, 1] (0: black and white)."""
    rho = np.asarray(rho, dtype=float)
    return float(4.0 * np.sum(rho * (1.0 - rho)) / rho.size)


@dataclass(frozen=True)
class IterationRecord:
    """One row of the convergence history.

    change: largest design change of the update that led to this design (inf at iteration 1)
    solve_seconds: the linear solve; analysis_seconds: assembly, solve and sensitivities;
    seconds: the whole iteration (filter, analysis, update)
    """

    iteration: int
    compliance: float
    volume_fraction: float
    grey_level: float
    change: float
    solve_seconds: float
    analysis_seconds: float
    seconds: float


@dataclass(frozen=True, eq=False)
class TopOptResult:
    """Outcome of :func:`optimize`.

    density: (nel,) physical (filtered) densities of the final design, passive elements at 1
    design: (nel,) design variables x
    displacement: (n_dofs,) of the final design
    history: one record per analysis; the last describes ``density``
    """

    problem: Problem
    law_name: str
    settings: Settings
    density: np.ndarray
    design: np.ndarray
    displacement: np.ndarray
    history: tuple[IterationRecord, ...]
    converged: bool

    @property
    def compliance(self) -> float:
        return self.history[-1].compliance

    @property
    def volume_fraction(self) -> float:
        return self.history[-1].volume_fraction

    @property
    def grey_level(self) -> float:
        return self.history[-1].grey_level

    @property
    def iterations(self) -> int:
        return len(self.history)

    def summary(self) -> dict:
        """JSON-ready summary of the run."""
        solve_seconds = [record.solve_seconds for record in self.history]
        return {
            "problem": self.problem.name,
            "nel": list(self.problem.grid.shape),
            "material": self.law_name,
            "compliance": self.compliance,
            "volume_fraction": self.volume_fraction,
            "grey_level": self.grey_level,
            "iterations": self.iterations,
            "converged": self.converged,
            "mean_solve_seconds": float(np.mean(solve_seconds)),
            "total_seconds": float(sum(record.seconds for record in self.history)),
            "settings": asdict(self.settings),
        }


def optimize(
    problem: Problem,
    law: MaterialLaw,
    settings: Settings,
    callback: Callable[[IterationRecord], None] | None = None,
) -> TopOptResult:
    """Minimize compliance under the volume bound; ``callback`` gets each iteration's record."""
    model = build_model(problem, law)
    flt = density_filter(problem.grid, settings.filter_radius)
    active = problem.active
    n_active = int(active.sum())
    if n_active == 0:
        raise MetainvError(f"problem {problem.name!r} has no design elements on this grid")
    solve = make_solver(settings.solver, model.plan)
    x = np.ones(problem.grid.n_elements)
    x[active] = settings.volume_fraction
    volume_gradient = flt.backward(active / n_active)[active]
    mma_state = MmaState()
    objective_scale = None
    history: list[IterationRecord] = []
    change = float("inf")
    converged = False
    for iteration in range(1, settings.max_iter + 1):
        start = time.perf_counter()
        rho = _physical(flt, x, active)
        tick = time.perf_counter()
        analysis = analyze(model, rho, settings.penalty, settings.e_min, solve)
        analysis_seconds = time.perf_counter() - tick
        gradient = flt.backward(np.where(active, analysis.sensitivity, 0.0))[active]
        volume = float(rho[active].mean())
        x_active = x[active]
        if change < settings.tolerance:
            converged = True
        elif iteration < settings.max_iter:
            if settings.optimizer == "oc":
                new = oc_update(
                    x_active,
                    gradient,
                    volume_gradient,
                    functools.partial(_volume, flt, x, active),
                    settings.volume_fraction,
                    move=settings.move,
                )
            else:
                if objective_scale is None:
                    objective_scale = MMA_OBJECTIVE_SCALE / max(abs(analysis.compliance), 1e-300)
                new, mma_state = mma_update(
                    x_active,
                    objective_scale * gradient,
                    volume / settings.volume_fraction - 1.0,
                    volume_gradient / settings.volume_fraction,
                    mma_state,
                    move=settings.move,
                )
            x = x.copy()
            x[active] = new
        record = IterationRecord(
            iteration=iteration,
            compliance=analysis.compliance,
            volume_fraction=volume,
            grey_level=grey_level(rho[active]),
            change=change,
            solve_seconds=analysis.solve_seconds,
            analysis_seconds=analysis_seconds,
            seconds=time.perf_counter() - start,
        )
        history.append(record)
        logger.debug("iteration %d: %s", iteration, record)
        if callback is not None:
            callback(record)
        if converged:
            break
        change = float(np.abs(x[active] - x_active).max())
    return TopOptResult(
        problem=problem,
        law_name=law.name,
        settings=settings,
        density=rho,
        design=x,
        displacement=analysis.displacement,
        history=tuple(history),
        converged=converged,
    )


def physical_density(flt: DensityFilter, x: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Filtered densities (nel,) of design variables (nel,), passive elements set to 1."""
    return _physical(flt, x, active)


def _physical(flt: DensityFilter, x: np.ndarray, active: np.ndarray) -> np.ndarray:
    rho = flt.apply(x)
    rho[~active] = 1.0
    return np.clip(rho, 0.0, 1.0)


def _volume(flt: DensityFilter, x: np.ndarray, active: np.ndarray, candidate: np.ndarray) -> float:
    trial = x.copy()
    trial[active] = candidate
    return float(_physical(flt, trial, active)[active].mean())
