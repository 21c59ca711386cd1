"""The published spinodoid data set of Kumar et al. (2020): the authors' data.csv.

21,300 rows, one field realization each, homogenized by the authors' FE (affine boundary
conditions, ``nu_s = 0.3``, ``C / E_s``); ``../shared/data/README.md`` describes the columns:
``volFrac`` (rho), ``thetaX thetaY thetaZ`` (cone angles in degrees) and the 9 orthotropic
constants as zero-based indices into the flattened 6x6 Voigt matrix. Our FE reproduces these
constants at ``REFERENCE_RESOLUTION`` = 22 voxels per cell edge (``docs/spinodoid_published.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metainv.errors import MetainvError

#: data.csv columns of the 9 orthotropic constants (zero-based flat 6x6 indices).
STIFFNESS_COLUMNS = {
    (0, 0): "stiffness0",
    (0, 1): "stiffness1",
    (0, 2): "stiffness2",
    (1, 1): "stiffness7",
    (1, 2): "stiffness8",
    (2, 2): "stiffness14",
    (3, 3): "stiffness21",
    (4, 4): "stiffness28",
    (5, 5): "stiffness35",
}
DESIGN_COLUMNS = ("volFrac", "thetaX", "thetaY", "thetaZ")


def read_published(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rho (n,), theta (n, 3) in degrees, C / E_s (n, 6, 6))`` of the published data.csv.

    Raises :class:`metainv.errors.MetainvError` naming the file when it cannot be read, lacks a
    column, or holds a non-finite number.
    """
    path = Path(path)
    try:
        table = np.genfromtxt(path, delimiter=",", names=True)
    except (OSError, ValueError) as error:
        raise MetainvError(f"{path}: cannot read the published spinodoid data ({error})") from None
    names = table.dtype.names or ()
    missing = [c for c in (*DESIGN_COLUMNS, *STIFFNESS_COLUMNS.values()) if c not in names]
    if missing:
        raise MetainvError(
            f"{path}: column {missing[0]!r} missing; expected the published data.csv columns "
            f"{', '.join(DESIGN_COLUMNS)}, stiffness0 ... stiffness35"
        )
    table = np.atleast_1d(table)
    C = np.zeros((table.size, 6, 6))
    for (i, j), column in STIFFNESS_COLUMNS.items():
        C[:, i, j] = C[:, j, i] = table[column]
    theta = np.stack([table[name] for name in DESIGN_COLUMNS[1:]], axis=1).astype(float)
    rho = np.asarray(table["volFrac"], dtype=float)
    if not (np.isfinite(C).all() and np.isfinite(theta).all() and np.isfinite(rho).all()):
        raise MetainvError(f"{path}: non-finite number in the published spinodoid data")
    return rho, theta, C
