"""Spinodoid design parameters (Kumar et al. 2020, Eqs. 1-3) and their JSON form.

A design is ``Theta = (rho, theta1, theta2, theta3)``: the relative density ``rho`` in
[0.15, 1] and three cone half-angles in degrees, each 0 (cone off) or in
[15, 90] (paper Eq. 2, ``theta_min = 15 deg``), not all zero. ``kind`` chooses the solid
network (``phi <= phi_0``, Eq. 3) or the shell network (thickened zero iso-surface, Eq. 4).
An optional rotation ``R`` (3x3, proper orthogonal) turns the wave vectors, ``n -> R n``, so
the microstructure's principal directions become the columns of ``R``. ``seed`` selects the
realization of the random field, so one design file describes one part.

JSON format (one design per file)::

    {"family": "spinodoid", "relative_density": 0.5, "theta": [0, 0, 90],
     "kind": "solid", "rotation": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "seed": 0}

``kind`` (default ``"solid"``), ``rotation`` (default identity), ``seed`` (default 0) and the
free-text keys ``name`` and ``description`` are optional; any other key is an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import DesignError
from metainv.tensors import is_rotation

FAMILY = "spinodoid"
KINDS = ("solid", "shell")
#: Valid relative densities. The paper's range is [0.3, 1]; we extend it down to 0.15 (our
#: extension, not in the paper) so that soft targets such as trabecular bone at tissue modulus
#: (bone3 at E_s = 20 GPa: C33 / E_s = 0.063) can be matched by solid columnar spinodoids.
#: Below rho of about 0.25 the solid may fall apart into separate pieces (measured on random
#: designs at 24^3: one spanning network in 8 % of them for rho in [0.15, 0.2), 67 % in
#: [0.2, 0.25), 93 % in [0.25, 0.3)); see ``metainv.spinodoid.learn.inverse.solid_connectivity``.
RELATIVE_DENSITY_RANGE = (0.15, 1.0)
#: Smallest non-zero cone angle in degrees (paper Eq. 2, theta_min).
THETA_MIN_DEG = 15.0
THETA_MAX_DEG = 90.0
ROTATION_TOL = 1e-6

_REQUIRED_KEYS = ("family", "relative_density", "theta")
_OPTIONAL_KEYS = ("kind", "rotation", "seed", "name", "description")


@dataclass(frozen=True, eq=False)
class SpinodoidDesign:
    """One spinodoid design.

    Attributes:
        relative_density: solid volume fraction ``rho`` in [0.15, 1] (dimensionless; the
            paper's range is [0.3, 1], below 0.3 is our low-density extension).
        theta: cone half-angles (3,) in degrees about e1, e2, e3; each 0 or in [15, 90].
        kind: ``"solid"`` or ``"shell"``.
        rotation: (3, 3) proper rotation applied to the wave vectors, or ``None`` (identity).
        seed: realization of the random field (non-negative int).

    Arrays are stored as read-only float64 copies. Designs compare equal when every parameter
    is identical (exact float equality).
    """

    relative_density: float
    theta: np.ndarray
    kind: str = "solid"
    rotation: np.ndarray | None = None
    seed: int = field(default=0)

    def __post_init__(self) -> None:
        rho = _number(self.relative_density, "relative_density")
        low, high = RELATIVE_DENSITY_RANGE
        if not low <= rho <= high:
            raise DesignError(f"relative_density = {rho:g} is outside [{low:g}, {high:g}]")
        object.__setattr__(self, "relative_density", rho)
        object.__setattr__(self, "theta", _theta(self.theta))
        if self.kind not in KINDS:
            raise DesignError(f"kind = {self.kind!r} is not one of: {', '.join(KINDS)}")
        if self.rotation is not None:
            object.__setattr__(self, "rotation", _rotation(self.rotation))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise DesignError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.seed < 0:
            raise DesignError(f"seed must be a non-negative integer, got {self.seed}")
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def rotation_matrix(self) -> np.ndarray:
        """The rotation (3, 3), identity when none was given."""
        return np.eye(3) if self.rotation is None else self.rotation

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpinodoidDesign):
            return NotImplemented
        return (
            self.relative_density == other.relative_density
            and np.array_equal(self.theta, other.theta)
            and self.kind == other.kind
            and np.array_equal(self.rotation_matrix, other.rotation_matrix)
            and self.seed == other.seed
        )

    def __hash__(self) -> int:
        return hash((self.relative_density, tuple(self.theta), self.kind, self.seed))


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DesignError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise DesignError(f"{name} must be finite, got {value}")
    return value


def _theta(value: Any) -> np.ndarray:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise DesignError(f"theta must be a list of 3 angles in degrees, got {value!r}")
    if len(value) != 3:
        raise DesignError(f"theta must have 3 angles in degrees, got {len(value)}")
    angles = np.array([_number(t, f"theta[{i}]") for i, t in enumerate(value)])
    for i, t in enumerate(angles):
        if t != 0 and not THETA_MIN_DEG <= t <= THETA_MAX_DEG:
            raise DesignError(
                f"theta[{i}] = {t:g} deg must be 0 or lie in [{THETA_MIN_DEG:g}, {THETA_MAX_DEG:g}]"
            )
    if not angles.any():
        raise DesignError("theta: at least one cone angle must be non-zero")
    angles.flags.writeable = False
    return angles


def _rotation(value: Any) -> np.ndarray:
    try:
        R = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise DesignError("rotation must be a 3x3 matrix of numbers") from None
    if R.shape != (3, 3):
        raise DesignError(f"rotation must be a 3x3 matrix, got shape {R.shape}")
    if not np.all(np.isfinite(R)):
        raise DesignError("rotation must be finite")
    if not bool(is_rotation(R, tol=ROTATION_TOL)):
        raise DesignError("rotation is not a rotation matrix (orthogonal with det +1)")
    R.flags.writeable = False
    return R


def design_from_dict(data: Mapping[str, Any]) -> SpinodoidDesign:
    """Validated design from a parsed JSON object; errors name the field at fault."""
    if not isinstance(data, Mapping):
        raise DesignError(f"a design must be a JSON object, got {type(data).__name__}")
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise DesignError(f"missing key {key!r} in spinodoid design")
    if data["family"] != FAMILY:
        raise DesignError(f"family must be {FAMILY!r}, got {data['family']!r}")
    unknown = sorted(set(data) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        allowed = ", ".join(_REQUIRED_KEYS + _OPTIONAL_KEYS)
        raise DesignError(f"unknown key {unknown[0]!r} in spinodoid design (allowed: {allowed})")
    kind = data.get("kind", "solid")
    if not isinstance(kind, str):
        raise DesignError(f"kind must be a string ({' or '.join(KINDS)}), got {kind!r}")
    return SpinodoidDesign(
        relative_density=data["relative_density"],
        theta=data["theta"],
        kind=kind,
        rotation=data.get("rotation"),
        seed=data.get("seed", 0),
    )


def design_to_dict(design: SpinodoidDesign) -> dict[str, Any]:
    """JSON-serializable form; ``design_from_dict(design_to_dict(d)) == d``."""
    data: dict[str, Any] = {
        "family": FAMILY,
        "relative_density": design.relative_density,
        "theta": [float(t) for t in design.theta],
        "kind": design.kind,
    }
    if design.rotation is not None:
        data["rotation"] = design.rotation.tolist()
    data["seed"] = design.seed
    return data


def load_design(path: str | Path) -> SpinodoidDesign:
    """Read one design from a JSON file."""
    return design_from_dict(json.loads(Path(path).read_text()))


def save_design(design: SpinodoidDesign, path: str | Path) -> Path:
    """Write one design as JSON; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(design_to_dict(design), indent=2) + "\n")
    return path
