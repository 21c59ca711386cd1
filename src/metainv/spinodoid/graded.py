r"""Functionally graded spinodoids: blended level-shifted random fields (Kumar et al. 2020, Fig. 3).

Each control point ``c_i`` carries a spinodoid design with its own field ``phi_i`` (Eq. 1, its
cones, rotation and seed) and level function ``g_i`` (``phi_i - phi_0,i`` for solids, Eq. 3;
``|phi_i| - t_i`` for shells). The graded solid is ``{x : g(x) <= 0}`` with

.. math:: g(x) = \sum_i w_i(x)\, g_i(x), \qquad
          w_i(x) = \frac{\exp(-\zeta |x - c_i|^2)}{\sum_k \exp(-\zeta |x - c_k|^2)},

normalized Gaussian weights (``zeta`` in 1/RVE edge^2; the Gaussian's width is
``1 / sqrt(2 zeta)``; spec ``spinodoid.md``, graded spinodoids; the
paper's linear blend ``(1 - lambda) phi_1 + lambda phi_2`` is the two-point case with a smooth
``lambda``). Shifting each field by its own level before blending makes the local density follow
each control's ``rho``; the iso-surface is 0 everywhere, so the topology changes smoothly with
no seam. Lengths are in units of the RVE edge (``beta = 10 pi``); the box
``[0, L1] x [0, L2] x [0, L3]`` is meshed as in :mod:`metainv.spinodoid.export`: the shared
level-set mesher (:func:`metainv.mesh.levelset_mesh`) of ``max(g / beta, b(x))`` with the box
function ``b`` (:func:`metainv.mesh.box_function`) and one node of padding, so the mesh is
closed; only the largest body is kept.
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

from metainv.errors import MetainvError
from metainv.mesh import box_function, count_bodies, levelset_mesh, write_stl
from metainv.spinodoid.design import SpinodoidDesign, design_from_dict, design_to_dict
from metainv.spinodoid.field import (
    BETA,
    N_WAVES,
    field_on_grid,
    level_function,
    sample_waves,
    solid_threshold,
)

logger = logging.getLogger(__name__)

#: Largest box edge accepted, in RVE edges.
MAX_BOX_EDGE = 10.0
#: Default samples per RVE edge of graded meshes.
GRADED_RESOLUTION = 32


@dataclass(frozen=True)
class GradedControl:
    """A control point (3,) in RVE units and the design that holds there."""

    position: np.ndarray
    design: SpinodoidDesign

    def __post_init__(self) -> None:
        position = np.array(self.position, dtype=float)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise MetainvError(f"a control position must be 3 finite numbers, got {self.position}")
        position.flags.writeable = False
        object.__setattr__(self, "position", position)


def controls_from_list(items: Sequence[Mapping[str, Any]]) -> list[GradedControl]:
    """Controls from JSON-like ``[{"position": [x, y, z], "design": {spinodoid design}}]``."""
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)) or not items:
        raise MetainvError("controls must be a non-empty list of {position, design} objects")
    out = []
    for k, item in enumerate(items):
        if not isinstance(item, Mapping) or "position" not in item or "design" not in item:
            raise MetainvError(f"control {k} must be an object with 'position' and 'design'")
        out.append(GradedControl(item["position"], design_from_dict(item["design"])))
    return out


def blend_weights(points: np.ndarray, centers: np.ndarray, zeta: float) -> np.ndarray:
    """Normalized Gaussian weights (..., K) of ``points`` (..., 3) for ``centers`` (K, 3)."""
    logits = -zeta * np.sum((points[..., None, :] - centers) ** 2, axis=-1)
    logits -= logits.max(axis=-1, keepdims=True)  # stable softmax
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def graded_level(
    controls: Sequence[GradedControl],
    box: Sequence[float],
    zeta: float,
    resolution: int = GRADED_RESOLUTION,
    n_waves: int = N_WAVES,
    beta: float = BETA,
) -> tuple[np.ndarray, list[np.ndarray], float]:
    """The blended level function ``g`` on the padded node grid of ``box`` (module docstring).

    Returns ``(g (n1 + 3, n2 + 3, n3 + 3), axes, h)`` with ``n_k = ceil(L_k * resolution)``;
    node ``[i, j, k]`` sits at ``((i, j, k) - 1) h``.
    """
    lengths = _box(box)
    if not zeta > 0:
        raise MetainvError(f"the blending parameter zeta must be positive, got {zeta}")
    if resolution < 4:
        raise MetainvError(f"resolution must be at least 4, got {resolution}")
    if not controls:
        raise MetainvError("at least one control point is needed")
    h = 1.0 / resolution
    axes = [(np.arange(math.ceil(length * resolution) + 3) - 1) * h for length in lengths]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    centers = np.stack([control.position for control in controls])
    weights = blend_weights(grid, centers, zeta)
    g = np.zeros(grid.shape[:-1])
    for k, control in enumerate(controls):
        directions, phases = sample_waves(control.design, n_waves)
        phi = field_on_grid(directions, phases, axes, beta)
        level = solid_threshold(control.design, "ensemble")  # Eq. 3 level of this control
        g += weights[..., k] * level_function(control.design, phi, level)
    return g, axes, h


def graded_mesh(
    controls: Sequence[GradedControl],
    box: Sequence[float],
    zeta: float,
    resolution: int = GRADED_RESOLUTION,
    size: float = 1.0,
    n_waves: int = N_WAVES,
    beta: float = BETA,
) -> Any:
    """Watertight :class:`trimesh.Trimesh` of the graded solid clipped to ``box`` (the largest
    body, islands removed and counted in ``mesh.metadata``; one RVE edge is ``size`` long), by
    the shared level-set mesher :func:`metainv.mesh.levelset_mesh`."""
    g, axes, h = graded_level(controls, box, zeta, resolution, n_waves, beta)
    f = np.maximum(g / beta, box_function(axes, _box(box)))
    if not (f < 0).any():
        raise MetainvError("the graded solid is empty")
    return levelset_mesh(f, h * size, (-h * size,) * 3).mesh


def local_densities(
    controls: Sequence[GradedControl],
    box: Sequence[float],
    zeta: float,
    resolution: int = GRADED_RESOLUTION,
) -> list[float]:
    """Solid fraction of the blended field within the Gaussian width ``1 / sqrt(2 zeta)`` of
    each control (inside the box)."""
    width = 1.0 / np.sqrt(2.0 * zeta)
    g, axes, _ = graded_level(controls, box, zeta, resolution)
    lengths = _box(box)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    inside = np.all((grid >= 0) & (grid <= np.asarray(lengths)), axis=-1)
    out = []
    for control in controls:
        near = inside & (np.linalg.norm(grid - control.position, axis=-1) <= width)
        out.append(float(np.mean(g[near] <= 0)) if near.any() else float("nan"))
    return out


def grade_spinodoid(
    controls: Sequence[GradedControl] | Sequence[Mapping[str, Any]],
    box: Sequence[float],
    zeta: float,
    out_dir: str | Path,
    resolution: int = GRADED_RESOLUTION,
    size: float = 1.0,
    name: str = "graded",
    preview: bool = True,
    stl: bool = True,
) -> dict[str, Any]:
    """Graded spinodoid of ``controls`` in ``box`` (RVE units), written to ``out_dir``.

    ``zeta``: Gaussian blending parameter in 1/RVE edge^2 (module docstring). Writes
    ``NAME.stl`` (watertight; one RVE edge is ``size`` long; unless ``stl=False``),
    ``NAME.png`` (preview, unless ``preview=False``) and ``NAME.json`` (this summary). Returns
    the summary: ``stl`` (file, watertight, triangles, volume), overall and local densities
    (within the Gaussian width of each control), the controls and ``files``.
    """
    if controls and isinstance(controls[0], Mapping):
        controls = controls_from_list(controls)  # type: ignore[arg-type]
    controls = list(controls)  # type: ignore[arg-type]
    if not size > 0:
        raise MetainvError(f"size must be positive, got {size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mesh = graded_mesh(controls, box, zeta, resolution, size)
    if not mesh.is_watertight:
        raise MetainvError("the graded mesh is not watertight (try another resolution)")
    lengths = _box(box)
    files: dict[str, str] = {}
    if stl:
        write_stl(mesh, out / f"{name}.stl")
        files["stl"] = f"{name}.stl"
    summary: dict[str, Any] = {
        "family": "spinodoid",
        "box": list(lengths),
        "zeta": float(zeta),
        "resolution": int(resolution),
        "size": float(size),
        "stl": {
            "file": files.get("stl"),
            "watertight": bool(mesh.is_watertight),
            "triangles": len(mesh.faces),
            "volume": float(mesh.volume),
            "bodies": count_bodies(mesh),
            "islands_removed": int(mesh.metadata.get("bodies", 1)) - count_bodies(mesh),
            "removed_volume_fraction": float(mesh.metadata.get("dropped_volume", 0.0)),
        },
        "relative_density": float(mesh.volume / (np.prod(lengths) * size**3)),
        "local_density": local_densities(controls, box, zeta, resolution),
        "controls": [
            {"position": c.position.tolist(), "design": design_to_dict(c.design)} for c in controls
        ],
        "files": files,
    }
    if preview:
        from metainv.spinodoid.export import render_png

        render_png(mesh, out / f"{name}.png", title=f"graded spinodoid, {len(controls)} controls")
        files["png"] = f"{name}.png"
    files["summary"] = f"{name}.json"
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    logger.info(
        "wrote %s: %d triangles, density %.3f", out, len(mesh.faces), summary["relative_density"]
    )
    return summary


def load_control_design(path: str | Path) -> SpinodoidDesign:
    """A control's design: a spinodoid design JSON, or the ``designs.json`` of
    ``metainv design --family spinodoid`` (its best candidate)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise MetainvError(f"cannot read the design file {path}: {error}") from None
    if isinstance(data, Mapping) and "candidates" in data:
        if not data["candidates"]:
            raise MetainvError(f"{path} has no candidate designs")
        data = data["candidates"][0]["design"]
    return design_from_dict(data)


def _box(box: Sequence[float]) -> tuple[float, float, float]:
    try:
        lengths = tuple(float(b) for b in box)
    except (TypeError, ValueError):
        raise MetainvError(f"box must be 3 numbers (RVE edges), got {box!r}") from None
    if len(lengths) != 3 or not all(0 < b <= MAX_BOX_EDGE for b in lengths):
        raise MetainvError(f"box must be 3 edges in (0, {MAX_BOX_EDGE:g}], got {box!r}")
    return lengths  # type: ignore[return-value]
