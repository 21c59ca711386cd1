"""Labelled spinodoid data: design parameters Theta -> FE stiffness (Kumar et al. 2020).

A row holds ``Theta = (rho, theta1, theta2, theta3)`` (paper Sec. "Data-driven inverse design"),
the field realization ``seed``, the measured voxel density, the 9 orthotropic constants
``S = (C11, C12, C13, C22, C23, C33, C44, C55, C66)`` normalized by ``E_s`` (the learning
target of the f-NN, paper Eq. 6), and all 21 constants (to check how orthotropic the
realization is). Solid networks only (paper Eq. 3), affine boundary conditions, voids removed.

Sampling law (documented in the manifest): ``rho ~ U[low, high]`` with ``(low, high)`` the
manifest's ``relative_density`` (default ``DATA_DENSITY_RANGE = (0.3, 0.9)``, the published data
set's range, spec ``spinodoid.md``; ``metainv generate spinodoid --density-range LOW HIGH``
chooses another, e.g. 0.15 0.3 for the low-density extension below the paper's range, within
``RELATIVE_DENSITY_RANGE`` of ``metainv.spinodoid.design``); each cone angle is 0 (cone off)
with probability ``theta_zero_probability`` and otherwise ``U[15, 90]`` deg (paper Eq. 2),
redrawn when all three are 0. The level is the ``"exact"`` sample quantile
(``metainv.spinodoid.field``), which halves the realization scatter of C against the ensemble
level of Eq. 3 by removing the density scatter (measured: README, "Spinodoid inverse design").

The voxel resolution is a generation parameter (24^3 by default, chosen for the CPU budget:
about 0.45 s per design on one core). FE verification of designs must use the same resolution
and level rule as the data, so both are recorded in the manifest and in the model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metainv.errors import DesignError
from metainv.spinodoid.design import (
    RELATIVE_DENSITY_RANGE,
    THETA_MAX_DEG,
    THETA_MIN_DEG,
    SpinodoidDesign,
)
from metainv.spinodoid.field import BETA, N_WAVES
from metainv.spinodoid.homogenize import fe_solver, homogenize_spinodoid
from metainv.tensors import c21_from_matrix, orthotropic9_from_matrix

logger = logging.getLogger(__name__)

#: Version of the column layout below; bump on any change.
SCHEMA_VERSION = 1
#: Voxels per cell edge of the data (and of FE verification of designs).
DATA_RESOLUTION = 24
#: Level rule of the data (``metainv.spinodoid.field.THRESHOLDS``).
DATA_THRESHOLD = "exact"
#: Default range of relative densities sampled (published data set, spec spinodoid.md).
DATA_DENSITY_RANGE = (0.3, 0.9)
#: Probability that a cone angle is 0 (cone switched off).
THETA_ZERO_PROBABILITY = 1.0 / 3.0
#: Names of the 9 orthotropic constants, in the order of the paper's vector S.
STIFFNESS_NAMES = ("C11", "C12", "C13", "C22", "C23", "C33", "C44", "C55", "C66")
#: Names of the design parameters Theta.
DESIGN_NAMES = ("relative_density", "theta1", "theta2", "theta3")


def _c21_names() -> list[str]:
    return [f"full_C{i + 1}{j + 1}" for i in range(6) for j in range(i, 6)]


def column_names() -> list[str]:
    """Flat column names of a spinodoid data-set table, in storage order."""
    return [
        *DESIGN_NAMES,
        "seed",
        "measured_density",
        *STIFFNESS_NAMES,
        *_c21_names(),
        "seconds",
    ]


def check_density_range(density_range: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` as floats; raises ``DesignError`` unless it is an interval inside
    ``RELATIVE_DENSITY_RANGE`` with ``low < high``."""
    if len(density_range) != 2:
        raise DesignError(f"density range must be (low, high), got {density_range!r}")
    low, high = (float(v) for v in density_range)
    lowest, highest = RELATIVE_DENSITY_RANGE
    if not (lowest <= low < high <= highest):
        raise DesignError(
            f"density range [{low:g}, {high:g}] must satisfy "
            f"{lowest:g} <= low < high <= {highest:g}"
        )
    return low, high


