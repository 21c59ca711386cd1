r"""Compliance minimization of a graded lattice under a volume constraint.

.. math:: \min_{x} \; C = F(\tilde\rho)^T U \quad \text{s.t.} \quad K(\tilde\rho) U = F(\tilde\rho),
          \quad \frac{1}{n_a} \sum_{e \in a} \tilde\rho_e \le V^*,
          \quad \rho_{min} \le x \le \rho_{max},

with the filtered densities ``tilde rho = filter(x)`` (the filter is a convex combination, so
they stay in the law's range ``[rho_min, rho_max]``; passive elements are solid and shown at 1),
element stiffness ``D_e = E_min D^H(rho_max) + (1 - E_min) rho_e^p D^H(rho_e)`` (SI Eqs. 1-3, 8;
see :mod:`metainv.topopt.materials`), ``D_e = D_s`` on passive elements, and loads
``F = F_ext + sum_e f_e(rho_e)`` holding the inherent-strain forces ``f_e = int B^T D_e eps_inh``
(SI Eq. 4), on unit 8-node hexahedra (:mod:`metainv.fem`; element stiffness
``k_e = int B^T D_e B`` by 2x2x2 Gauss, SI Eq. 3). Move limit, convergence test and grey level
are measured on the normalized density ``(rho - rho_min) / (rho_max - rho_min)``, so a bounded
law is judged like an unbounded one.

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
from metainv.fem import (
    AssemblyPlan,
    assemble_matrix,
    assemble_vector,
    assembly_plan,
    element_stiffness,
    element_strain_loads,
)
from metainv.topopt.filters import DensityFilter, density_filter
from metainv.topopt.materials import MaterialLaw, simp_coefficients, solid_coefficients
from metainv.topopt.optimizers import MmaState, mma_update, oc_update
from metainv.topopt.problems import Problem
from metainv.topopt.solvers import SOLVERS, Solve, make_solver

logger = logging.getLogger(__name__)

OPTIMIZERS = ("oc", "mma")
#: Sensitivity of the compliance to design-dependent (inherent-strain) loads (:class:`Settings`).
LOAD_SENSITIVITIES = ("exact", "frozen")

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
    move: move limit of one update, as a fraction of the density range
    solver: a name from :data:`metainv.topopt.solvers.SOLVERS`
    density_range: ``(rho_min, rho_max)`` bounds on the element densities; ``None`` takes the
        law's own range, a given one must lie inside it (e.g. to give two laws the same bounds)
    load_sensitivity: "exact" (``dC/drho = 2 U^T dF/drho - U^T dK/drho U``, the spec) or
        "frozen" (SI Eq. 7 as published: the inherent-strain force treated as independent of
        the design, ``dC/drho = -U^T dK/drho U``; not the gradient of C when F depends on rho)
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
    density_range: tuple[float, float] | None = None
    load_sensitivity: str = "exact"

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
                self.load_sensitivity in LOAD_SENSITIVITIES,
                f"unknown load sensitivity {self.load_sensitivity!r}; available: "
                + ", ".join(LOAD_SENSITIVITIES),
            ),
            (
                self.solver in SOLVERS,
                f"unknown solver {self.solver!r}; available: {', '.join(sorted(SOLVERS))}",
            ),
        ]
        if self.density_range is not None:
            low, high = self.density_range
            checks.append(
                (
                    0.0 <= low < high <= 1.0,
                    f"density range must satisfy 0 <= rho_min < rho_max <= 1, got {low}, {high}",
                )
            )
        for passed, message in checks:
            if not passed:
                raise MetainvError(message)

    def bounds(self, law: MaterialLaw) -> tuple[float, float]:
        """The density bounds of a run with this law (checked against the law and ``V*``)."""
        law_low, law_high = law.density_range
        low, high = self.density_range if self.density_range is not None else (law_low, law_high)
        if low < law_low - 1e-12 or high > law_high + 1e-12:
            raise MetainvError(
                f"density range ({low:g}, {high:g}) leaves the range ({law_low:g}, {law_high:g})"
                f" of the {law.name!r} law"
            )
        if not low < self.volume_fraction < high:
            raise MetainvError(
                f"volfrac must lie in ({low:g}, {high:g}) with the {law.name!r} law and this"
                f" density range, got {self.volume_fraction}"
            )
        return float(low), float(high)


@dataclass(frozen=True, eq=False)
class Model:
    """Everything fixed during an optimization: problem, law, assembly plan, reference matrices.

    reference_stiffness: (m, 24, 24) element matrices of the law's basis
    reference_loads: (m, 24) inherent-strain loads of the basis, or None
    passive_coefficients: (m,) the solid ``D_s`` in the law's basis (passive elements), or None
        when the problem has no passive elements
    """

    problem: Problem
    law: MaterialLaw
    plan: AssemblyPlan
    reference_stiffness: np.ndarray
    reference_loads: np.ndarray | None
    passive_coefficients: np.ndarray | None = None


def build_model(problem: Problem, law: MaterialLaw) -> Model:
    """Assembly plan and reference element matrices of a problem and a law."""
    loads = None
    if problem.inherent_strain is not None:
        loads = element_strain_loads(law.basis, problem.inherent_strain)
    return Model(
        problem=problem,
        law=law,
        plan=assembly_plan(problem.grid, problem.fixed_dofs),
        reference_stiffness=element_stiffness(law.basis),
        reference_loads=loads,
        passive_coefficients=solid_coefficients(law) if problem.passive_solid.any() else None,
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


def analyze(
    model: Model,
    rho: np.ndarray,
    penalty: float,
    e_min: float,
    solve: Solve,
    frozen_loads: bool = False,
) -> Analysis:
    """Solve ``K(rho) U = F(rho)`` and return the compliance and its sensitivity (nel,).

    The law is evaluated on the design elements only; passive elements are the solid (their
    entries of ``rho`` are ignored, their sensitivity is 0). ``frozen_loads`` drops the term of
    the design-dependent loads from the sensitivity (SI Eq. 7; see :class:`Settings`).
    """
    plan = model.plan
    g, dg = _element_coefficients(model, rho, penalty, e_min)
    K = assemble_matrix(plan, g, model.reference_stiffness)
    force = model.problem.force.copy()
    if model.reference_loads is not None:
        force += assemble_vector(plan.grid, g @ model.reference_loads)
    u = np.zeros(plan.grid.n_dofs)
    tick = time.perf_counter()
    u[plan.free_dofs] = solve(K, force[plan.free_dofs])[0]
    solve_seconds = time.perf_counter() - tick
    ue = u[plan.grid.element_dofs]  # (nel, 24)
    energy = np.einsum("ea,kab,eb->ek", ue, model.reference_stiffness, ue, optimize=True)
    if model.reference_loads is not None and not frozen_loads:
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


def _element_coefficients(
    model: Model, rho: np.ndarray, penalty: float, e_min: float
) -> tuple[np.ndarray, np.ndarray]:
    """``g, g'`` (nel, m): SIMP on the law for design elements, the solid for passive ones."""
    passive = model.problem.passive_solid
    m = len(model.law.basis)
    g, dg = np.zeros((rho.size, m)), np.zeros((rho.size, m))
    g[~passive], dg[~passive] = simp_coefficients(model.law, rho[~passive], penalty, e_min)
    if model.passive_coefficients is not None:
        g[passive] = model.passive_coefficients
    return g, dg


