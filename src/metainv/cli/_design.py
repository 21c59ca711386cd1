"""``metainv design TARGET``: inverse design through the family registry.

One target: :func:`metainv.design` and :meth:`metainv.DesignResult.write` (designs.json, STL
and PNG per candidate), a table of the candidates from the family's ``summarize``. A file of
many targets: the family's batch design (``design_batch``). Options left unset take the
family's defaults; an option a family does not take is refused with its name.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from metainv.api import design, load_target
from metainv.cli._app import app
from metainv.cli._errors import fail, handle_errors
from metainv.cli._stiffness import BASE_MODULUS_HELP, TARGET_HELP, UNIT_HELP
from metainv.family import (
    DesignResult,
    family_names,
    file_errors,
    get_family,
    prepare_design_folder,
)
from metainv.manufacturing import get_process, parse_length
from metainv.targets import read_target_table


@app.command("design")
@handle_errors
def design_command(
    target: str = typer.Argument(..., help=TARGET_HELP + " Or a CSV/Parquet of 21-column rows."),
    out: Path = typer.Option(..., "--out", help="Output folder (designs.json, STL, PNG)."),
    unit: str | None = typer.Option(None, "--unit", help=UNIT_HELP),
    base_modulus: str | None = typer.Option(None, "--base-modulus", help=BASE_MODULUS_HELP),
    family: str = typer.Option(
        "truss", "--family", help=f"Design family ({', '.join(family_names())})."
    ),
    model: Path = typer.Option(None, "--model", help="Model folder (default: shipped model)."),
    samples: int | None = typer.Option(
        None, "--samples", help="Candidates drawn from the inverse model (truss: 10000)."
    ),
    tau: float | None = typer.Option(
        None, "--tau", help="Gumbel-softmax temperature, large: diverse (truss: 2)."
    ),
    top: int | None = typer.Option(
        None, "--top", help="Distinct designs kept, verified and refined (default 5)."
    ),
    refine: bool | None = typer.Option(
        None, "--refine/--no-refine", help="Polish by FE gradients (truss; default on)."
    ),
    verify: bool | None = typer.Option(None, "--verify/--no-verify", help="Verify by FE."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the draws (default 0)."),
    polish_steps: int | None = typer.Option(
        None, "--polish-steps", help="Batch mode: polish each design through the forward model."
    ),
    library_neighbours: int | None = typer.Option(
        None,
        "--library-neighbours",
        help="Nearest designs of the model's rotation-aware library added as candidates per "
        "target (default 64 for one target, 0 in batch mode; 0 turns the library off).",
    ),
    resolution: int | None = typer.Option(
        None, "--resolution", help="FE voxels per cell edge (tpms)."
    ),
    cell_size: str | None = typer.Option(
        None,
        "--cell-size",
        help="Physical cell size, e.g. 5mm (largest bounding-box edge of one cell): features "
        "in mm per candidate, STLs in mm.",
    ),
    process: str | None = typer.Option(
        None,
        "--process",
        help="Keep only candidates printable with this process at --cell-size (see `metainv "
        "process list`); alone: each candidate's smallest printable cell size.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print designs.json to stdout."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Write into a non-empty --out, removing metainv's design files there first "
        "(designs.json, designs.parquet, candidate_NN.*); other files are kept.",
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Batch mode: refuse the whole file when a row is bad."
    ),
) -> None:
    """Design microstructures whose FE stiffness matches TARGET; writes OUT/designs.json, an
    STL and an elastic-surface PNG per candidate (or OUT/designs.parquet for many targets)."""
    chosen = get_family(family)
    options = {
        "model": model,
        "samples": samples,
        "tau": tau,
        "top": top,
        "refine": refine,
        "verify": verify,
        "seed": seed,
        "polish_steps": polish_steps,
        "library_neighbours": library_neighbours,
        "resolution": resolution,
    }
    console = Console(stderr=True)
    batch = read_target_table(target, unit, base_modulus)
    if batch is None and strict:
        raise fail("--strict applies to a file of many targets (batch mode)")
    if batch is not None and (cell_size is not None or process is not None):
        raise fail("--cell-size and --process apply to one target, not to a file of many")
    if batch is not None:
        extra = chosen.accepts("design_batch", {**options, "strict": strict or None})
        design_batch = chosen.require("design_batch")
        prepare_design_folder(out, force)
        summary = design_batch(batch, out, **extra)
        for message in summary.get("skipped", []):
            typer.echo(f"skipped {message}", err=True)
        console.print(
            f"[green]done[/]: {summary['designs']} designs in {summary['seconds']:.2f} s "
            f"({summary['designs'] / max(summary['seconds'], 1e-9):,.0f} /s); median forward "
            f"NMSE {summary['median_nmse_forward']:.4f} -> {summary['file']}",
            soft_wrap=True,
        )
        return
    loaded = load_target(target, unit=unit, base_modulus=base_modulus)
    chosen.require("design")
    chosen.accepts("design", options)  # refused options before the folder is touched
    if cell_size is not None:
        parse_length(cell_size)
    if process is not None:
        get_process(process)
    prepare_design_folder(out, force)
    start = time.perf_counter()
    result = design(
        loaded,
        family=family,
        on_step=lambda message: console.print(f"  {message}"),
        cell_size=cell_size,
        process=process,
        **options,
    )
    document = result.write(out)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    else:
        title = f"{family} designs for {loaded.name} ({time.perf_counter() - start:.1f} s)"
        Console().print(candidates_table(result, f"{title} -> {out}/designs.json"))
    failed = file_errors(document)
    if failed:
        console.print(
            f"[yellow]warning[/]: files not written ({'; '.join(failed)}); see designs.json",
            highlight=False,
            soft_wrap=True,
        )


def candidates_table(result: DesignResult, title: str) -> Table:
    """A rich table of the candidates, columns from the family's ``summarize``."""
    summarize = get_family(result.family).summarize
    rows = [
        {**summarize(candidate), **print_columns(candidate.extras.get("print"))}
        for candidate in result.candidates
    ]
    table = Table(title=title)
    table.add_column("#", justify="right")
    for column in rows[0] if rows else {}:
        table.add_column(column, justify="right")
    for rank, row in enumerate(rows, start=1):
        table.add_row(str(rank), *row.values())
    return table


def print_columns(check: dict | None) -> dict[str, str]:
    """Table columns of a candidate's ``print`` entry: the smallest feature in mm and the
    smallest printable cell size (when a process was given)."""
    if not check:
        return {}
    columns = {}
    for key, label in (("strut_diameter_mm", "strut mm"), ("min_wall_mm", "wall mm")):
        if check.get(key) is not None:
            columns[label] = f"{check[key]:.3g}"
    if check.get("min_pore_mm") is not None:
        columns["pore mm"] = f"{check['min_pore_mm']:.3g}"
    if check.get("smallest_cell_size_mm") is not None:
        columns["min cell mm"] = f"{check['smallest_cell_size_mm']:.3g}"
    return columns