def generation_parameters(
    resolution: int = DATA_RESOLUTION,
    threshold: str = DATA_THRESHOLD,
    density_range: Sequence[float] = DATA_DENSITY_RANGE,
) -> dict[str, Any]:
    """Ranges, geometry and FE settings of spinodoid data sets (stored in the manifest)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "solid",
        "relative_density": list(check_density_range(density_range)),
        "theta_range_deg": [THETA_MIN_DEG, THETA_MAX_DEG],
        "theta_zero_probability": THETA_ZERO_PROBABILITY,
        "theta_law": "each angle 0 with theta_zero_probability, else U[15, 90]; not all 0",
        "resolution": int(resolution),
        "threshold": threshold,
        "n_waves": N_WAVES,
        "beta": BETA,
        "boundary": "affine",
        "solver": fe_solver(resolution),
        "base_material": {"youngs_modulus": 1.0, "poisson_ratio": 0.3},
        "columns": column_names(),
    }


def sample_parameters(
    rows: int,
    rng: np.random.Generator,
    density_range: Sequence[float] = DATA_DENSITY_RANGE,
) -> dict[str, np.ndarray]:
    """``rows`` design parameter sets from the sampling law of the module docstring.

    Returns ``relative_density`` (rows,), ``theta`` (rows, 3) in degrees, ``seed`` (rows,).
    """
    low, high = check_density_range(density_range)
    rho = rng.uniform(low, high, size=rows)
    theta = rng.uniform(THETA_MIN_DEG, THETA_MAX_DEG, size=(rows, 3))
    off = rng.random(size=(rows, 3)) < THETA_ZERO_PROBABILITY
    while True:  # redraw the on/off pattern of rows with all cones off
        dead = off.all(axis=1)
        if not dead.any():
            break
        off[dead] = rng.random(size=(int(dead.sum()), 3)) < THETA_ZERO_PROBABILITY
    theta[off] = 0.0
    seed = rng.integers(0, 2**31 - 1, size=rows)
    return {"relative_density": rho, "theta": theta, "seed": seed}


def label_design(
    design: SpinodoidDesign, params: Mapping[str, Any]
) -> tuple[np.ndarray, float, float]:
    """FE stiffness (6, 6) / E_s, measured density and seconds of one design."""
    result = homogenize_spinodoid(
        design,
        resolution=int(params["resolution"]),
        youngs_modulus=float(params["base_material"]["youngs_modulus"]),
        poisson_ratio=float(params["base_material"]["poisson_ratio"]),
        boundary=params.get("boundary", "affine"),
        n_waves=int(params.get("n_waves", N_WAVES)),
        beta=float(params.get("beta", BETA)),
        threshold=params.get("threshold", DATA_THRESHOLD),
        solver=params.get("solver", fe_solver(int(params["resolution"]))),
    )
    C = (result.C + result.C.T) / 2
    return C, result.relative_density, math.fsum(result.seconds.values())


def generate_shard(rows: int, rng: np.random.Generator, params: Mapping) -> dict[str, np.ndarray]:
    """Columns of one shard: ``rows`` designs sampled from ``rng`` and their FE labels."""
    sampled = sample_parameters(rows, rng, params.get("relative_density", DATA_DENSITY_RANGE))
    C = np.empty((rows, 6, 6))
    measured = np.empty(rows)
    seconds = np.empty(rows)
    for row in range(rows):
        design = SpinodoidDesign(
            relative_density=float(sampled["relative_density"][row]),
            theta=sampled["theta"][row],
            kind=params.get("kind", "solid"),
            seed=int(sampled["seed"][row]),
        )
        C[row], measured[row], seconds[row] = label_design(design, params)
    columns: dict[str, np.ndarray] = {"relative_density": sampled["relative_density"]}
    for k in range(3):
        columns[f"theta{k + 1}"] = sampled["theta"][:, k]
    columns["seed"] = sampled["seed"].astype(np.int64)
    columns["measured_density"] = measured
    for name, values in zip(STIFFNESS_NAMES, orthotropic9_from_matrix(C).T, strict=True):
        columns[name] = values
    for name, values in zip(_c21_names(), c21_from_matrix(C).T, strict=True):
        columns[name] = values
    columns["seconds"] = seconds
    return {name: columns[name] for name in column_names()}
