"""Files of a graded lattice: node/strut JSON, STL, VTU (ParaView), PNG renderings, summary.

Figures use matplotlib's Agg canvas directly (no pyplot state), as :mod:`metainv.viz` does.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from metainv.errors import MetainvError
from metainv.files import temporary_path, write_bytes_atomic, write_text_atomic
from metainv.grading._gates import QualityGate, enforce_gates, quality_gates
from metainv.grading._lattice import GradedLattice, graded_lattice
from metainv.grading._local import LocalCheck, local_check
from metainv.grading._problem import GradingProblem
from metainv.mesh import count_bodies, is_watertight_stl, strut_mesh
from metainv.mesh import write_stl as write_mesh
from metainv.truss.design import design_to_dict

__all__ = [
    "OUTPUT_FILES",
    "check_summary",
    "gates_summary",
    "graded_mesh",
    "lattice_summary",
    "lattice_to_dict",
    "plot_lattice",
    "plot_local_check",
    "write_graded_outputs",
    "write_json",
    "write_stl",
    "write_vtu",
]

logger = logging.getLogger(__name__)

#: Output kind -> file name inside the output folder.
OUTPUT_FILES = {
    "json": "graded_lattice.json",
    "stl": "graded_lattice.stl",
    "vtu": "graded_lattice.vtu",
    "png": "graded_lattice.png",
    "check_png": "local_check.png",
    "summary": "summary.json",
}

COLORMAP = "viridis"


def lattice_to_dict(lattice: GradedLattice, problem: GradingProblem) -> dict[str, Any]:
    """JSON-ready dict: nodes, struts (0-indexed), diameters, RBF weights, boundary flags, and the
    grading input (control points, designs, zeta, body bounds); lengths in cell units."""
    return {
        "nodes": lattice.nodes.tolist(),
        "struts": lattice.struts.tolist(),
        "diameters": lattice.diameters.tolist(),
        "weights": lattice.weights.tolist(),
        "boundary": lattice.boundary.astype(int).tolist(),
        "cells": len(lattice.centres),
        "cell_centres": lattice.centres.positions.tolist(),
        "control_points": problem.points.tolist(),
        "control_names": list(problem.names),
        "designs": [design_to_dict(d) for d in problem.designs],
        "zeta": problem.zeta,
        "body": {
            "name": problem.body.name,
            "lower": problem.body.lower.tolist(),
            "upper": problem.body.upper.tolist(),
        },
    }


def write_json(lattice: GradedLattice, problem: GradingProblem, path: str | Path) -> Path:
    """Write :func:`lattice_to_dict` as JSON."""
    return write_text_atomic(Path(path), json.dumps(lattice_to_dict(lattice, problem)) + "\n")


def write_vtu(lattice: GradedLattice, path: str | Path) -> Path:
    """Write the lattice as VTK line cells (meshio): cell data ``diameter`` and ``weight_<i>``,
    point data ``degree`` and ``boundary``; open in ParaView (e.g. Tube filter by diameter)."""
    import meshio

    path = Path(path)
    cell_data = {"diameter": [lattice.diameters]}
    for i in range(lattice.weights.shape[1]):
        cell_data[f"weight_{i + 1}"] = [lattice.weights[:, i]]
    mesh = meshio.Mesh(
        points=lattice.nodes,
        cells=[("line", lattice.struts)],
        point_data={"degree": lattice.degrees, "boundary": lattice.boundary.astype(np.int64)},
        cell_data=cell_data,
    )
    temporary = temporary_path(path)  # atomic: a reader never sees a half-written file
    try:
        meshio.write(temporary, mesh, file_format="vtu")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise MetainvError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def graded_mesh(lattice: GradedLattice, segments: int = 8, seed: int = 0) -> trimesh.Trimesh:
    """Watertight ``trimesh.Trimesh`` of a graded lattice (cell units): every strut a
    ``segments``-gon cylinder of its own diameter, joints spheres, by the shared strut mesher
    :func:`metainv.mesh.strut_mesh` (stays watertight as float32 STL; ``seed`` fixes its jitter).

    Raises:
        MetainvError: if the lattice has no struts or no mesh stayed watertight as STL.
    """
    if lattice.n_struts == 0:
        raise MetainvError("the graded lattice has no struts to mesh")
    return strut_mesh(lattice.nodes, lattice.struts, lattice.diameters, segments, seed)


def write_stl(
    lattice: GradedLattice, path: str | Path, segments: int = 8, seed: int = 0
) -> dict[str, Any]:
    """Write a watertight binary STL (:func:`graded_mesh`); returns its triangle count, volume,
    whether it is watertight as read back, its number of connected bodies and its bounds."""
    mesh = graded_mesh(lattice, segments=segments, seed=seed)
    write_mesh(mesh, path)
    return {
        "triangles": len(mesh.faces),
        "volume": float(mesh.volume),
        "watertight": is_watertight_stl(mesh),
        "bodies": count_bodies(mesh),
        "bounds": mesh.bounds.tolist(),
    }


def _save(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=150, bbox_inches="tight", format="png")
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as error:
        raise MetainvError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def plot_lattice(lattice: GradedLattice, path: str | Path, title: str | None = None) -> Path:
    """3-D rendering of the struts as lines coloured (and widened) by diameter."""
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    path = Path(path)
    figure = Figure(figsize=(10.0, 6.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(projection="3d")
    norm = Normalize(vmin=float(lattice.diameters.min()), vmax=float(lattice.diameters.max()))
    segments = lattice.nodes[lattice.struts]
    widths = 0.15 + 1.2 * lattice.diameters / lattice.diameters.max()
    colours = colormaps[COLORMAP](norm(lattice.diameters))
    axes.add_collection3d(Line3DCollection(segments, colors=colours, linewidths=widths))
    lower, upper = lattice.nodes.min(0), lattice.nodes.max(0)
    for setter, lo, hi in zip(
        (axes.set_xlim, axes.set_ylim, axes.set_zlim), lower, upper, strict=True
    ):
        setter(lo, hi)
    axes.set_box_aspect(np.maximum(upper - lower, 1e-9))
    axes.set_xlabel("x1")
    axes.set_ylabel("x2")
    axes.set_zlabel("x3")
    axes.view_init(elev=22, azim=-62)
    colorbar = figure.colorbar(
        ScalarMappable(norm=norm, cmap=colormaps[COLORMAP]), ax=axes, shrink=0.6, pad=0.08
    )
    colorbar.set_label("strut diameter (cell units)")
    axes.set_title(title or f"graded lattice: {lattice.n_nodes} nodes, {lattice.n_struts} struts")
    return _save(figure, path)


def plot_local_check(check: LocalCheck, path: str | Path) -> Path:
    """NMSE of the sampled cells against the interpolated target along the grading direction,
    and the diagonal stiffness components of both."""
    path = Path(path)
    figure = Figure(figsize=(11.0, 4.5))
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    s = check.coordinate
    left.semilogy(s, np.maximum(check.nmse, 1e-16), "o-", color="tab:red")
    left.set_xlabel("position along the grading direction (cell units)")
    left.set_ylabel("NMSE (local cell vs interpolated target)")
    left.grid(True, which="both", alpha=0.3)
    for k, label in enumerate(("C11", "C22", "C33", "C44", "C55", "C66")):
        colour = f"C{k}"
        right.plot(s, check.C_target[:, k, k], "-", color=colour, label=f"{label} target")
        right.plot(s, check.C_local[:, k, k], "o", color=colour, markersize=3)
    right.set_xlabel("position along the grading direction (cell units)")
    right.set_ylabel("stiffness / E_b (lines: target, dots: local FE)")
    right.legend(fontsize=7, ncol=2)
    right.grid(True, alpha=0.3)
    figure.suptitle(f"local check, max NMSE {check.nmse.max():.3g}")
    figure.tight_layout()
    return _save(figure, path)


def lattice_summary(lattice: GradedLattice, problem: GradingProblem) -> dict[str, Any]:
    """Counts and diagnostics of a graded lattice (JSON-ready)."""
    return {
        "family": "truss",
        "cells": len(lattice.centres),
        "nodes": lattice.n_nodes,
        "struts": lattice.n_struts,
        "diameter_min": float(lattice.diameters.min()),
        "diameter_max": float(lattice.diameters.max()),
        "max_merge_distance": lattice.max_merge_distance,
        "interior_dangling_nodes": int(((lattice.degrees < 2) & ~lattice.boundary).sum()),
        "node_bounds": [lattice.nodes.min(0).tolist(), lattice.nodes.max(0).tolist()],
        "clipped_struts": lattice.clipped_struts,
        "islands_removed": lattice.islands_removed,
        "removed_volume": lattice.removed_volume,
        "basis_changes": problem.basis_changes.astype(int).tolist(),
    }


def check_summary(check: LocalCheck) -> dict[str, Any]:
    """The local check along the grading direction (JSON-ready)."""
    return {
        "coordinate": check.coordinate.tolist(),
        "direction": check.direction.tolist(),
        "nmse": check.nmse.tolist(),
        "max_nmse": float(check.nmse.max()),
    }


def gates_summary(gates: tuple[QualityGate, ...]) -> dict[str, Any]:
    """The quality gates (JSON-ready): ``{name: {value, limit, passed}}``."""
    return {gate.name: gate.to_dict() for gate in gates}


def write_graded_outputs(
    problem: GradingProblem,
    out: str | Path,
    elements_per_cell: int = 4,
    min_relative_diameter: float = 0.05,
    segments: int = 8,
    stl: bool = True,
    check: bool = True,
    check_samples: int = 21,
    on_step: Callable[[str], None] | None = None,
    ignore_gates: bool = False,
    clip: bool = True,
) -> dict[str, Any]:
    """Build the graded lattice of ``problem``, check its quality gates and write every output
    file into ``out``.

    The lattice is clipped to the body (``clip``; :func:`~metainv.grading.graded_lattice`) and
    the local check run (``check``) before anything is written; a lattice past a quality gate
    (:mod:`metainv.grading._gates`) raises :class:`~metainv.grading.GradingQualityError` and
    writes nothing, unless ``ignore_gates`` (the summary then records the failed gates).

    Files (:data:`OUTPUT_FILES`): ``graded_lattice.json`` (:func:`lattice_to_dict`),
    ``graded_lattice.stl`` (watertight, one body; skipped with ``stl=False``),
    ``graded_lattice.vtu``, ``graded_lattice.png`` (coloured by strut diameter),
    ``local_check.png`` (skipped with ``check=False``) and ``summary.json``. Returns the summary
    dict (also written): the keys of :func:`lattice_summary`, ``gates``
    (:func:`gates_summary`), ``stl`` (triangles, volume, watertight, bodies, bounds),
    ``local_check`` (:func:`check_summary`), ``files`` and ``timings`` (seconds).
    """
    step = on_step or (lambda message: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    lattice = graded_lattice(problem, elements_per_cell, min_relative_diameter, step, clip)
    timings = {"lattice_s": time.perf_counter() - tic}
    result = None
    if not ignore_gates:  # the geometric gates first: no FE spent on a lattice they refuse
        enforce_gates(quality_gates(problem, lattice))
    if check:
        step(f"local check: homogenizing {check_samples} sampled cells")
        tic = time.perf_counter()
        result = local_check(problem, check_samples, min_relative_diameter)
        timings["check_s"] = time.perf_counter() - tic
    gates = quality_gates(problem, lattice, result)
    if not ignore_gates:
        enforce_gates(gates)
    summary = lattice_summary(lattice, problem)
    summary["gates"] = gates_summary(gates)
    write_json(lattice, problem, out / OUTPUT_FILES["json"])
    write_vtu(lattice, out / OUTPUT_FILES["vtu"])
    step("rendering")
    plot_lattice(lattice, out / OUTPUT_FILES["png"])
    written = ["json", "vtu", "png"]
    if stl:
        step(f"meshing {lattice.n_struts} struts (manifold3d union)")
        tic = time.perf_counter()
        summary["stl"] = write_stl(lattice, out / OUTPUT_FILES["stl"], segments)
        timings["stl_s"] = time.perf_counter() - tic
        written.append("stl")
    if result is not None:
        plot_local_check(result, out / OUTPUT_FILES["check_png"])
        summary["local_check"] = check_summary(result)
        written.append("check_png")
    summary["files"] = {key: OUTPUT_FILES[key] for key in [*written, "summary"]}
    summary["timings"] = timings
    write_text_atomic(out / OUTPUT_FILES["summary"], json.dumps(summary, indent=2) + "\n")
    return summary
