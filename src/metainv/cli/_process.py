"""``metainv process``: the table of additive processes (minimum strut, wall, pore, and the
self-supporting angle) and the printability check of a design at a cell size. The work is
done by :mod:`metainv.manufacturing` and :func:`metainv.check_print`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from metainv.api import check_print
from metainv.cli._app import app
from metainv.cli._designs import CANDIDATE_HELP, print_lines
from metainv.cli._errors import handle_errors
from metainv.manufacturing import process_rows

process_app = typer.Typer(help="Additive processes: list them, check a design against one.")
app.add_typer(process_app, name="process")


@process_app.command("list")
@handle_errors
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """The process table: minimum strut diameter, wall and pore (mm), self-supporting angle
    (degrees above the build plate) and where the numbers come from."""
    rows = process_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Processes (assumed typical values; calibrate for your machine)")
    for column in ("name", "process", "strut mm", "wall mm", "pore mm", "overhang deg"):
        table.add_column(column, justify="left" if column in ("name", "process") else "right")
    for row in rows:
        table.add_row(
            row["name"],
            row["label"],
            f"{row['min_strut_mm']:g}",
            f"{row['min_wall_mm']:g}",
            f"{row['min_pore_mm']:g}",
            f"{row['self_supporting_angle_deg']:g}",
        )
    Console().print(table)
    for row in rows:
        typer.echo(f"{row['name']}: {row['source']}")


@process_app.command("check")
@handle_errors
def check_command(
    design_file: Path = typer.Argument(..., help="Design JSON or a designs.json."),
    process: str = typer.Option(..., "--process", help="Process name (`metainv process list`)."),
    cell_size: str | None = typer.Option(
        None, "--cell-size", help="Cell size, e.g. 5mm (default: only the smallest that prints)."
    ),
    candidate: int | None = typer.Option(None, "--candidate", help=CANDIDATE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Does a design print with PROCESS at a cell size? Its features in mm and the smallest
    printable cell size; exit 1 when it does not print at --cell-size."""
    report = check_print(design_file, cell_size, process, candidate).to_dict()
    if as_json:
        typer.echo(json.dumps(report))
    else:
        for line in print_lines(report) if cell_size else []:
            typer.echo(line)
        if cell_size is None:
            typer.echo(
                f"smallest printable cell size with {process}: "
                f"{report['smallest_cell_size_mm']:.4g} mm"
            )
    if report.get("printable") is False:
        raise typer.Exit(code=1)