def grey_level(rho: np.ndarray, density_range: tuple[float, float] = (0.0, 1.0)) -> float:
    """Grey-level measure ``4 sum s (1 - s) / n`` in [0, 1] (0: black and white) of the
    normalized densities ``s = (rho - rho_min) / (rho_max - rho_min)``."""
    low, high = density_range
    s = (np.asarray(rho, dtype=float) - low) / (high - low)
    return float(4.0 * np.sum(s * (1.0 - s)) / s.size)


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
    density_range: the bounds ``(rho_min, rho_max)`` of the design densities
    """

    problem: Problem
    law_name: str
    settings: Settings
    density: np.ndarray
    design: np.ndarray
    displacement: np.ndarray
    history: tuple[IterationRecord, ...]
    converged: bool
    density_range: tuple[float, float] = (0.0, 1.0)

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
            "density_range": list(self.density_range),
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
    low, high = settings.bounds(law)
    span = high - low
    model = build_model(problem, law)
    flt = density_filter(problem.grid, settings.filter_radius)
    active = problem.active
    n_active = int(active.sum())
    if n_active == 0:
        raise MetainvError(f"problem {problem.name!r} has no design elements on this grid")
    solve = make_solver(settings.solver, model.plan)
    # passive elements enter the filter at the top of the range (they are solid themselves)
    x = np.full(problem.grid.n_elements, high)
    x[active] = settings.volume_fraction
    volume_gradient = flt.backward(active / n_active)[active]
    mma_state = MmaState()
    objective_scale = None
    history: list[IterationRecord] = []
    change = float("inf")
    converged = False
    for iteration in range(1, settings.max_iter + 1):
        start = time.perf_counter()
        rho = _physical(flt, x, active, (low, high))
        tick = time.perf_counter()
        frozen = settings.load_sensitivity == "frozen"
        analysis = analyze(model, rho, settings.penalty, settings.e_min, solve, frozen)
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
                    functools.partial(_volume, flt, x, active, (low, high)),
                    settings.volume_fraction,
                    move=settings.move * span,
                    lower=low,
                    upper=high,
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
                    lower=low,
                    upper=high,
                )
            x = x.copy()
            x[active] = new
        record = IterationRecord(
            iteration=iteration,
            compliance=analysis.compliance,
            volume_fraction=volume,
            grey_level=grey_level(rho[active], (low, high)),
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
        change = float(np.abs(x[active] - x_active).max()) / span
    return TopOptResult(
        problem=problem,
        law_name=law.name,
        settings=settings,
        density=rho,
        design=x,
        displacement=analysis.displacement,
        history=tuple(history),
        converged=converged,
        density_range=(low, high),
    )


def physical_density(
    flt: DensityFilter,
    x: np.ndarray,
    active: np.ndarray,
    density_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Filtered densities (nel,) of design variables (nel,) in ``density_range``, passive
    elements set to 1 (solid)."""
    return _physical(flt, x, active, density_range)


def _physical(
    flt: DensityFilter,
    x: np.ndarray,
    active: np.ndarray,
    density_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    rho = np.clip(flt.apply(x), *density_range)
    rho[~active] = 1.0
    return rho


def _volume(
    flt: DensityFilter,
    x: np.ndarray,
    active: np.ndarray,
    density_range: tuple[float, float],
    candidate: np.ndarray,
) -> float:
    trial = x.copy()
    trial[active] = candidate
    return float(_physical(flt, trial, active, density_range)[active].mean())
