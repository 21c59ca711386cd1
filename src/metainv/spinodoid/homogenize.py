"""Effective stiffness of a spinodoid: voxelize the field, homogenize with voxel FE.

Follows the reference protocol (spec ``spinodoid.md``, Homogenization): a cubic RVE of edge 1
sampled at voxel centers, isotropic base material (``E_s``, ``nu_s = 0.3``), affine
displacement boundary conditions (the fields are not periodic), six average strains, stiffness
normalized by ``E_s``. Void voxels carry no element by default (``void_modulus_ratio=None``:
about 40 % faster than an ersatz phase at 64^3; see ``docs/spinodoid_convergence.md`` for the
measured difference).

Against the published data set (Kumar et al. 2020, the authors' data.csv; ``README``,
Spinodoids, and ``docs/spinodoid_published.md``): the geometry (Eqs. 1-3, ``beta = 10 pi``
per cell edge, union of cones, Eq. 3 level) and the affine BCs agree with the reference, but
the published constants are those of a coarse discretization: they match this voxel FE at
``REFERENCE_RESOLUTION`` = 22 voxels per cell edge (about 4.4 voxels per wavelength) within
3 % at every density, and lie 5-15 % (rho 0.3-0.6) above its converged values. Voxel FE of a
solid network converges from the stiff side, so refining moves away from the published
numbers; ``DEFAULT_RESOLUTION`` stays the converged grid.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from metainv.spinodoid.design import SpinodoidDesign
from metainv.spinodoid.field import BETA, N_WAVES, solid_mask
from metainv.voxel import homogenize_voxels_detailed

logger = logging.getLogger(__name__)

#: Voxels per cell edge recommended for converged stiffness (docs/spinodoid_convergence.md).
DEFAULT_RESOLUTION = 64
#: Voxels per cell edge at which this FE reproduces the published data set of Kumar et al.
#: (2020) without systematic bias (benchmarks/spinodoid_published.py,
#: docs/spinodoid_published.md): the fidelity to use for data that are mixed with it.
REFERENCE_RESOLUTION = 22
#: Smallest voxel resolution solved by geometric multigrid (:func:`fe_solver`).
GMG_MIN_RESOLUTION = 40


def fe_solver(resolution: int) -> str:
    """The voxel FE solver for ``resolution``^3: matrix-free geometric multigrid from
    ``GMG_MIN_RESOLUTION`` up, assembled AMG below (cheaper setup on small grids); both give C
    to the CG tolerance. Measured at 64^3 (void removed, six load cases, 2 threads on a lightly
    loaded 2-core machine): rho 0.5 isotropic 5.7 s against 20.0 s with AMG, rho 0.3 columnar
    (30, 30, 0) 8.6 s against 30.6 s, rho 0.7 lamellar (60, 0, 0) 4.9 s against 17.7 s."""
    return "gmg" if int(resolution) >= GMG_MIN_RESOLUTION else "amg"


@dataclass(frozen=True)
class SpinodoidHomogenization:
    """Result of :func:`homogenize_spinodoid`.

    Attributes:
        C: effective Voigt stiffness (6, 6), normalized by ``E_s`` when ``youngs_modulus=1``.
        relative_density: measured solid volume fraction of the voxel grid.
        target_density: the design's ``rho``.
        resolution: voxels per cell edge.
        seed: the field realization used.
        boundary: ``"affine"`` or ``"periodic"``.
        void_modulus_ratio: ersatz modulus ratio, ``None`` when the void was removed.
        seconds: wall-clock seconds of ``field`` and of the FE phases.
    """

    C: np.ndarray
    relative_density: float
    target_density: float
    resolution: int
    seed: int
    boundary: str
    void_modulus_ratio: float | None
    seconds: dict[str, float]


def homogenize_spinodoid(
    design: SpinodoidDesign,
    resolution: int = DEFAULT_RESOLUTION,
    seed: int | None = None,
    youngs_modulus: float = 1.0,
    poisson_ratio: float = 0.3,
    boundary: str = "affine",
    void_modulus_ratio: float | None = None,
    n_waves: int = N_WAVES,
    beta: float = BETA,
    threshold: str = "ensemble",
    solver: str | None = None,
) -> SpinodoidHomogenization:
    """Voxelize ``design`` (Eqs. 1-3) at ``resolution``^3 and homogenize it.

    Args:
        design: the spinodoid.
        resolution: voxels per cell edge.
        seed: field realization; ``None`` uses ``design.seed``.
        youngs_modulus: base modulus ``E_s`` (1: C normalized by ``E_s``).
        poisson_ratio: base Poisson ratio.
        boundary: ``"affine"`` (reference protocol) or ``"periodic"``.
        void_modulus_ratio: ersatz void modulus over ``E_s``, or ``None`` to remove the void.
        n_waves: number of waves N of the field.
        beta: wave number for a cell of edge 1.
        threshold: level rule, ``"ensemble"`` (paper Eq. 3; the density scatters with the
            realization) or ``"exact"`` (the grid has the requested density within a voxel).
        solver: linear solver of :func:`metainv.voxel.homogenize_voxels_detailed`
            (``"amg"``, ``"gmg"``, ``"direct"``; the same C to the CG tolerance); ``None``:
            :func:`fe_solver` (geometric multigrid from 40^3 up).

    Returns:
        A :class:`SpinodoidHomogenization`.
    """
    seed = design.seed if seed is None else int(seed)
    solver = fe_solver(resolution) if solver is None else solver
    clock = time.perf_counter()
    solid = solid_mask(
        design, resolution, seed=seed, n_waves=n_waves, beta=beta, threshold=threshold
    )
    field_seconds = time.perf_counter() - clock
    result = homogenize_voxels_detailed(
        solid,
        youngs_modulus=youngs_modulus,
        poisson_ratio=poisson_ratio,
        boundary=boundary,
        void_modulus_ratio=void_modulus_ratio,
        solver=solver,
    )
    return SpinodoidHomogenization(
        C=result.C,
        relative_density=result.solid_fraction,
        target_density=design.relative_density,
        resolution=int(resolution),
        seed=seed,
        boundary=boundary,
        void_modulus_ratio=void_modulus_ratio,
        seconds={"field": field_seconds, **result.seconds},
    )
