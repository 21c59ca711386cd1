"""Admissibility checks of a Voigt stiffness: is this 6x6 matrix a physical elastic stiffness?

A stiffness ``C`` (6, 6) in Voigt order 11, 22, 33, 23, 13, 12 with engineering shear strains is
admissible when it is finite, symmetric and positive definite (positive strain energy
``W = eps^T C eps / 2`` for every strain). Positive definiteness implies strong ellipticity
(positive acoustic tensor ``Q_ik(n) = C_ijkl n_j n_l`` for every direction ``n``), which is
checked and reported separately because it tells a different story (wave speeds, material
stability) when positive definiteness fails. Optionally, a lattice of relative density at most
``rho_max`` made of an isotropic solid cannot be stiffer than the Voigt bound:
``rho_max * C_solid - C`` positive semi-definite (Loewner order).

Eigenvalues are those of the Voigt matrix as given (what ``numpy.linalg.eigvalsh(C)`` returns);
their sign pattern equals that of the Mandel form, so every yes/no answer is convention-free.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from metainv.errors import MetainvError
from metainv.tensors._backend import Array, is_torch
from metainv.tensors._elastic import isotropic_stiffness, voigt_bound
from metainv.tensors._voigt import voigt_to_tensor

logger = logging.getLogger(__name__)

#: Strain-component labels of the Voigt positions, for messages.
VOIGT_LABELS: tuple[str, ...] = ("11", "22", "33", "23", "13", "12")

#: Number of directions on the half sphere scanned for strong ellipticity before refinement.
N_ELLIPTICITY_DIRECTIONS = 2000

#: At most this many non-finite entries are named one by one.
_MAX_NAMED_ENTRIES = 6


@dataclass(frozen=True)
class StiffnessReport:
    """Result of :func:`check_stiffness`. ``None`` in a field means "not checked".

    Fields: ``shape`` of the input; ``finite`` (no NaN/inf); ``symmetric`` and
    ``max_asymmetry = max |C_ij - C_ji|``; ``positive_definite``, ``min_eigenvalue`` and all
    ``eigenvalues`` (ascending) of the symmetric part; ``strongly_elliptic``,
    ``min_acoustic_eigenvalue`` and the ``worst_direction`` (unit 3-vector) where it occurs;
    ``within_voigt_bound`` against ``max_relative_density * C_solid`` with
    ``voigt_margin_min_eigenvalue``, the smallest eigenvalue of ``rho_max C_solid - C``;
    ``failures``: one line per failed check, naming the entry, eigenvalue or direction at fault.
    """

    shape: tuple[int, ...]
    finite: bool | None
    symmetric: bool | None
    max_asymmetry: float | None
    positive_definite: bool | None
    min_eigenvalue: float | None
    eigenvalues: tuple[float, ...] | None
    strongly_elliptic: bool | None
    min_acoustic_eigenvalue: float | None
    worst_direction: tuple[float, float, float] | None
    within_voigt_bound: bool | None
    max_relative_density: float | None
    voigt_margin_min_eigenvalue: float | None
    failures: tuple[str, ...]

    @property
    def admissible(self) -> bool:
        """True when every check that was run passed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (tuples become lists; ``None`` stays ``null``)."""
        fields = asdict(self)
        as_lists = {
            key: list(value) if isinstance(value, tuple) else value for key, value in fields.items()
        }
        return {"admissible": self.admissible, **as_lists}


def entry_name(row: int, col: int) -> str:
    """Voigt entry name, 1-based: ``entry_name(0, 3) == "C14"``."""
    return f"C{row + 1}{col + 1}"


def check_stiffness(
    C: Array,
    solid: Array | tuple[float, float] | None = None,
    max_relative_density: float | None = None,
    rtol: float = 1e-8,
) -> StiffnessReport:
    """Check that ``C`` (6, 6) is an admissible elastic stiffness; see the module docstring.

    Args:
        C: Voigt stiffness (6, 6), numpy array, torch tensor or nested list.
        solid: the base material for the Voigt-bound check, as ``(E, nu)`` of an isotropic solid
            (in the units of ``C``) or a Voigt stiffness (6, 6). ``None`` with
            ``max_relative_density`` set means the normalized base material of the spec,
            ``(E, nu) = (1, 0.3)``.
        max_relative_density: ``rho_max`` of the bound ``C <= rho_max * C_solid``; ``None`` with
            ``solid`` set means 1 (the solid itself bounds any of its lattices).
        rtol: tolerance relative to ``max |C_ij|`` for symmetry, definiteness and the bound.

    Returns:
        A :class:`StiffnessReport`; ``report.admissible`` is False when any check failed.

    Raises:
        MetainvError: for an invalid ``solid`` or ``max_relative_density`` (not for a bad ``C``:
            that is what the report is for).
    """
    bound = _voigt_bound_stiffness(solid, max_relative_density)
    matrix, shape, shape_failure = _as_matrix(C)
    if shape_failure is not None:
        return _report(shape=shape, failures=(shape_failure,))

    nonfinite = _nonfinite_failures(matrix)
    if nonfinite:
        return _report(shape=shape, finite=False, failures=nonfinite)

    scale = float(np.abs(matrix).max())
    tolerance = rtol * scale if scale > 0 else rtol
    failures: list[str] = []
    if scale == 0:
        failures.append("all entries are zero")

    max_asymmetry, symmetry_failure = _symmetry(matrix, tolerance)
    if symmetry_failure:
        failures.append(symmetry_failure)
    symmetric_part = (matrix + matrix.T) / 2

    eigenvalues = np.linalg.eigvalsh(symmetric_part)
    positive_definite = bool(eigenvalues[0] > tolerance)
    if not positive_definite:
        failures.append(_definiteness_failure(symmetric_part, eigenvalues, tolerance))

    min_acoustic, worst_direction = min_acoustic_eigenvalue(symmetric_part)
    strongly_elliptic = bool(min_acoustic > tolerance)
    if not strongly_elliptic:
        failures.append(
            f"not strongly elliptic: acoustic tensor eigenvalue {min_acoustic:.6g} "
            f"{_not_positive(min_acoustic, tolerance)} "
            f"along direction ({_format_vector(worst_direction)})"
        )

    within_bound: bool | None = None
    margin: float | None = None
    rho_max: float | None = None
    if bound is not None:
        bound_matrix, rho_max = bound
        margin = float(np.linalg.eigvalsh(bound_matrix - symmetric_part)[0])
        within_bound = bool(margin >= -tolerance)
        if not within_bound:
            failures.append(
                f"exceeds the Voigt bound rho_max*C_solid (rho_max={rho_max:g}): smallest "
                f"eigenvalue of rho_max*C_solid - C is {margin:.6g} < 0"
            )

    return _report(
        shape=shape,
        finite=True,
        symmetric=symmetry_failure is None,
        max_asymmetry=max_asymmetry,
        positive_definite=positive_definite,
        min_eigenvalue=float(eigenvalues[0]),
        eigenvalues=tuple(float(value) for value in eigenvalues),
        strongly_elliptic=strongly_elliptic,
        min_acoustic_eigenvalue=min_acoustic,
        worst_direction=tuple(float(value) for value in worst_direction),
        within_voigt_bound=within_bound,
        max_relative_density=rho_max,
        voigt_margin_min_eigenvalue=margin,
        failures=tuple(failures),
    )


def acoustic_tensor(C: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Acoustic tensors ``Q_ik(n) = C_ijkl n_j n_l`` (M, 3, 3) of ``C`` (6, 6) for ``n`` (M, 3)."""
    tensor = voigt_to_tensor(np.asarray(C, dtype=float))
    return np.einsum("ijkl,mj,ml->mik", tensor, directions, directions)


