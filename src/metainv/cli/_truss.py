"""``metainv homogenize`` and ``metainv export``: a design file in, a stiffness or a mesh out.

Design files carry a ``family`` key; each family registers how to parse, homogenize and export
its designs in :data:`FAMILIES` (``truss`` here; other families call :func:`register_family`
from their own CLI module). Heavy modules (torch, manifold3d) are imported when a command runs,
not when the CLI starts.
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
    options: names of the extra options (``resolution``, ``size``) that ``homogenize`` and
        ``export`` take as keyword arguments; they are passed only when given on the command
        line, and giving one that a family does not take is an error. Summary keys that do not
        apply to a family are omitted.
    """

    from_dict: Callable[[Mapping[str, Any]], Any]
    homogenize: Callable[..., dict[str, Any]]
    export: Callable[..., None]
    options: frozenset[str] = frozenset()


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
FAMILIES: dict[str, Family] = {
    "truss": Family(from_dict=_truss_from_dict, homogenize=_truss_homogenize, export=_truss_export),
}


def register_family(name: str, family: Family) -> None:
    """Make ``metainv homogenize`` and ``metainv export`` accept designs of family ``name``."""
    FAMILIES[name] = family


def _extra_options(family: Family, **given: Any) -> dict[str, Any]:
    """The family-specific options that were given (not None); an error for one it lacks."""
    extra = {key: value for key, value in given.items() if value is not None}
    for key in extra:
        if key not in family.options:
            option = "--" + key.replace("_", "-")
            raise DesignError(f"{option} does not apply to this design family")
    return extra


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
    resolution: int | None = typer.Option(
        None, "--resolution", help="Voxels per cell edge (spinodoid; default 64)."
    ),
) -> None:
    """Effective stiffness of a design (truss: periodic beam homogenization; spinodoid: voxel
    finite elements with affine boundary conditions)."""
    family, design = load_any_design(design_file)
    extra = _extra_options(family, resolution=resolution)
    summary = family.homogenize(design, youngs_modulus, poisson_ratio, **extra)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    console = Console()
    console.print(_stiffness_table(summary))
    for key, value in summary.items():
        if key != "C":
            shown = f"{value:.6g}" if isinstance(value, float) else f"{value}"
            console.print(f"{key.replace('_', ' '):<18}{shown}")


@app.command("export")
@handle_errors
def export_command(
    design_file: Path = typer.Argument(..., help="Design JSON file."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output file (.stl, .json; spinodoid .stl, .png)."
    ),
    cells: tuple[int, int, int] = typer.Option(
        (1, 1, 1), "--cells", help="Number of cells along a1, a2, a3."
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="stl, json (truss) or png (spinodoid); default: --out suffix."
    ),
    segments: int = typer.Option(16, "--segments", help="Polygon sides per strut (STL)."),
    size: float | None = typer.Option(
        None, "--size", help="Edge of one cell in the output unit, e.g. mm (spinodoid; default 1)."
    ),
    resolution: int | None = typer.Option(
        None, "--resolution", help="Samples per cell edge (spinodoid; default 64, PNG 40)."
    ),
) -> None:
    """Export a finite block of a design: truss as a watertight STL mesh or a JSON graph,
    spinodoid as a watertight STL mesh (marching cubes) or a PNG preview."""
    family, design = load_any_design(design_file)
    extra = _extra_options(family, size=size, resolution=resolution)
    family.export(design, out, cells, fmt, segments, **extra)
    typer.echo(f"wrote {out}")
