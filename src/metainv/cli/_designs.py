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

from metainv.api import export_part, homogenize, load_design
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
    cell_size: str | None = typer.Option(
        None,
        "--cell-size",
        "--size",
        help="Physical size of one cell, e.g. 5mm, 0.5 mm, 5e-3m (a bare number is mm): the "
        "largest bounding-box edge of one periodic cell. The file is then in mm.",
    ),
    process: str | None = typer.Option(
        None,
        "--process",
        help="Check printability with this process (see `metainv process list`); needs "
        "--cell-size.",
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Refuse (exit 2, nothing written) a part that does not print."
    ),
    resolution: int | None = typer.Option(
        None, "--resolution", help="Samples per cell edge (spinodoid: 64, PNG 40; tpms: 32)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as a JSON object."),
) -> None:
    """Export a finite block of a design: truss as a watertight STL mesh or a JSON graph,
    spinodoid and tpms as a watertight STL mesh (marching cubes), spinodoid also as a PNG.
    With --cell-size the file is in mm and the cell size, block bounding box and smallest
    features (strut diameter; minimum wall and pore) are reported in mm; with --process, also
    whether it prints (a warning, or exit 2 with --strict) and the smallest printable cell size."""
    options = {"fmt": fmt, "segments": segments, "resolution": resolution}
    report = export_part(
        design_file,
        out,
        cells,
        cell_size=cell_size,
        process=process,
        strict=strict,
        candidate=candidate,
        **options,
    )
    if as_json:
        typer.echo(json.dumps(report))
    else:
        typer.echo(f"wrote {out}")
        for line in print_lines(report):
            typer.echo(line)
    if report.get("printable") is False:
        typer.echo(
            f"warning: not printable with {report['process']} at cell size "
            f"{report['cell_size_mm']:g} mm ({'; '.join(report['failures'])}); the smallest "
            f"printable cell size is {report['smallest_cell_size_mm']:.3g} mm",
            err=True,
        )


def print_lines(report: Mapping[str, Any]) -> list[str]:
    """Lines of an export report (:func:`metainv.export_part`): sizes in mm, printability."""
    lines = []
    if report.get("cell_size_mm") is not None:
        lines.append(f"cell size          {report['cell_size_mm']:.4g} mm")
    box = report.get("bounding_box_mm") or report.get("bounding_box")
    if box is not None:
        unit = " mm" if "bounding_box_mm" in report else " (cell units)"
        lines.append("bounding box       " + " x ".join(f"{x:.4g}" for x in box) + unit)
    for key, label in (
        ("strut_diameter_mm", "strut diameter"),
        ("min_wall_mm", "minimum wall"),
        ("min_pore_mm", "minimum pore"),
    ):
        if report.get(key) is not None:
            lines.append(f"{label:<19}{report[key]:.4g} mm")
    if report.get("min_strut_angle_deg") is not None:
        line = f"flattest strut     {report['min_strut_angle_deg']:.1f} deg above the plate"
        if report.get("overhang_share") is not None:
            line += (
                f"; {100 * report['overhang_share']:.0f} % of struts below "
                f"{report['self_supporting_angle_deg']:g} deg (need support)"
            )
        lines.append(line)
    if report.get("process") is not None:
        verdict = "yes" if report["printable"] else "NO"
        lines.append(
            f"printable          {verdict} ({report['process']}; smallest printable cell "
            f"size {report['smallest_cell_size_mm']:.4g} mm)"
        )
    return lines
