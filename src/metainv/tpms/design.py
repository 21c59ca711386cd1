"""TPMS designs: a surface, a variant and a relative density, and their JSON form.

A design file is ``{"family": "tpms", "surface": "gyroid", "variant": "sheet",
"relative_density": 0.3}`` (surfaces: gyroid, schwarz_p, diamond; variants: sheet, network;
density in (0, 1)). The cell is the unit cube of period 1 (cell units).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from metainv.errors import DesignError
from metainv.tpms.fields import SURFACES, VARIANTS

FAMILY = "tpms"
#: Densities a voxel cell can resolve at the default resolution (at least a few voxels thick).
RELATIVE_DENSITY_RANGE = (0.05, 0.95)
_REQUIRED_KEYS = ("family", "surface", "variant", "relative_density")
_OPTIONAL_KEYS = ("name", "description")


@dataclass(frozen=True)
class TpmsDesign:
    """One TPMS cell.

    surface: ``gyroid``, ``schwarz_p`` or ``diamond``; variant: ``sheet`` (a wall around the
    minimal surface) or ``network`` (one labyrinth, thickened); relative_density: solid volume
    fraction in [0.05, 0.95] (dimensionless).
    """

    surface: str = "gyroid"
    variant: str = "sheet"
    relative_density: float = 0.3

    def __post_init__(self) -> None:
        if self.surface not in SURFACES:
            raise DesignError(
                f"surface = {self.surface!r} is not a TPMS (expected one of: "
                f"{', '.join(sorted(SURFACES))})"
            )
        if self.variant not in VARIANTS:
            raise DesignError(
                f"variant = {self.variant!r} is unknown (expected one of: {', '.join(VARIANTS)})"
            )
        rho = self.relative_density
        if isinstance(rho, bool) or not isinstance(rho, (int, float, np.floating, np.integer)):
            raise DesignError(f"relative_density must be a number, got {rho!r}")
        low, high = RELATIVE_DENSITY_RANGE
        if not (np.isfinite(rho) and low <= float(rho) <= high):
            raise DesignError(f"relative_density = {rho} is outside [{low:g}, {high:g}]")
        object.__setattr__(self, "relative_density", float(rho))


def design_from_dict(data: Mapping[str, Any]) -> TpmsDesign:
    """Validated design from a parsed JSON object (specific errors for each key)."""
    if not isinstance(data, Mapping):
        raise DesignError(f"a design must be a JSON object, got {type(data).__name__}")
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise DesignError(f"missing key {key!r} in TPMS design")
    unknown = sorted(set(data) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise DesignError(
            f"unknown key {unknown[0]!r} in TPMS design (expected: "
            f"{', '.join(_REQUIRED_KEYS + _OPTIONAL_KEYS)})"
        )
    if data["family"] != FAMILY:
        raise DesignError(f"family must be {FAMILY!r}, got {data['family']!r}")
    return TpmsDesign(
        surface=data["surface"], variant=data["variant"], relative_density=data["relative_density"]
    )


def design_to_dict(design: TpmsDesign) -> dict[str, Any]:
    """JSON-ready form (inverse of :func:`design_from_dict`)."""
    return {
        "family": FAMILY,
        "surface": design.surface,
        "variant": design.variant,
        "relative_density": design.relative_density,
    }


def sample_designs(n: int, rng: np.random.Generator) -> list[TpmsDesign]:
    """``n`` designs: surface and variant uniform, density uniform in [0.1, 0.6]."""
    surfaces = sorted(SURFACES)
    variants = list(VARIANTS)
    s = rng.integers(0, len(surfaces), size=n)
    v = rng.integers(0, len(variants), size=n)
    rho = rng.uniform(0.1, 0.6, size=n)
    return [
        TpmsDesign(surfaces[i], variants[j], float(r)) for i, j, r in zip(s, v, rho, strict=True)
    ]
