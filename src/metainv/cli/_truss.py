"""``metainv homogenize`` and ``metainv export``: a design file in, a stiffness or a mesh out.

Design files carry a ``family`` key; each family registers how to parse, homogenize and export
its designs in :data:`FAMILIES` (only ``truss`` for now). Heavy modules (torch, manifold3d) are
imported when a command runs, not when the CLI starts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from metainv.cli._app import app
from metainv.cli._errors import handle_errors
from metainv.errors import DesignError


@dataclass(frozen=True)
class Family:
    """How the CLI handles one design family.

    from_dict: validated design from the parsed JSON object
    homogenize: ``(design, youngs_modulus, poisson_ratio) -> summary dict`` with the keys
        ``C`` (6x6 list in the unit of ``youngs_modulus``, i.e. C / E_b at the default 1.0),
        ``relative_density``, ``strut_diameter``, ``nodes``, ``struts``
    export: ``(design, path, cells, fmt, segments) -> None``
    """

    from_dict: Callable[[Mapping[str, Any]], Any]
    homogenize: Callable[[Any, float, float], dict[str, Any]]
    export: Callable[[Any, Path, tuple[int, int, int], str | None, int], None]


def _truss_from_dict(data: Mapping[str, Any]) -> Any:
    from metainv.truss.design import design_from_dict

    return design_from_dict(data)


def _truss_homogenize(design: Any, youngs_modulus: float, poisson_ratio: float) -> dict[str, Any]:
    from metainv.truss.homogenize import BeamMaterial, homogenize

    material = BeamMaterial(youngs_modulus=youngs_modulus, poisson_ratio=poisson_ratio)
    result = homogenize(design, material)
    return {
        "C": [[float(c) for c in row] for row in result.C],
        "relative_density": float(result.relative_density),
        "strut_diameter": float(result.strut_diameter),
        "nodes": int(result.n_nodes),
        "struts": int(result.n_struts),
    }


def _truss_export(
    design: Any, path: Path, cells: tuple[int, int, int], fmt: str | None, segments: int
) -> None:
    from metainv.truss.export import export_design

    export_design(design, path, cells, fmt=fmt, segments=segments)


#: Design family (the ``family`` key of a design file) -> its handlers.
FAMILIES: Mapping[str, Family] = {
    "truss": Family(from_dict=_truss_from_dict, homogenize=_truss_homogenize, export=_truss_export),
}


def load_any_design(path: Path) -> tuple[Family, Any]:
    """Read a design file and dispatch on its ``family`` key; returns (family, design)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise DesignError(f"a design must be a JSON object, got {type(data).__name__}")
    if "family" not in data:
        raise DesignError(f"missing key 'family' in design (one of: {', '.join(FAMILIES)})")
    name = data["family"]
    if not isinstance(name, str) or name not in FAMILIES:
        raise DesignError(f"unknown family {name!r} (expected one of: {', '.join(FAMILIES)})")
    family = FAMILIES[name]
    return family, family.from_dict(data)


def _stiffness_table(summary: Mapping[str, Any]) -> Table:
    """6x6 table with one common power of ten, so that it fits an 80-column terminal."""
    labels = ["11", "22", "33", "23", "13", "12"]
    largest = max(abs(c) for row in summary["C"] for c in row)
    exponent = math.floor(math.log10(largest)) if largest > 0 else 0
    scale = 10.0**exponent
    table = Table(title=f"Effective stiffness C in units of 1e{exponent} E_b (Voigt order)")
    table.add_column("")
    for label in labels:
        table.add_column(label, justify="right")
    for label, row in zip(labels, summary["C"], strict=True):
        table.add_row(label, *(f"{round(c / scale, 4) + 0.0:.4f}" for c in row))
    return table


@app.command("homogenize")
@handle_errors
def homogenize_command(
    design_file: Path = typer.Argument(..., help="Design JSON file (see examples/designs)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object instead of a table."),
    youngs_modulus: float = typer.Option(
        1.0, "--youngs-modulus", help="Base material E_b (C is given in its unit)."
    ),
    poisson_ratio: float = typer.Option(0.3, "--poisson-ratio", help="Base material nu_b."),
) -> None:
    """Effective stiffness of a design by periodic beam homogenization."""
    family, design = load_any_design(design_file)
    summary = family.homogenize(design, youngs_modulus, poisson_ratio)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    console = Console()
    console.print(_stiffness_table(summary))
    console.print(f"relative density  {summary['relative_density']:.6g}")
    console.print(f"strut diameter    {summary['strut_diameter']:.6g}")
    console.print(f"nodes             {summary['nodes']}")
    console.print(f"struts            {summary['struts']}")


@app.command("export")
@handle_errors
def export_command(
    design_file: Path = typer.Argument(..., help="Design JSON file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.stl or .json)."),
    cells: tuple[int, int, int] = typer.Option(
        (1, 1, 1), "--cells", help="Number of cells along a1, a2, a3."
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="stl or json (default: from the --out suffix)."
    ),
    segments: int = typer.Option(16, "--segments", help="Polygon sides per strut (STL)."),
) -> None:
    """Export a finite block of the lattice as a watertight STL mesh or a JSON graph."""
    family, design = load_any_design(design_file)
    family.export(design, out, cells, fmt, segments)
    typer.echo(f"wrote {out}")
