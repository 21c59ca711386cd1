"""``metainv stiffness ...``: check a target stiffness and draw its elastic surface."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from metainv.api import read_stiffness
from metainv.cli._app import app
from metainv.cli._errors import fail, handle_errors
from metainv.family import modulus_scale
from metainv.targets import NORMALIZED, Target, canonical_unit, read_target
from metainv.tensors import StiffnessReport, check_stiffness
from metainv.viz import plot_elastic_surface

stiffness_app = typer.Typer(
    help="Check a stiffness target and draw its elastic surface.", no_args_is_help=True
)
app.add_typer(stiffness_app, name="stiffness")

TARGET_HELP = "JSON/CSV/text file with a 6x6 Voigt stiffness, or a built-in name (bone3)."
UNIT_HELP = "Unit of the values: Pa, kPa, MPa, GPa or normalized."
FROM_SOURCE = "from the file, else normalized"
BASE_MODULUS_HELP = "Base material's Young's modulus E_b, e.g. 114GPa (a bare number is in --unit)."


@stiffness_app.command("check")
@handle_errors
def check_command(
    target: str = typer.Argument(..., help=TARGET_HELP),
    unit: str | None = typer.Option(None, "--unit", help=UNIT_HELP, show_default=FROM_SOURCE),
    base_modulus: str | None = typer.Option(
        None, "--base-modulus", help=BASE_MODULUS_HELP, show_default="from the file"
    ),
    solid_modulus: str | None = typer.Option(
        None,
        "--solid-modulus",
        help="Voigt-bound check: Young's modulus of the solid, e.g. 114GPa.",
        show_default="the base modulus",
    ),
    solid_poisson: float = typer.Option(
        0.3, "--solid-poisson", help="Voigt-bound check: Poisson ratio of the solid."
    ),
    max_density: float | None = typer.Option(
        None,
        "--max-density",
        help="Voigt-bound check: largest relative density rho_max (C <= rho_max C_solid).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check that a target is an admissible stiffness (exit 0) or say why not (exit 2)."""
    loaded = read_target(target, unit=unit, base_modulus=base_modulus)
    solid = None
    if solid_modulus is not None or max_density is not None:
        solid_youngs = (
            1.0
            if solid_modulus is None
            else loaded.normalize_modulus(solid_modulus, what="solid modulus")
        )
        solid = (solid_youngs, solid_poisson)
    report = check_stiffness(loaded.stiffness, solid=solid, max_relative_density=max_density)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(loaded, report)
    if not report.admissible:
        raise fail("not admissible: " + "; ".join(report.failures))


@stiffness_app.command("surface")
@handle_errors
def surface_command(
    target: str = typer.Argument(..., help=TARGET_HELP),
    out: Path = typer.Option(..., "--out", help="Image file to write (.png, .pdf, .svg)."),
    unit: str | None = typer.Option(None, "--unit", help=UNIT_HELP, show_default=FROM_SOURCE),
    base_modulus: str | None = typer.Option(
        None, "--base-modulus", help=BASE_MODULUS_HELP, show_default="from the file"
    ),
    compare: str | None = typer.Option(
        None,
        "--compare",
        help="Second stiffness drawn on the same axes: a target, a design file, a designs.json "
        "or a 'homogenize --json' output.",
    ),
    candidate: int | None = typer.Option(
        None, "--candidate", help="Entry of a --compare designs.json (1 = best; default 1)."
    ),
    compare_unit: str | None = typer.Option(
        None, "--compare-unit", help="Unit of --compare.", show_default=FROM_SOURCE
    ),
    compare_base_modulus: str | None = typer.Option(
        None,
        "--compare-base-modulus",
        help="Base modulus of --compare, e.g. 114GPa.",
        show_default="from its file",
    ),
    label: str = typer.Option("target", "--label", help="Legend name of TARGET."),
    compare_label: str = typer.Option(
        "design", "--compare-label", help="Legend name of --compare."
    ),
    title: str | None = typer.Option(
        None, "--title", help="Figure title.", show_default="the target's name"
    ),
    plot_unit: str | None = typer.Option(
        None,
        "--plot-unit",
        help="Draw E(d) in Pa, kPa, MPa or GPa (needs the target's base modulus); default "
        "E(d) / E_b.",
    ),
) -> None:
    """Draw the elastic surface E(d) of a stiffness and its e1-e2, e1-e3, e2-e3 sections."""
    loaded = read_stiffness(target, unit=unit, base_modulus=base_modulus)
    if plot_unit is not None and canonical_unit(plot_unit) != NORMALIZED:
        if loaded.base_modulus_pa is None:
            raise fail(
                f"--plot-unit {plot_unit} needs the base modulus: give --unit and "
                "--base-modulus (e.g. --unit GPa --base-modulus 114GPa)"
            )
    scale, modulus_label = modulus_scale(plot_unit, loaded.base_modulus_pa)
    other = None
    if compare is not None:
        other = read_stiffness(
            compare, unit=compare_unit, base_modulus=compare_base_modulus, candidate=candidate
        ).stiffness
    written = plot_elastic_surface(
        scale * loaded.stiffness,
        out,
        compare=None if other is None else scale * other,
        modulus_label=modulus_label,
        labels=(label, compare_label),
        title=title if title is not None else loaded.name,
    )
    typer.echo(f"wrote {written}")


def print_report(target: Target, report: StiffnessReport) -> None:
    """Rich table of a stiffness report, headed by the target's name and normalization."""
    table = Table(title=f"{target.name}: {_normalization(target)}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check, passed, detail in _report_rows(report):
        table.add_row(check, _verdict(passed), detail)
    table.add_row("admissible", _verdict(report.admissible), "; ".join(report.failures))
    Console().print(table)


def _report_rows(report: StiffnessReport) -> list[tuple[str, bool | None, str]]:
    """(check name, passed or None when not checked, detail) for each check."""
    return [
        ("shape", report.shape == (6, 6), "x".join(str(size) for size in report.shape)),
        ("finite", report.finite, ""),
        ("symmetric", report.symmetric, _optional(report.max_asymmetry, "max |Cij - Cji| = {}")),
        (
            "positive definite",
            report.positive_definite,
            _optional(report.min_eigenvalue, "min eigenvalue {}"),
        ),
        (
            "strongly elliptic",
            report.strongly_elliptic,
            _optional(report.min_acoustic_eigenvalue, "min acoustic eigenvalue {}"),
        ),
        (
            "within Voigt bound",
            report.within_voigt_bound,
            _optional(
                report.voigt_margin_min_eigenvalue,
                f"min eigenvalue of {report.max_relative_density}*C_solid - C = {{}}",
            ),
        ),
    ]


def _normalization(target: Target) -> str:
    if target.base_modulus_pa is None:
        return "given normalized (C / E_b)"
    material = f" ({target.base_material})" if target.base_material else ""
    return f"{target.unit}, normalized by E_b = {target.base_modulus_pa / 1e9:g} GPa{material}"


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return "[dim]not checked[/dim]"
    return "[green]yes[/green]" if passed else "[red]no[/red]"


def _optional(value: float | None, template: str) -> str:
    return "" if value is None else template.format(f"{value:.6g}")