def half_sphere_directions(n: int) -> np.ndarray:
    """``n`` nearly uniform unit directions (n, 3) on the half sphere ``n3 >= 0`` (Fibonacci).

    The half sphere suffices for quantities even in ``n`` such as the acoustic tensor.
    """
    k = np.arange(n) + 0.5
    n3 = 1.0 - k / n  # uniform in (0, 1]: equal-area bands of the half sphere
    radius = np.sqrt(1.0 - n3**2)
    azimuth = np.pi * (1.0 + np.sqrt(5.0)) * k
    return np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), n3], axis=-1)


def min_acoustic_eigenvalue(
    C: np.ndarray, n_directions: int = N_ELLIPTICITY_DIRECTIONS
) -> tuple[float, np.ndarray]:
    """Smallest eigenvalue of the acoustic tensor over all directions, and where it occurs.

    Scans ``n_directions`` directions on the half sphere, then refines the worst one with a
    Nelder-Mead search in spherical angles. Returns ``(value, direction (3,))``.
    """
    directions = half_sphere_directions(n_directions)
    lowest = np.linalg.eigvalsh(acoustic_tensor(C, directions))[:, 0]
    start = directions[int(np.argmin(lowest))]

    def lowest_at(angles: np.ndarray) -> float:
        direction = _direction_from_angles(angles)[None, :]
        return float(np.linalg.eigvalsh(acoustic_tensor(C, direction))[0, 0])

    start_angles = np.array([np.arccos(np.clip(start[2], -1, 1)), np.arctan2(start[1], start[0])])
    result = minimize(lowest_at, start_angles, method="Nelder-Mead", options={"xatol": 1e-8})
    if result.fun < lowest.min():
        value, direction = float(result.fun), _direction_from_angles(result.x)
    else:
        value, direction = float(lowest.min()), start
    return value, _canonical_sign(direction)


def _direction_from_angles(angles: np.ndarray) -> np.ndarray:
    polar, azimuth = angles
    return np.array(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)]
    )


