"""Spinodoid homogenization against the published data set (Kumar et al. 2020, data.csv).

The published row is pinned here (its 9 constants copied from
``../shared/data/kumar2020_spinodoids.csv``, data row 667 counted from 0 after the header;
MIT license, (c) 2020 ETH Zurich) so the test needs no outside file.
``benchmarks/spinodoid_published.py`` does the full comparison.
"""

from __future__ import annotations

import numpy as np
import pytest

from metainv.spinodoid import REFERENCE_RESOLUTION, SpinodoidDesign, homogenize_spinodoid
from metainv.tensors import nmse

#: Row 667 of the published set: rho, theta (deg), and C11 C12 C13 C22 C23 C33 C44 C55 C66 / E_s.
ROW_667 = (
    0.516378,
    (0.0, 46.8683, 0.0),
    (
        0.4171936,
        0.07343008,
        0.1230524,
        0.1399762,
        0.07323416,
        0.4207076,
        0.08581206,
        0.1464502,
        0.08536412,
    ),
)


def orthotropic(constants) -> np.ndarray:
    c11, c12, c13, c22, c23, c33, c44, c55, c66 = constants
    return np.array(
        [
            [c11, c12, c13, 0, 0, 0],
            [c12, c22, c23, 0, 0, 0],
            [c13, c23, c33, 0, 0, 0],
            [0, 0, 0, c44, 0, 0],
            [0, 0, 0, 0, c55, 0],
            [0, 0, 0, 0, 0, c66],
        ]
    )


def mean_stiffness(rho: float, theta, resolution: int, seeds=(0, 1, 2)) -> np.ndarray:
    return np.mean(
        [
            homogenize_spinodoid(SpinodoidDesign(rho, list(theta)), resolution=resolution, seed=s).C
            for s in seeds
        ],
        axis=0,
    )


def test_published_row_reproduced_at_the_reference_fidelity():
    """Row 667 (a y-cone of 47 deg, rho 0.52) against the mean of 3 of our realizations at
    ``REFERENCE_RESOLUTION`` (22^3), where our voxel FE matches the published data
    (docs/spinodoid_published.md). Measured ours / published - 1 per diagonal constant
    -3 % .. +11 % (C22, the soft axis, is the noisiest), mean +2.4 %, NMSE 0.0017. The bounds
    allow for the scatter of the single published realization; a systematic shift of the
    geometry (level, cones, wave number) or of the FE of about 7 % fails the mean (the same
    row at 32^3: mean -5.0 %)."""
    rho, theta, constants = ROW_667
    published = orthotropic(constants)
    ours = mean_stiffness(rho, theta, REFERENCE_RESOLUTION)
    relative = np.diag(ours) / np.diag(published) - 1
    assert np.all(np.abs(relative) < 0.15), relative
    assert abs(relative.mean()) < 0.045, relative
    assert nmse(published, ours) < 0.004
    # the orthotropic pattern of the published row: the cone axis (e2) is the soft one
    assert ours[1, 1] < 0.5 * min(ours[0, 0], ours[2, 2])
    assert ours[4, 4] > 1.3 * max(ours[3, 3], ours[5, 5])  # C55 (shear in the 13 plane) stiffest


def test_refinement_softens_a_fixed_field():
    """Voxel FE of a solid spinodoid converges from the stiff side (docs/spinodoid_convergence.md):
    on one fixed field the normal constants fall from 16^3 to 32^3. This is why the published
    data, which sit at the level of our coarse grids, lie above our converged values."""
    rho, theta, _ = ROW_667
    design = SpinodoidDesign(rho, list(theta))
    coarse = homogenize_spinodoid(design, resolution=16).C
    fine = homogenize_spinodoid(design, resolution=32).C
    assert np.all(np.diag(fine)[:3] < np.diag(coarse)[:3])
    assert np.trace(fine) == pytest.approx(np.trace(coarse), rel=0.25)
