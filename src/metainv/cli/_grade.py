"""``metainv grade``: a functionally graded part between designs at control points.

Each ``--control X,Y,Z`` is followed by its design file (cell units; a design JSON of the
family or a ``designs.json`` of ``metainv design``, whose best candidate is used). The work is
:func:`metainv.grade`, which calls the ``grade`` function of the family (``--family``, default
the family of the first design); the summary is printed (``--json``: as JSON).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from metainv.api import grade
from metainv.cli._app import app
from metainv.cli._errors import fail, handle_errors
from metainv.errors import MetainvError

Control = tuple[tuple[float, float, float], Path]


def _controls(points: Sequence[str], designs: Sequence[Path]) -> list[Control]:
    from metainv.grading import parse_point

    if len(points) != len(designs):
        raise MetainvError(
            f"{len(points)} --control points but {len(designs)} design files: give each "
            "--control X,Y,Z followed by its design file"
        )
    return [(tuple(parse_point(p).tolist()), d) for p, d in zip(points, designs, strict=True)]


def _summary_table(summary: dict[str, Any], out: Path, elapsed: float) -> Table:
    table = Table(title=f"graded lattice ({elapsed:.1f} s) -> {out}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for key in ("cells", "nodes", "struts"):
        if key in summary:
            table.add_row(key, str(summary[key]))
    if "diameter_min" in summary:
        table.add_row(
            "strut diameter", f"{summary['diameter_min']:.4g} .. {summary['diameter_max']:.4g}"
        )
    if "stl" in summary:
        table.add_row("STL watertight", "yes" if summary["stl"]["watertight"] else "NO")
    if "cell_size_mm" in summary and "bounds" in summary.get("stl", {}):
        low, high = summary["stl"]["bounds"]
        size = " x ".join(f"{b - a:.2f}" for a, b in zip(low, high, strict=True))
        table.add_row("part (mm)", f"{size} (cell unit {summary['cell_size_mm']:g} mm)")
    if "local_check" in summary:
        table.add_row("local check max NMSE", f"{summary['local_check']['max_nmse']:.3g}")
    for name, gate in summary.get("gates", {}).items():
        verdict = "ok" if gate["passed"] else "FAILED"
        table.add_row(f"gate {name}", f"{gate['value']:.3g} (limit {gate['limit']:g}) {verdict}")
    if "clipped_struts" in summary:
        table.add_row(
            "clipped to the body",
            f"{summary['clipped_struts']} struts cut, {summary['islands_removed']} islands removed",
        )
    table.add_row("files", ", ".join(summary.get("files", {}).values()))
    return table


@app.command("grade")
@handle_errors
def grade_command(
    designs: list[Path] = typer.Argument(
        ...,
        help="Design files, one after each --control point (truss: design JSON or "
        "designs.json of 'metainv design', best candidate).",
    ),
    control: list[str] = typer.Option(
        ..., "--control", help="Control point X,Y,Z in cell units, followed by its design file."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    box: tuple[float, float, float] | None = typer.Option(
        None, "--box", help="Body: the box [0,LX]x[0,LY]x[0,LZ] in cell units."
    ),
    body: Path | None = typer.Option(
        None, "--body", help="Body: a closed STL surface in cell units (instead of --box)."
    ),
    zeta: float = typer.Option(0.5, "--zeta", help="RBF parameter (1/cell^2, SI Eq. 14)."),
    family: str | None = typer.Option(
        None, "--family", help="Design family of the controls (default: the first design's)."
    ),
    elements_per_cell: int | None = typer.Option(
        None, "--elements-per-cell", help="FE resolution of the projection functions (4)."
    ),
    segments: int | None = typer.Option(None, "--segments", help="Polygon sides per strut (8)."),
    min_relative_diameter: float | None = typer.Option(
        None,
        "--min-relative-diameter",
        help="Drop struts thinner than this fraction of their full diameter (0.05).",
    ),
    stl: bool | None = typer.Option(None, "--stl/--no-stl", help="Write the STL (default on)."),
    check: bool | None = typer.Option(
        None, "--check/--no-check", help="Local stiffness check along the grading (default on)."
    ),
    ignore_gates: bool = typer.Option(
        False,
        "--ignore-gates",
        help="Experts: write a lattice past its quality gates (recorded in summary.json).",
    ),
    match_bases: bool | None = typer.Option(
        None,
        "--match-bases/--no-match-bases",
        help="Blend each control cell in its best-matched equivalent basis (default on).",
    ),
    cell_size: str | None = typer.Option(
        None,
        "--cell-size",
        help="Length of one cell unit (the unit of --control and --box), e.g. 5mm: STL in mm.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    force: bool = typer.Option(
        False, "--force", help="Write into a non-empty --out, replacing metainv's graded files."
    ),
) -> None:
    """Functionally graded lattice (Bastek et al. 2022, SI Sec. 5): JSON graph, STL, VTU, PNG."""
    if (box is None) == (body is None):
        raise fail("give the body as either --box LX LY LZ or --body SURFACE.stl")
    given = {"elements_per_cell": elements_per_cell, "segments": segments}
    given["min_relative_diameter"] = min_relative_diameter
    given |= {"stl": stl, "check": check, "match_bases": match_bases}
    given["ignore_gates"] = True if ignore_gates else None
    controls = _controls(control, designs)
    console = Console(stderr=True)
    start = time.perf_counter()
    with console.status("grading") as status:
        summary = grade(
            controls,
            out,
            box,
            zeta,
            family,
            body=body,
            on_step=status.update,
            force=force,
            cell_size=cell_size,
            **given,
        )
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    Console().print(_summary_table(summary, out, time.perf_counter() - start))
