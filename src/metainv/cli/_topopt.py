"""``metainv topopt``: graded-lattice topology optimization and its files."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metainv.cli._app import app
from metainv.cli._errors import handle_errors
from metainv.manufacturing import parse_length
from metainv.topopt import (
    PROBLEMS,
    SOLVERS,
    IterationRecord,
    Settings,
    available_laws,
)
from metainv.topopt.optimize import OPTIMIZERS
from metainv.topopt.output import run_topology_optimization
from metainv.topopt.parts import PartOptions

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
    element_size: str | None = typer.Option(
        None,
        "--element-size",
        help="Edge of one element, e.g. 2mm: part.stl in mm (default: element units).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    force: bool = typer.Option(
        False, "--force", help="Write into a non-empty --out, replacing metainv's result files."
    ),
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
    size_mm = None if element_size is None else parse_length(element_size, "--element-size")
    part_options = PartOptions(period=period, voxels_per_element=voxels, element_size_mm=size_mm)
    summary = _run_with_progress(out, problem, nel, material, settings, part_options, force)
    if "part_error" in summary:
        Console(stderr=True).print(f"[yellow]warning:[/yellow] {summary['part_error']}")
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)


def _run_with_progress(
    out: Path,
    problem: str,
    nel,
    material: str,
    settings: Settings,
    part_options: PartOptions,
    force: bool = False,
) -> dict:
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{problem} / {material}", total=settings.max_iter)

        def report(record: IterationRecord) -> None:
            progress.update(
                task,
                completed=record.iteration,
                description=(
                    f"{problem} / {material}: C={record.compliance:.4g}"
                    f" grey={record.grey_level:.3f} change={record.change:.3f}"
                ),
            )

        return run_topology_optimization(
            out, problem, nel, material, settings, part_options, callback=report, force=force
        )


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
