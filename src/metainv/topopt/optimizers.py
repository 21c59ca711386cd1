r"""Design updates for ``min f(x)`` subject to one constraint ``g(x) <= 0`` and box bounds.

Optimality criteria (OC)
------------------------
The classical heuristic fixed point for a volume constraint (Bendsoe; Andreassen et al. 2011):

.. math:: x^{new}_e = \mathrm{clip}\!\left(x_e B_e^{\eta},\ x_e \pm m,\ [x_{min}, x_{max}]\right),
          \qquad B_e = \frac{-\partial f/\partial x_e}{\lambda\, \partial V/\partial x_e},

with the multiplier ``lambda`` found by bisection so that the volume *equals* its bound (OC
treats the volume constraint as an equality). Design-dependent loads (inherent strain) can make
sensitivities positive, where ``B_e`` is undefined. On the constraint surface the objective may be
shifted by ``kappa (V - V*)`` without changing the optimum, i.e. ``df/dx -> df/dx - kappa dV/dx``;
with ``kappa = max(0, max_e (df/dx_e) / (dV/dx_e))`` (plus a small margin) every shifted
sensitivity is negative and the update is the classical one, unchanged when all sensitivities
are already negative (external loads).

Method of moving asymptotes (MMA)
---------------------------------
Svanberg (1987), with the asymptote rules and regularization of Svanberg (2002/2007). Around the
current point each function is replaced by the convex separable approximation

.. math:: \tilde f_i(x) = r_i + \sum_j \frac{p_{ij}}{U_j - x_j} + \frac{q_{ij}}{x_j - L_j},

.. math:: p_{ij} = (U_j - x_j)^2 \left(1.001 (\partial_j f_i)^+ + 0.001 (\partial_j f_i)^-
          + \frac{10^{-5}}{x_{max} - x_{min}}\right),

(``q_ij`` likewise with ``(x_j - L_j)^2`` and the roles of ``+`` and ``-`` swapped). With a single
constraint the subproblem is solved exactly through its dual: for a multiplier ``lambda >= 0`` the
Lagrangian separates and each ``x_j(lambda)`` is in closed form,

.. math:: x_j(\lambda) = \mathrm{clip}\left(\frac{L_j \sqrt{P_j} + U_j \sqrt{Q_j}}
          {\sqrt{P_j} + \sqrt{Q_j}},\ \alpha_j, \beta_j\right), \qquad
          P_j = p_{0j} + \lambda p_{1j},\ Q_j = q_{0j} + \lambda q_{1j},

and the concave dual ``W(lambda)`` has derivative ``tilde g_1(x(lambda))``, which is decreasing;
``lambda`` is its root (or 0 when the constraint is inactive), found by bisection. No maintained
MMA package fits the project's MIT licence (the Python port on PyPI is GPL-3), so this is our own
implementation of the standard method, restricted to one constraint (the volume bound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: MMA constants (Svanberg 2007): initial asymptote distance, growth, shrink, move fraction.
ASYMPTOTE_INIT = 0.5
ASYMPTOTE_INCREASE = 1.2
ASYMPTOTE_DECREASE = 0.7
ALBEFA = 0.1
REGULARIZATION = 1e-5


def oc_update(
    x: np.ndarray,
    objective_gradient: np.ndarray,
    volume_gradient: np.ndarray,
    volume: Callable[[np.ndarray], float],
    volume_bound: float,
    move: float = 0.2,
    damping: float = 0.5,
    lower: float = 0.0,
    upper: float = 1.0,
) -> np.ndarray:
    """One OC step (n,) -> (n,); ``volume(x)`` is the constrained volume of a candidate."""
    volume_gradient = np.maximum(volume_gradient, 1e-300)
    shift = max(0.0, float(np.max(objective_gradient / volume_gradient)))
    if shift > 0.0:
        shift += 1e-3 * float(np.max(np.abs(objective_gradient) / volume_gradient))
    descent = np.maximum(shift * volume_gradient - objective_gradient, 1e-300)
    ratio = descent / volume_gradient
    low, high = 1e-40, 1e40
    candidate = x
    while high / low > 1.0 + 1e-9:
        multiplier = np.sqrt(low * high)
        step = x * (ratio / multiplier) ** damping
        candidate = np.clip(np.clip(step, x - move, x + move), lower, upper)
        if volume(candidate) > volume_bound:
            low = multiplier
        else:
            high = multiplier
    return candidate


@dataclass(frozen=True)
class MmaState:
    """History the asymptotes need: the last two iterates, the asymptotes, the iteration count.

    Arrays are (n,); ``None`` before the first update.
    """

    iteration: int = 0
    previous: np.ndarray | None = None
    before_previous: np.ndarray | None = None
    low: np.ndarray | None = None
    upp: np.ndarray | None = None


def mma_update(
    x: np.ndarray,
    objective_gradient: np.ndarray,
    constraint: float,
    constraint_gradient: np.ndarray,
    state: MmaState,
    move: float = 0.2,
    lower: float = 0.0,
    upper: float = 1.0,
) -> tuple[np.ndarray, MmaState]:
    """One MMA step for ``min f`` s.t. ``g <= 0`` (one constraint); returns (x_new (n,), state).

    objective_gradient, constraint_gradient: (n,); constraint: the value g(x).
    """
    span = upper - lower
    low, upp = _asymptotes(x, state, span)
    alpha = np.maximum.reduce([np.full_like(x, lower), low + ALBEFA * (x - low), x - move * span])
    beta = np.minimum.reduce([np.full_like(x, upper), upp - ALBEFA * (upp - x), x + move * span])

    p0, q0 = _approximation(objective_gradient, x, low, upp, span)
    p1, q1 = _approximation(constraint_gradient, x, low, upp, span)
    r1 = constraint - np.sum(p1 / (upp - x) + q1 / (x - low))

    def primal(multiplier: float) -> np.ndarray:
        P, Q = np.sqrt(p0 + multiplier * p1), np.sqrt(q0 + multiplier * q1)
        return np.clip((low * P + upp * Q) / (P + Q), alpha, beta)

    def dual_slope(multiplier: float) -> float:
        candidate = primal(multiplier)
        return float(np.sum(p1 / (upp - candidate) + q1 / (candidate - low)) + r1)

    if dual_slope(0.0) <= 0.0:
        x_new = primal(0.0)
    else:
        high = 1.0
        while dual_slope(high) > 0.0 and high < 1e30:
            high *= 10.0
        low_multiplier = 0.0
        for _ in range(200):
            middle = 0.5 * (low_multiplier + high)
            if dual_slope(middle) > 0.0:
                low_multiplier = middle
            else:
                high = middle
            if high - low_multiplier <= 1e-12 * high:
                break
        x_new = primal(high)
    new_state = MmaState(
        iteration=state.iteration + 1,
        previous=x.copy(),
        before_previous=None if state.previous is None else state.previous.copy(),
        low=low,
        upp=upp,
    )
    return x_new, new_state


def _asymptotes(x: np.ndarray, state: MmaState, span: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper asymptotes (n,) of the next subproblem (Svanberg 2007 rules)."""
    if state.iteration < 2 or state.before_previous is None or state.low is None:
        return x - ASYMPTOTE_INIT * span, x + ASYMPTOTE_INIT * span
    trend = (x - state.previous) * (state.previous - state.before_previous)
    factor = np.where(trend > 0, ASYMPTOTE_INCREASE, np.where(trend < 0, ASYMPTOTE_DECREASE, 1.0))
    low = x - factor * (state.previous - state.low)
    upp = x + factor * (state.upp - state.previous)
    low = np.clip(low, x - 10.0 * span, x - 0.01 * span)
    upp = np.clip(upp, x + 0.01 * span, x + 10.0 * span)
    return low, upp


def _approximation(
    gradient: np.ndarray, x: np.ndarray, low: np.ndarray, upp: np.ndarray, span: float
) -> tuple[np.ndarray, np.ndarray]:
    """MMA coefficients ``p, q`` (n,) of one function with the given gradient (n,)."""
    positive, negative = np.maximum(gradient, 0.0), np.maximum(-gradient, 0.0)
    regular = REGULARIZATION / span
    p = (upp - x) ** 2 * (1.001 * positive + 0.001 * negative + regular)
    q = (x - low) ** 2 * (0.001 * positive + 1.001 * negative + regular)
    return p, q
