"""``metainv homogenize`` and ``metainv export``: a design in, a stiffness or a mesh out.

A design is a design file of any registered family (its ``family`` key picks the family) or a
``designs.json`` of ``metainv design`` (``--candidate N``, default the best). The work is done
by :func:`metainv.homogenize` and :func:`metainv.export`; this module maps options and prints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from metainv.api import export, homogenize, load_design
from metainv.cli._app import app
from metainv.cli._errors import handle_errors
from metainv.family import Material

CANDIDATE_HELP = "Entry of a designs.json (1 = best; default 1)."


def stiffness_table(C: list[list[float]], unit: str = "E_b") -> Table:
    """6x6 table with one common power of ten, so that it fits an 80-column terminal."""
    labels = ["11", "22", "33", "23", "13", "12"]
    largest = max(abs(c) for row in C for c in row)
    exponent = math.floor(math.log10(largest)) if largest > 0 else 0
    scale = 10.0**exponent
    table = Table(title=f"Effective stiffness C in units of 1e{exponent} {unit} (Voigt order)")
    table.add_column("")
    for label in labels:
        table.add_column(label, justify="right")
    for label, row in zip(labels, C, strict=True):
        table.add_row(label, *(f"{round(c / scale, 4) + 0.0:.4f}" for c in row))
    return table


def _print_summary(summary: Mapping[str, Any]) -> None:
    console = Console()
    console.print(stiffness_table(summary["C"]))
    for key, value in summary.items():
        if key != "C":
            shown = f"{value:.6g}" if isinstance(value, float) else f"{value}"
            console.print(f"{key.replace('_', ' '):<18}{shown}")


@app.command("homogenize")
@handle_errors
def homogenize_command(
    design_file: Path = typer.Argument(
        ..., help="Design JSON (see examples/designs) or a designs.json of 'metainv design'."
    ),
    candidate: int | None = typer.Option(None, "--candidate", help=CANDIDATE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object instead of a table."),
    youngs_modulus: float = typer.Option(
        1.0, "--youngs-modulus", help="Base material E_b (C is given in its unit)."
    ),
    poisson_ratio: float = typer.Option(0.3, "--poisson-ratio", help="Base material nu_b."),
    resolution: int | None = typer.Option(
        None, "--resolution", help="Voxels per cell edge (spinodoid: default 64; tpms: 24)."
    ),
    threshold: str | None = typer.Option(
        None, "--threshold", help="Spinodoid level rule: ensemble (Eq. 3, default) or exact."
    ),
) -> None:
    """Effective stiffness of a design (truss: periodic beam homogenization; spinodoid: voxel
    finite elements with affine boundary conditions; tpms: periodic voxel finite elements).
    A designs.json is homogenized with the FE settings it was verified with."""
    family, _ = load_design(design_file, candidate)
    material = Material(youngs_modulus=youngs_modulus, poisson_ratio=poisson_ratio)
    options = {"resolution": resolution, "threshold": threshold}
    summary = homogenize(design_file, material, candidate, **options).to_dict()
    summary = {"family": family.name, **summary}
    if as_json:
        typer.echo(json.dumps(summary))
        return
    _print_summary(summary)


@app.command("export")
@handle_errors
def export_command(
    design_file: Path = typer.Argument(..., help="Design JSON or a designs.json."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output file (.stl; truss .json graph; spinodoid .png)."
    ),
    candidate: int | None = typer.Option(None, "--candidate", help=CANDIDATE_HELP),
    cells: tuple[int, int, int] = typer.Option(
        (1, 1, 1), "--cells", help="Number of cells along a1, a2, a3."
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="stl, json (truss) or png (spinodoid); default: --out suffix."
    ),
    segments: int | None = typer.Option(
        None, "--segments", help="Polygon sides per strut (truss STL; default 16)."
    ),
    size: float | None = typer.Option(
        None, "--size", help="Edge of one cell in the output unit, e.g. mm (spinodoid, tpms)."
    ),
    resolution: int | None = typer.Option(
        None, "--resolution", help="Samples per cell edge (spinodoid: 64, PNG 40; tpms: 32)."
    ),
) -> None:
    """Export a finite block of a design: truss as a watertight STL mesh or a JSON graph,
    spinodoid and tpms as a watertight STL mesh (marching cubes), spinodoid also as a PNG."""
    _, design = load_design(design_file, candidate)
    options = {"fmt": fmt, "segments": segments, "size": size, "resolution": resolution}
    export(design, out, cells, **options)
    typer.echo(f"wrote {out}")
