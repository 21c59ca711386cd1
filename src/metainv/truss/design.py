"""Truss-lattice design parameters (Bastek et al. 2022, main Eq. 1) and their JSON form.

A design has 6 topological parameters -- three (cell, tessellation) pairs, cells S in 1..7 and
tessellations t in {1, 2} -- and 13 geometric ones: the relative density ``rho`` in
[0.002, 0.1], the stretches ``U`` and ``V`` (3 each, in [0.5, 2]) and the rotations ``R1`` and
``R2`` (3 each, as angle-axis). Every node ``X`` of the reference unit cell maps to

    x = F X,   F = R2 V R1 U,   U = diag(U1, U2, U3),  V = diag(V1, V2, V3)

(truss.md section 3). The two forward networks see partial gradients: the first stage only the
stretch ``U`` (:func:`stage1_gradient`), the second everything but the final rotation ``R2``
(:func:`stage2_gradient`); ``R2`` acts on the stiffness exactly through the Bond matrix.

JSON format (one design per file)::

    {"family": "truss",
     "topology": [{"cell": 2, "tessellation": 1}, {"cell": 2, "tessellation": 1},
                  {"cell": 2, "tessellation": 1}],
     "relative_density": 0.05,
     "U": [1, 1, 1], "V": [1, 1, 1],
     "R1": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
     "R2": {"angle": 0.5, "axis": [0, 0, 1]}}

A rotation is a 3x3 matrix (rows) or ``{"angle": radians, "axis": [3]}`` /
``{"angle_deg": degrees, "axis": [3]}``; :func:`design_to_dict` always writes matrices, so a
round trip is exact. Optional free-text keys ``name`` and ``description`` are accepted and
ignored; any other unknown key is an error.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import DesignError
from metainv.tensors import is_rotation, rotation_from_angle_axis, sample_angle_axis

logger = logging.getLogger(__name__)

FAMILY = "truss"
N_CELL_TYPES = 7
CELL_TYPES = tuple(range(1, N_CELL_TYPES + 1))
TESSELLATIONS = (1, 2)
RELATIVE_DENSITY_RANGE = (0.002, 0.1)
STRETCH_RANGE = (0.5, 2.0)
#: The smallest stiffest-direction stiffness ``lambda_max(C_s^-1 C)`` (in ``E_b``) a truss
#: design reaches: 0.1 rho_min (200 random designs at rho_min = 0.002 reach 2.9e-4 to 1.7e-3);
#: a target below it is refused as too soft (:func:`metainv.targets.reachability_problem`).
SOFTEST_STIFFNESS = 0.1 * RELATIVE_DENSITY_RANGE[0]
ROTATION_TOL = 1e-6

Topology = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

_REQUIRED_KEYS = ("family", "topology", "relative_density", "U", "V", "R1", "R2")
_OPTIONAL_KEYS = ("name", "description")


# --------------------------------------------------------------------------------------------
# The design
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrussDesign:
    """One truss-lattice design: 6 topological and 13 geometric parameters.

    Attributes:
        topology: three ``(cell, tessellation)`` pairs, cell in 1..7, tessellation in {1, 2}.
        relative_density: solid volume fraction ``rho`` in [0.002, 0.1] (dimensionless).
        U: first stretch (3,), each in [0.5, 2] (dimensionless), applied before ``R1``.
        V: second stretch (3,), each in [0.5, 2], applied between ``R1`` and ``R2``.
        R1: first rotation (3, 3), proper orthogonal within 1e-6.
        R2: final rotation (3, 3), proper orthogonal within 1e-6.

    Arrays are stored as read-only float64 copies. Two designs compare equal when all
    parameters are identical (exact float equality).
    """

    topology: Topology
    relative_density: float
    U: np.ndarray
    V: np.ndarray
    R1: np.ndarray
    R2: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "topology", _check_topology(self.topology))
        object.__setattr__(self, "relative_density", _check_density(self.relative_density))
        for name in ("U", "V"):
            object.__setattr__(self, name, _check_stretch(name, getattr(self, name)))
        for name in ("R1", "R2"):
            object.__setattr__(self, name, _check_rotation(name, getattr(self, name)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrussDesign):
            return NotImplemented
        return (
            self.topology == other.topology
            and self.relative_density == other.relative_density
            and all(np.array_equal(getattr(self, k), getattr(other, k)) for k in "UV")
            and np.array_equal(self.R1, other.R1)
            and np.array_equal(self.R2, other.R2)
        )

    def __hash__(self) -> int:
        arrays = (self.U, self.V, self.R1, self.R2)
        return hash((self.topology, self.relative_density, *(a.tobytes() for a in arrays)))

    def __repr__(self) -> str:
        return (
            f"TrussDesign(topology={self.topology}, relative_density={self.relative_density!r}, "
            f"U={self.U.tolist()}, V={self.V.tolist()}, R1={self.R1.tolist()}, "
            f"R2={self.R2.tolist()})"
        )


def _check_topology(topology: Any) -> Topology:
    if isinstance(topology, (str, bytes)) or not isinstance(topology, Sequence):
        raise DesignError(
            f"topology must be three (cell, tessellation) pairs, got {_short(topology)}"
        )
    if len(topology) != 3:
        raise DesignError(f"topology must have 3 (cell, tessellation) pairs, got {len(topology)}")
    pairs = []
    for i, pair in enumerate(topology):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise DesignError(
                f"topology[{i}] must be a (cell, tessellation) pair, got {_short(pair)}"
            )
        cell = _as_int(pair[0], f"cell in topology[{i}]")
        tess = _as_int(pair[1], f"tessellation in topology[{i}]")
        if cell not in CELL_TYPES:
            raise DesignError(f"cell {cell} in topology[{i}] is not one of 1..{N_CELL_TYPES}")
        if tess not in TESSELLATIONS:
            raise DesignError(f"tessellation {tess} in topology[{i}] is not one of 1, 2")
        pairs.append((cell, tess))
    return tuple(pairs)  # type: ignore[return-value]


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise DesignError(f"{what} must be an integer, got {_short(value)}")
    return int(value)


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise DesignError(f"{what} must be a number, got {_short(value)}")
    return float(value)


def _check_density(value: Any) -> float:
    rho = _as_float(value, "relative_density")
    lo, hi = RELATIVE_DENSITY_RANGE
    if not lo <= rho <= hi:
        raise DesignError(f"relative_density = {rho} is outside [{lo:g}, {hi:g}]")
    return rho


def _check_stretch(name: str, value: Any) -> np.ndarray:
    array = _float_array(value, name, (3,))
    lo, hi = STRETCH_RANGE
    for i, s in enumerate(array):
        if not lo <= s <= hi:
            raise DesignError(f"stretch {name}[{i}] = {float(s)} is outside [{lo:g}, {hi:g}]")
    return _readonly(array)


def _check_rotation(name: str, value: Any) -> np.ndarray:
    R = _float_array(value, name, (3, 3))
    if not np.all(np.isfinite(R)):
        raise DesignError(f"{name} is not a rotation matrix: it has non-finite entries")
    deviation = float(np.abs(R @ R.T - np.eye(3)).max())
    if deviation > ROTATION_TOL:
        raise DesignError(
            f"{name} is not a rotation matrix: R R^T - I has max entry {deviation:.3g}"
        )
    if not bool(is_rotation(R, ROTATION_TOL)):
        raise DesignError(
            f"{name} is not a rotation matrix: det R = {np.linalg.det(R):.3g} (expected +1)"
        )
    return _readonly(R)


def _float_array(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DesignError(f"{name} must be numbers of shape {shape}, got {_short(value)}") from None
    if array.shape != shape:
        raise DesignError(f"{name} must have shape {shape}, got {array.shape}")
    return array


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array


# --------------------------------------------------------------------------------------------
# Deformation gradients
# --------------------------------------------------------------------------------------------


def deformation_gradient(design: TrussDesign) -> np.ndarray:
    """Full affine map ``F = R2 V R1 U`` (3, 3) of main Eq. 1; lattice vectors are its columns.

    Physical node positions are ``x = F X`` for reference positions ``X`` in the unit cube;
    the transformed cell volume is ``det F`` (units of the reference cell edge cubed).
    """
    return design.R2 @ np.diag(design.V) @ design.R1 @ np.diag(design.U)


def stage1_gradient(design: TrussDesign) -> np.ndarray:
    """``F1 = U`` (3, 3): the lattice seen by the first forward network.

    The first stage depends on the topology, ``rho`` and ``U`` only; its (orthotropic) stiffness
    is then rotated by ``R1`` with the Bond matrix before entering the second stage.
    """
    return np.diag(design.U)


def stage2_gradient(design: TrussDesign) -> np.ndarray:
    """``F2 = V R1 U`` (3, 3): every parameter except the final rotation ``R2``.

    The second forward network predicts the stiffness of this lattice; the full stiffness is
    then exactly ``Bond(R2) C(F2) Bond(R2)^T`` (truss.md section 3).
    """
    return np.diag(design.V) @ design.R1 @ np.diag(design.U)


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def design_to_dict(design: TrussDesign) -> dict[str, Any]:
    """JSON-ready dict of a design; rotations are written as 3x3 matrices (exact round trip)."""
    return {
        "family": FAMILY,
        "topology": [{"cell": c, "tessellation": t} for c, t in design.topology],
        "relative_density": design.relative_density,
        "U": design.U.tolist(),
        "V": design.V.tolist(),
        "R1": design.R1.tolist(),
        "R2": design.R2.tolist(),
    }


def design_from_dict(data: Mapping[str, Any]) -> TrussDesign:
    """Parse and validate a design dict (the JSON format of this module).

    Raises:
        DesignError: missing, unknown or mistyped key, wrong family, or a value out of range;
            the message names the key or parameter.
    """
    if not isinstance(data, Mapping):
        raise DesignError(f"a design must be a JSON object, got {type(data).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise DesignError(
            f"missing key '{missing[0]}' in design (required: {', '.join(_REQUIRED_KEYS)})"
        )
    unknown = [k for k in data if k not in _REQUIRED_KEYS + _OPTIONAL_KEYS]
    if unknown:
        raise DesignError(
            f"unknown key '{unknown[0]}' in design (allowed: "
            f"{', '.join(_REQUIRED_KEYS + _OPTIONAL_KEYS)})"
        )
    if data["family"] != FAMILY:
        raise DesignError(f"family {data['family']!r} is not {FAMILY!r}")
    return TrussDesign(
        topology=_topology_from_json(data["topology"]),
        relative_density=data["relative_density"],
        U=_vector_from_json(data["U"], "U"),
        V=_vector_from_json(data["V"], "V"),
        R1=rotation_from_json(data["R1"], "R1"),
        R2=rotation_from_json(data["R2"], "R2"),
    )


def _topology_from_json(value: Any) -> list[tuple[Any, Any]]:
    if not isinstance(value, list) or len(value) != 3:
        raise DesignError(
            'topology must be a list of 3 {"cell": S, "tessellation": t} objects, '
            f"got {_short(value)}"
        )
    pairs = []
    for i, entry in enumerate(value):
        if isinstance(entry, Mapping):
            keys = set(entry)
            if keys != {"cell", "tessellation"}:
                raise DesignError(
                    f"topology[{i}] must have exactly the keys 'cell' and 'tessellation', "
                    f"got {sorted(keys)}"
                )
            pairs.append((entry["cell"], entry["tessellation"]))
        elif isinstance(entry, list) and len(entry) == 2:
            pairs.append((entry[0], entry[1]))
        else:
            raise DesignError(
                f'topology[{i}] must be {{"cell": S, "tessellation": t}}, got {_short(entry)}'
            )
    return pairs


def _vector_from_json(value: Any, name: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 3:
        raise DesignError(f"{name} must be a list of 3 numbers, got {_short(value)}")
    return [_as_float(v, f"{name}[{i}]") for i, v in enumerate(value)]


def rotation_from_json(value: Any, name: str = "R") -> np.ndarray:
    """A rotation from its JSON form: a 3x3 matrix (list of rows) or an angle-axis object.

    The object is ``{"angle": radians, "axis": [3]}`` or ``{"angle_deg": degrees, "axis": [3]}``
    (right-handed rotation about the normalized axis). Returns a (3, 3) float64 matrix; whether
    it is a proper rotation is checked by :class:`TrussDesign`.
    """
    if isinstance(value, Mapping):
        return _rotation_from_angle_axis_json(value, name)
    if (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(row, list) and len(row) == 3 for row in value)
    ):
        return np.array(
            [
                [_as_float(v, f"{name}[{i}][{j}]") for j, v in enumerate(row)]
                for i, row in enumerate(value)
            ]
        )
    raise DesignError(
        f'{name} must be a 3x3 matrix or {{"angle": a, "axis": [x, y, z]}}, got {_short(value)}'
    )


def _rotation_from_angle_axis_json(value: Mapping[str, Any], name: str) -> np.ndarray:
    keys = set(value)
    angle_keys = keys & {"angle", "angle_deg"}
    if len(angle_keys) != 1 or keys - {"angle", "angle_deg", "axis"} or "axis" not in keys:
        raise DesignError(
            f"{name} must have the keys 'axis' and one of 'angle' (radians) or 'angle_deg', "
            f"got {sorted(keys)}"
        )
    (angle_key,) = angle_keys
    angle = _as_float(value[angle_key], f"{name}.{angle_key}")
    if angle_key == "angle_deg":
        angle = math.radians(angle)
    axis = np.array(_vector_from_json(value["axis"], f"{name}.axis"))
    norm = float(np.linalg.norm(axis))
    if not np.isfinite(norm) or norm == 0.0 or not np.isfinite(angle):
        raise DesignError(f"{name}.axis must be a finite nonzero vector and the angle finite")
    return np.asarray(rotation_from_angle_axis(np.float64(angle), axis / norm), dtype=np.float64)


def save_design(design: TrussDesign, path: str | Path) -> None:
    """Write a design as JSON (rotations as matrices, floats written exactly)."""
    Path(path).write_text(json.dumps(design_to_dict(design), indent=2) + "\n")


def load_design(path: str | Path) -> TrussDesign:
    """Read and validate a design JSON file.

    Raises:
        DesignError: invalid content (the message names the key or parameter).
        OSError / json.JSONDecodeError: unreadable file or malformed JSON.
    """
    return design_from_dict(json.loads(Path(path).read_text()))


# --------------------------------------------------------------------------------------------
# Sampling (the data-set law of truss.md section 3)
# --------------------------------------------------------------------------------------------


def sample_design_arrays(
    n: int, rng: np.random.Generator | int | None = None
) -> dict[str, np.ndarray]:
    """Draw ``n`` designs uniformly over the design space, as arrays.

    Cells uniform in 1..7, tessellations uniform in {1, 2}, ``rho`` uniform in [0.002, 0.1],
    every stretch uniform in [0.5, 2], rotations as angle ``U(-pi, pi)`` about a uniform axis
    (:func:`metainv.tensors.sample_angle_axis`). ``rng`` is a Generator or a seed.

    Returns a dict with ``cells`` (n, 3) int64, ``tessellations`` (n, 3) int64,
    ``relative_density`` (n,), ``U`` (n, 3), ``V`` (n, 3), ``R1_angle`` (n,) radians,
    ``R1_axis`` (n, 3) unit, ``R2_angle``, ``R2_axis``, ``R1`` (n, 3, 3), ``R2`` (n, 3, 3).
    """
    if n < 0:
        raise DesignError(f"number of designs must be >= 0, got {n}")
    rng = np.random.default_rng(rng)
    cells = rng.integers(1, N_CELL_TYPES + 1, size=(n, 3))
    tessellations = rng.integers(1, 3, size=(n, 3))
    relative_density = rng.uniform(*RELATIVE_DENSITY_RANGE, size=n)
    U = rng.uniform(*STRETCH_RANGE, size=(n, 3))
    V = rng.uniform(*STRETCH_RANGE, size=(n, 3))
    R1_angle, R1_axis = sample_angle_axis(n, rng)
    R2_angle, R2_axis = sample_angle_axis(n, rng)
    return {
        "cells": cells.astype(np.int64),
        "tessellations": tessellations.astype(np.int64),
        "relative_density": relative_density,
        "U": U,
        "V": V,
        "R1_angle": R1_angle,
        "R1_axis": R1_axis,
        "R2_angle": R2_angle,
        "R2_axis": R2_axis,
        "R1": np.asarray(rotation_from_angle_axis(R1_angle, R1_axis), dtype=np.float64),
        "R2": np.asarray(rotation_from_angle_axis(R2_angle, R2_axis), dtype=np.float64),
    }


def designs_from_arrays(arrays: Mapping[str, np.ndarray]) -> list[TrussDesign]:
    """Designs from the array form of :func:`sample_design_arrays` (or :func:`design_arrays`).

    Uses ``R1``/``R2`` matrices when present, otherwise ``R*_angle`` and ``R*_axis``.
    """
    R = {}
    for name in ("R1", "R2"):
        if name in arrays:
            R[name] = np.asarray(arrays[name], dtype=np.float64)
        else:
            R[name] = np.asarray(
                rotation_from_angle_axis(
                    np.asarray(arrays[f"{name}_angle"], dtype=np.float64),
                    np.asarray(arrays[f"{name}_axis"], dtype=np.float64),
                ),
                dtype=np.float64,
            )
    cells = np.asarray(arrays["cells"])
    tessellations = np.asarray(arrays["tessellations"])
    return [
        TrussDesign(
            topology=tuple(zip(cells[i].tolist(), tessellations[i].tolist(), strict=True)),
            relative_density=float(arrays["relative_density"][i]),
            U=arrays["U"][i],
            V=arrays["V"][i],
            R1=R["R1"][i],
            R2=R["R2"][i],
        )
        for i in range(len(cells))
    ]


def design_arrays(designs: Sequence[TrussDesign]) -> dict[str, np.ndarray]:
    """Stack designs into arrays: ``cells``, ``tessellations`` (n, 3) int64,
    ``relative_density`` (n,), ``U``, ``V`` (n, 3), ``R1``, ``R2`` (n, 3, 3)."""
    topo = np.array([d.topology for d in designs], dtype=np.int64).reshape(len(designs), 3, 2)
    return {
        "cells": topo[:, :, 0].copy(),
        "tessellations": topo[:, :, 1].copy(),
        "relative_density": np.array([d.relative_density for d in designs], dtype=np.float64),
        "U": np.array([d.U for d in designs], dtype=np.float64).reshape(-1, 3),
        "V": np.array([d.V for d in designs], dtype=np.float64).reshape(-1, 3),
        "R1": np.array([d.R1 for d in designs], dtype=np.float64).reshape(-1, 3, 3),
        "R2": np.array([d.R2 for d in designs], dtype=np.float64).reshape(-1, 3, 3),
    }


def sample_designs(n: int, rng: np.random.Generator | int | None = None) -> list[TrussDesign]:
    """``n`` designs drawn as in :func:`sample_design_arrays` (same ``rng`` -> same designs)."""
    return designs_from_arrays(sample_design_arrays(n, rng))


def designs_table_columns(
    designs: Sequence[TrussDesign], nmse_forward: np.ndarray
) -> dict[str, np.ndarray]:
    """Columns of a ``designs.parquet`` of batch design: ``S1..3``, ``t1..3`` (topology),
    ``relative_density``, ``U1..3``, ``V1..3``, ``R1_ij``, ``R2_ij`` (rotation matrices, row
    major) and ``nmse_forward`` (n,), one row per design."""
    arrays = design_arrays(designs)
    return {
        **{f"S{k + 1}": arrays["cells"][:, k] for k in range(3)},
        **{f"t{k + 1}": arrays["tessellations"][:, k] for k in range(3)},
        "relative_density": arrays["relative_density"],
        **{f"U{k + 1}": arrays["U"][:, k] for k in range(3)},
        **{f"V{k + 1}": arrays["V"][:, k] for k in range(3)},
        **{f"R1_{i + 1}{j + 1}": arrays["R1"][:, i, j] for i in range(3) for j in range(3)},
        **{f"R2_{i + 1}{j + 1}": arrays["R2"][:, i, j] for i in range(3) for j in range(3)},
        "nmse_forward": np.asarray(nmse_forward, dtype=np.float64),
    }
