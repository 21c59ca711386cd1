"""Quality gates of a graded lattice: limits that a printable result must keep.

A graded lattice (SI Sec. 5) is an approximation: cells are placed by least-squares projection
functions and their shared nodes merged, so a strong grading between dissimilar cells distorts
the lattice. Four measurements are compared with stated limits:

``local_nmse``
    largest NMSE of the local check (the sampled graded cell against the interpolated target
    ``sum_i N_i C_i``, :func:`~metainv.grading.local_check`) along the part; limit
    :data:`MAX_LOCAL_NMSE` (a superposed transition cell of dissimilar topologies, e.g. octet
    to simple cubic, reaches 0.25).
``merge_cells``
    largest distance a node moved when the copies placed by neighbouring cells were merged,
    in cells (the cube root of the smallest control-cell volume); limit :data:`MAX_MERGE_CELLS`.
``length_ratio``
    largest ratio (either way) of a strut's length to its length in the local cell
    ``|A(x_mid) dX|``; limit :data:`MAX_LENGTH_RATIO`.
``diameter_ratio``
    thickest over thinnest strut diameter of the lattice; limit :data:`MAX_DIAMETER_RATIO`
    (struts fading out of a superposed topology are dropped below 5 % of their full diameter,
    so up to 20 comes from the fading alone).

:func:`enforce_gates` raises :class:`GradingQualityError` (a :class:`~metainv.errors.MetainvError`,
exit code 2 on the command line) naming every failed gate and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from metainv.errors import MetainvError
from metainv.grading._lattice import GradedLattice
from metainv.grading._local import LocalCheck
from metainv.grading._problem import GradingProblem

__all__ = [
    "MAX_DIAMETER_RATIO",
    "MAX_LENGTH_RATIO",
    "MAX_LOCAL_NMSE",
    "MAX_MERGE_CELLS",
    "GradingQualityError",
    "QualityGate",
    "enforce_gates",
    "quality_gates",
]

#: Largest NMSE of the local check along the part.
MAX_LOCAL_NMSE = 0.3
#: Largest node merge distance, in cells.
MAX_MERGE_CELLS = 0.25
#: Largest strut length ratio to the local cell (either way).
MAX_LENGTH_RATIO = 1.5
#: Largest ratio of the thickest to the thinnest strut diameter.
MAX_DIAMETER_RATIO = 25.0

_SPACING = (
    "use a smaller --zeta (a wider transition), control points farther apart, or closer designs"
)
_ADVICE = {
    "local_nmse": "choose closer designs or a smaller --zeta (a wider transition)",
    "merge_cells": _SPACING,
    "length_ratio": _SPACING,
    "diameter_ratio": "raise --min-relative-diameter (drop fading struts earlier) or choose "
    "designs of closer relative density or topology",
}


class GradingQualityError(MetainvError):
    """A graded lattice past a quality gate (the message names the gates and what to change)."""


@dataclass(frozen=True)
class QualityGate:
    """One measurement against its limit: name, value, limit, passed."""

    name: str
    value: float
    limit: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.value) and self.value <= self.limit)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "limit": self.limit, "passed": self.passed}


def quality_gates(
    problem: GradingProblem, lattice: GradedLattice, check: LocalCheck | None = None
) -> tuple[QualityGate, ...]:
    """The gates of the module docstring (``local_nmse`` only with a ``check``)."""
    ratios = lattice.length_ratios
    gates = [
        QualityGate(
            "merge_cells", float(lattice.max_merge_distance / problem.cell_size), MAX_MERGE_CELLS
        ),
        QualityGate(
            "length_ratio",
            float(np.maximum(ratios, 1.0 / ratios).max(initial=1.0)),
            MAX_LENGTH_RATIO,
        ),
        QualityGate(
            "diameter_ratio",
            float(lattice.diameters.max() / lattice.diameters.min()),
            MAX_DIAMETER_RATIO,
        ),
    ]
    if check is not None:
        gates.insert(0, QualityGate("local_nmse", float(check.nmse.max()), MAX_LOCAL_NMSE))
    return tuple(gates)


def enforce_gates(gates: tuple[QualityGate, ...]) -> None:
    """Raise :class:`GradingQualityError` when a gate failed (one line: every failed gate with
    its value and limit, then what to change)."""
    failed = [g for g in gates if not g.passed]
    if not failed:
        return
    values = ", ".join(f"{g.name} {g.value:.3g} > {g.limit:g}" for g in failed)
    advice = "; ".join(dict.fromkeys(_ADVICE[g.name] for g in failed))
    raise GradingQualityError(
        f"the graded lattice fails its quality gates ({values}): {advice} "
        "(--ignore-gates writes it anyway)"
    )
