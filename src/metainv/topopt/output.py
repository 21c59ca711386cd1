"""Files of an optimization: density field (VTK, PNG slices), convergence history (CSV, PNG).

Figures use matplotlib's Agg canvas without pyplot state (as :mod:`metainv.viz`).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import meshio
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from metainv.errors import MetainvError
from metainv.fem import HexGrid
from metainv.files import prepare_output_folder, write_text_atomic
from metainv.mesh import count_bodies, is_watertight_stl, scaled_mesh, write_stl
from metainv.topopt.materials import get_law
from metainv.topopt.optimize import IterationRecord, Settings, TopOptResult, optimize
from metainv.topopt.parts import PartOptions, dehomogenize
from metainv.topopt.problems import make_problem

logger = logging.getLogger(__name__)

#: meshio's node order of a VTK hexahedron equals :data:`metainv.fem.VTK_NODES`.
VTK_CELL = "hexahedron"


def density_grid(grid: HexGrid, density: np.ndarray) -> np.ndarray:
    """Element array (nel,) -> (nx, ny, nz), index ``[i, j, k]`` = (x, y, z)."""
    return np.asarray(density).reshape(grid.nz, grid.ny, grid.nx).transpose(2, 1, 0)


def write_density_vtk(
    grid: HexGrid, density: np.ndarray, path: Path, extra: dict[str, np.ndarray] | None = None
) -> Path:
    """Unstructured VTK (``.vtu``) of the hexahedral mesh with cell data ``density`` (nel,)."""
    cell_data = {"density": [np.asarray(density, float)]}
    for name, values in (extra or {}).items():
        cell_data[name] = [np.asarray(values, float)]
    mesh = meshio.Mesh(grid.node_coordinates, [(VTK_CELL, grid.element_nodes)], cell_data=cell_data)
    path = Path(path)
    meshio.write(path, mesh)
    return path


def plot_density_slices(grid: HexGrid, density: np.ndarray, path: Path, title: str = "") -> Path:
    """PNG of x-y density slices at up to four z positions (front, quarter, middle, back)."""
    field = density_grid(grid, density)
    layers = sorted({0, grid.nz // 4, grid.nz // 2, grid.nz - 1})[:4]
    slice_height = min(3.0, 5.5 * grid.ny / grid.nx)
    figure = Figure(figsize=(7.0, 0.8 + len(layers) * (slice_height + 0.3)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(layers), 1, squeeze=False)[:, 0]
    image = None
    for ax, layer in zip(axes, layers, strict=True):
        image = ax.imshow(
            field[:, :, layer].T,
            origin="lower",
            cmap="gray_r",
            vmin=0.0,
            vmax=1.0,
            extent=(0, grid.nx, 0, grid.ny),
            interpolation="nearest",
        )
        ax.set_ylabel(f"z = {layer + 0.5:g}")
        ax.set_xticks([])
        ax.set_yticks([])
    if image is not None:
        figure.colorbar(image, ax=list(axes), label="relative density")
    if title:
        figure.suptitle(title)
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path


def write_history_csv(history: tuple[IterationRecord, ...], path: Path) -> Path:
    """CSV with one row per iteration (the fields of :class:`IterationRecord`)."""
    path = Path(path)
    names = [field.name for field in fields(IterationRecord)]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for record in history:
            writer.writerow(asdict(record))
    return path


def plot_history(history: tuple[IterationRecord, ...], path: Path, title: str = "") -> Path:
    """PNG of compliance (log scale), grey level and volume fraction against the iteration."""
    iterations = [record.iteration for record in history]
    figure = Figure(figsize=(6.0, 5.0))
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.semilogy(iterations, [record.compliance for record in history], color="tab:blue")
    top.set_ylabel("compliance")
    bottom.plot(iterations, [record.grey_level for record in history], label="grey level")
    bottom.plot(iterations, [record.volume_fraction for record in history], label="volume fraction")
    bottom.set_xlabel("iteration")
    bottom.set_ylim(0.0, 1.0)
    bottom.legend()
    if title:
        figure.suptitle(title)
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path


def write_result_files(
    result: TopOptResult, law: object, out: Path, part_options: PartOptions
) -> tuple[dict[str, str], str | None, dict | None]:
    """Write the files of an optimization into ``out``: ``density.vtu``, ``density.png``,
    ``history.csv``, ``history.png``, ``density.npy`` and the de-homogenized ``part.stl``.

    Returns ``({name: path}, error of the part or None, part report or None)``: a part that
    cannot be built (e.g. no watertight truss mesh) does not lose the optimization; the other
    files are written and the error is returned (and logged). The part report: ``bodies`` in
    the STL (1: islands removed, :func:`metainv.topopt.parts.dehomogenize`),
    ``islands_removed``, ``removed_volume_fraction``, ``watertight`` (as read back),
    ``solid_fraction`` (STL volume over the box) and ``mean_density`` of the optimized field."""
    grid = result.problem.grid
    title = f"{result.problem.name}, {result.law_name}, p={result.settings.penalty:g}"
    files = {
        "density_vtk": write_density_vtk(
            grid, result.density, out / "density.vtu", {"passive": result.problem.passive_solid}
        ),
        "density_png": plot_density_slices(grid, result.density, out / "density.png", title),
        "history_csv": write_history_csv(result.history, out / "history.csv"),
        "history_png": plot_history(result.history, out / "history.png", title),
    }
    np.save(out / "density.npy", density_grid(grid, result.density))
    files["density_npy"] = out / "density.npy"
    part_error, part = None, None
    try:
        mesh = dehomogenize(
            density_grid(grid, result.density), getattr(law, "metadata", {}) or {}, part_options
        )
    except MetainvError as error:
        part_error = f"part.stl not written: {error}"
        logger.warning(part_error)
    else:
        if mesh is not None:
            part = {
                "bodies": count_bodies(mesh),
                "islands_removed": int(mesh.metadata.get("bodies", 1)) - count_bodies(mesh),
                "removed_volume_fraction": float(mesh.metadata.get("dropped_volume", 0.0)),
                "solid_fraction": float(mesh.volume / (grid.nx * grid.ny * grid.nz)),
                "mean_density": float(np.mean(result.density)),
            }
            size = part_options.element_size_mm
            if size is not None:  # x_mm = size * x
                mesh = scaled_mesh(mesh, size)
                part |= {"length_unit": "mm", "element_size_mm": float(size)}
                part["bounds"] = mesh.bounds.tolist()
            part["watertight"] = is_watertight_stl(mesh)
            files["part_stl"] = write_stl(mesh, out / "part.stl")
            logger.info("part.stl: %s", part)
    return {name: str(path) for name, path in files.items()}, part_error, part


#: Files a run writes (glob patterns): removed by ``force``, other files are kept.
OUTPUT_FILES = ("density.*", "history.*", "part.stl", "summary.json")


def run_topology_optimization(
    out: Path,
    problem: str,
    nel: tuple[int, int, int],
    material: str,
    settings: Settings,
    part_options: PartOptions,
    callback: Callable[[IterationRecord], None] | None = None,
    force: bool = False,
) -> dict:
    """Build ``problem`` on ``nel`` elements, optimize with the law ``material``, write every
    file (:func:`write_result_files`) and ``summary.json`` into ``out``; returns the summary.
    A non-empty ``out`` is refused before any work unless ``force``, which removes only the
    files of :data:`OUTPUT_FILES` there."""
    law = get_law(material)
    settings.bounds(law)  # clear errors before any work
    case = make_problem(problem, nel)
    prepare_output_folder(out, own=OUTPUT_FILES, force=force)
    result = optimize(case, law, settings, callback=callback)
    summary = result.summary()
    summary["files"], part_error, part = write_result_files(result, law, out, part_options)
    if part_error is not None:
        summary["part_error"] = part_error
    if part is not None:
        summary["part"] = part
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
