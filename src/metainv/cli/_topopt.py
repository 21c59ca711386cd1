"""``metainv topopt``: graded-lattice topology optimization and its files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metainv.cli._app import app
from metainv.cli._errors import handle_errors
from metainv.errors import MetainvError
from metainv.topopt import (
    PROBLEMS,
    SOLVERS,
    IterationRecord,
    Settings,
    TopOptResult,
    available_laws,
    get_law,
    make_problem,
    optimize,
)
from metainv.topopt.optimize import OPTIMIZERS
from metainv.topopt.output import (
    density_grid,
    plot_density_slices,
    plot_history,
    write_density_vtk,
    write_history_csv,
)
from metainv.topopt.parts import PartOptions, dehomogenize

PROBLEM_HELP = f"Problem: {', '.join(PROBLEMS)} (see metainv.topopt.problems)."
MATERIAL_HELP = "Lattice material law (registered: " + ", ".join(available_laws()) + ")."


@app.command("topopt")
@handle_errors
def topopt_command(
    out: Path = typer.Option(..., "--out", help="Output directory (created if missing)."),
    problem: str = typer.Option("cantilever", "--problem", help=PROBLEM_HELP),
    nel: tuple[int, int, int] = typer.Option(
        (60, 20, 4), "--nel", help="Elements along x (length), y (vertical), z (thickness)."
    ),
    material: str = typer.Option("gyroid", "--material", help=MATERIAL_HELP),
    penalty: float = typer.Option(1.0, "--penalty", help="SIMP penalty p >= 0 on top of the law."),
    volfrac: float = typer.Option(0.3, "--volfrac", help="Volume fraction bound in (0, 1)."),
    max_iter: int = typer.Option(200, "--max-iter", help="Most iterations."),
    optimizer: str = typer.Option(
        "oc",
        "--optimizer",
        help=f"One of: {', '.join(OPTIMIZERS)} (oc: volume = bound; mma: volume <= bound).",
    ),
    solver: str = typer.Option("mgcg", "--solver", help=f"One of: {', '.join(SOLVERS)}."),
    filter_radius: float = typer.Option(1.5, "--rmin", help="Density filter radius (elements)."),
    tolerance: float = typer.Option(0.01, "--tol", help="Stop when the design changes less."),
    density_range: tuple[float, float] | None = typer.Option(
        None,
        "--density-range",
        help="Bounds RHO_MIN RHO_MAX on the element densities (default: the law's own range;"
        " give two laws the same bounds to compare them).",
    ),
    period: float = typer.Option(
        2.0,
        "--period",
        help="De-homogenized lattice period in elements (TPMS period, truss cell edge,"
        " spinodoid wavelength).",
    ),
    voxels: int = typer.Option(
        6, "--voxels-per-element", help="Marching-cubes samples per element edge (STL)."
    ),
    load_sensitivity: str = typer.Option(
        "exact",
        "--load-sensitivity",
        help="exact (with the 2 U^T dF/drho term of design-dependent inherent-strain loads) or"
        " frozen (SI Eq. 7 as published: that term dropped).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Minimize compliance of a graded lattice; write density (VTK, PNG), history (CSV, PNG),
    the de-homogenized part (STL: gyroid, truss, spinodoid laws) and summary.json into --out."""
    settings = Settings(
        volume_fraction=volfrac,
        penalty=penalty,
        filter_radius=filter_radius,
        max_iter=max_iter,
        tolerance=tolerance,
        optimizer=optimizer,
        solver=solver,
        density_range=density_range,
        load_sensitivity=load_sensitivity,
    )
    law = get_law(material)
    settings.bounds(law)  # clear errors before any work
    part_options = PartOptions(period=period, voxels_per_element=voxels)
    case = make_problem(problem, nel)
    out.mkdir(parents=True, exist_ok=True)
    result = _run_with_progress(case, law, settings)
    summary = result.summary()
    summary["files"], part_error = _write_files(result, law, out, part_options)
    if part_error is not None:
        summary["part_error"] = part_error
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)


def _run_with_progress(case, law, settings: Settings) -> TopOptResult:
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{case.name} / {law.name}", total=settings.max_iter)

        def report(record: IterationRecord) -> None:
            progress.update(
                task,
                completed=record.iteration,
                description=(
                    f"{case.name} / {law.name}: C={record.compliance:.4g}"
                    f" grey={record.grey_level:.3f} change={record.change:.3f}"
                ),
            )

        return optimize(case, law, settings, callback=report)


def _write_files(
    result: TopOptResult, law, out: Path, part_options: PartOptions
) -> tuple[dict, str | None]:
    """Write the result files; returns ``({name: path}, error of the part or None)``.

    A part that cannot be built (e.g. no watertight truss mesh) does not lose the optimization:
    the other files are written and the error is reported."""
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
    part_error = None
    try:
        mesh = dehomogenize(
            density_grid(grid, result.density),
            getattr(law, "metadata", {}) or {},
            part_options,
        )
    except MetainvError as error:
        part_error = f"part.stl not written: {error}"
        Console(stderr=True).print(f"[yellow]warning:[/yellow] {part_error}")
    else:
        if mesh is not None:
            path = out / "part.stl"
            mesh.export(path)
            files["part_stl"] = path
    return {name: str(path) for name, path in files.items()}, part_error


def _print_summary(summary: dict) -> None:
    table = Table(
        title=f"topopt {summary['problem']} / {summary['material']}", title_justify="left"
    )
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in ("compliance", "volume_fraction", "grey_level", "iterations", "converged"):
        value = summary[key]
        table.add_row(
            key.replace("_", " "), f"{value:.6g}" if isinstance(value, float) else str(value)
        )
    low, high = summary["density_range"]
    table.add_row("density range", f"{low:g} .. {high:g}")
    table.add_row("mean solve time", f"{summary['mean_solve_seconds']:.3f} s")
    table.add_row("total time", f"{summary['total_seconds']:.1f} s")
    for name, path in summary["files"].items():
        table.add_row(name.replace("_", " "), path)
    Console().print(table)