def _canonical_sign(direction: np.ndarray) -> np.ndarray:
    """``n`` and ``-n`` are the same direction here: make the largest component positive."""
    direction = direction / np.linalg.norm(direction)
    return direction if direction[np.argmax(np.abs(direction))] >= 0 else -direction


def _as_matrix(C: Array) -> tuple[np.ndarray, tuple[int, ...], str | None]:
    """Convert to a float array; returns ``(matrix, shape, failure or None)``."""
    if is_torch(C):
        C = C.detach().cpu().numpy()
    try:
        matrix = np.asarray(C, dtype=float)
    except (TypeError, ValueError):
        return np.empty(0), (), "entries are not all numbers (or rows have different lengths)"
    shape = tuple(int(size) for size in matrix.shape)
    if shape != (6, 6):
        return matrix, shape, f"expected a 6x6 stiffness matrix, got shape {shape}"
    return matrix, shape, None


def _nonfinite_failures(matrix: np.ndarray) -> tuple[str, ...]:
    rows, cols = np.nonzero(~np.isfinite(matrix))
    failures = [
        f"{entry_name(row, col)} is {'NaN' if np.isnan(matrix[row, col]) else 'infinite'}"
        for row, col in zip(rows[:_MAX_NAMED_ENTRIES], cols[:_MAX_NAMED_ENTRIES], strict=True)
    ]
    if len(rows) > _MAX_NAMED_ENTRIES:
        failures.append(f"and {len(rows) - _MAX_NAMED_ENTRIES} more non-finite entries")
    return tuple(failures)


def _symmetry(matrix: np.ndarray, tolerance: float) -> tuple[float, str | None]:
    """``max |C_ij - C_ji|`` and a message naming the worst pair when it exceeds ``tolerance``."""
    difference = np.abs(matrix - matrix.T)
    row, col = np.unravel_index(int(np.argmax(np.triu(difference))), difference.shape)
    worst = float(difference[row, col])
    if worst <= tolerance:
        return worst, None
    message = (
        f"not symmetric: {entry_name(row, col)} != {entry_name(col, row)} "
        f"({matrix[row, col]:.6g} vs {matrix[col, row]:.6g})"
    )
    return worst, message


def _not_positive(value: float, tolerance: float) -> str:
    """``"<= 0"``, or the tolerance for a value that is positive but numerically zero."""
    return "<= 0" if value <= 0 else f"<= tolerance {tolerance:.3g}"


def _definiteness_failure(
    symmetric_part: np.ndarray, eigenvalues: np.ndarray, tolerance: float
) -> str:
    """Name the smallest eigenvalue and the strain components its eigenvector mostly holds."""
    _, vectors = np.linalg.eigh(symmetric_part)
    weights = np.abs(vectors[:, 0])
    components = ", ".join(
        f"e{label}"
        for label, weight in zip(VOIGT_LABELS, weights, strict=True)
        if weight >= 0.5 * weights.max()
    )
    return (
        f"not positive definite: smallest eigenvalue {eigenvalues[0]:.6g} "
        f"{_not_positive(eigenvalues[0], tolerance)} "
        f"(strain mode mostly {components})"
    )


def _voigt_bound_stiffness(
    solid: Array | tuple[float, float] | None, max_relative_density: float | None
) -> tuple[np.ndarray, float] | None:
    """``(rho_max * C_solid, rho_max)`` or ``None`` when the bound is not requested."""
    if solid is None and max_relative_density is None:
        return None
    rho_max = 1.0 if max_relative_density is None else float(max_relative_density)
    if not 0.0 < rho_max <= 1.0:
        raise MetainvError(f"max relative density must lie in (0, 1], got {rho_max:g}")
    if solid is None:
        solid = (1.0, 0.3)
    if is_torch(solid):
        solid = solid.detach().cpu().numpy()
    solid_array = np.asarray(solid, dtype=float)
    if solid_array.shape == (2,):
        youngs_modulus, poisson_ratio = solid_array
        try:
            solid_matrix = isotropic_stiffness(youngs_modulus, poisson_ratio)
        except ValueError as error:
            raise MetainvError(f"invalid solid: {error}") from None
    elif solid_array.shape == (6, 6):
        solid_matrix = solid_array
    else:
        raise MetainvError(
            f"solid must be (E, nu) or a 6x6 stiffness, got shape {solid_array.shape}"
        )
    logger.debug("Voigt bound with rho_max=%g", rho_max)
    return voigt_bound(solid_matrix, rho_max), rho_max


def _format_vector(vector: np.ndarray) -> str:
    return ", ".join(f"{round(float(value), 3) + 0.0:.3f}" for value in vector)


def _report(**fields: Any) -> StiffnessReport:
    """A report where every field not given is ``None`` (not checked)."""
    defaults: dict[str, Any] = {
        name: None for name in StiffnessReport.__dataclass_fields__ if name not in fields
    }
    return StiffnessReport(**defaults, **fields)
