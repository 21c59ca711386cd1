"""``metainv laws``: list the material laws of topology optimization and regenerate their data
(TPMS exponential fits, truss and spinodoid tables); the work is in :mod:`metainv.tpms.law` and
:mod:`metainv.topopt.lattices`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from metainv.cli._app import app
from metainv.cli._errors import handle_errors
from metainv.topopt import available_laws, get_law
from metainv.topopt.lattices import (
    TABLES,
    TableOptions,
    data_path,
    law_table_data,
    law_table_steps,
)
from metainv.tpms.law import DEFAULT_RESOLUTION, FIT_DENSITIES, law_fit_data
from metainv.tpms.law import data_path as tpms_data_path

laws_app = typer.Typer(help="Material laws of topology optimization: list, regenerate data.")
app.add_typer(laws_app, name="laws")


def _command(words: list[str], options: dict) -> str:
    """The command line that reproduces a run (recorded in the data file)."""
    for key, value in options.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        words += ["--" + key.replace("_", "-"), *(str(v) for v in values)]
    return shlex.join(words)


def _write(data: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    Console(stderr=True).print(f"wrote {out}")


@laws_app.command("list")
@handle_errors
def list_command() -> None:
    """The registered laws, their density range and description."""
    for name in available_laws():
        law = get_law(name)
        low, high = getattr(law, "density_range", (0.0, 1.0))
        typer.echo(f"{name:<16} {low:g}..{high:g}  {getattr(law, 'description', '')}")


@laws_app.command("tpms")
@handle_errors
def tpms_command(
    surface: str = typer.Option("gyroid", "--surface", help="gyroid, schwarz_p or diamond."),
    n: int = typer.Option(DEFAULT_RESOLUTION, "--n", help="Voxels per cell edge."),
    densities: list[float] = typer.Option(
        list(FIT_DENSITIES), "--density", help="Relative density to homogenize (repeatable)."
    ),
    fit_range: tuple[float, float] | None = typer.Option(
        None, "--fit-range", help="Fit only RHO_MIN..RHO_MAX and bound the optimizer to it."
    ),
    variants: list[str] = typer.Option(
        ["sheet", "network"], "--variant", help="sheet and/or network (repeatable)."
    ),
    poisson: float = typer.Option(0.3, "--poisson", help="Solid Poisson ratio."),
    out: Path | None = typer.Option(None, "--out", help="Output JSON (default: shipped file)."),
) -> None:
    """Homogenize TPMS cells over densities and fit SI Eq. 1 (minutes at 24^3)."""
    with Progress(console=Console(stderr=True)) as bar:
        tasks = {v: bar.add_task(f"{v} {surface}", total=len(densities)) for v in variants}
        data = law_fit_data(
            surface,
            n,
            densities,
            fit_range,
            variants,
            poisson,
            progress=lambda variant: bar.advance(tasks[variant]),
            command=_command(
                ["metainv", "laws", "tpms"],
                {"surface": surface, "n": n, "fit_range": fit_range, "poisson": poisson},
            )
            + "".join(f" --density {d}" for d in densities)
            + "".join(f" --variant {v}" for v in variants),
        )
    _write(data, out or tpms_data_path(surface))
    for variant, entry in data["variants"].items():
        for name, fit in entry["fit"].items():
            typer.echo(
                f"{variant} {name}: a={fit['a']:.5g} b={fit['b']:.5g} rms(D/D*)={fit['rms']:.2e}"
            )


@laws_app.command("table")
@handle_errors
def table_command(
    law: str = typer.Argument(..., help=f"One of: {', '.join(TABLES)}."),
    resolution: int = typer.Option(
        TableOptions().resolution, "--resolution", help="Voxels per cell edge (spinodoid)."
    ),
    seeds: int = typer.Option(
        TableOptions().seeds, "--seeds", help="Field realizations per density (spinodoid)."
    ),
    poisson: float = typer.Option(TableOptions().poisson, "--poisson", help="Solid nu."),
    out: Path | None = typer.Option(None, "--out", help="Output JSON (default: shipped file)."),
) -> None:
    """Tabulate a lattice law by FE and fit its polynomial (truss: seconds; spinodoid:
    5 CPU-minutes)."""
    options = TableOptions(resolution=resolution, seeds=seeds, poisson=poisson)
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task(law, total=law_table_steps(law, options) if law in TABLES else 1)
        command = _command(
            ["metainv", "laws", "table", law],
            {"resolution": resolution, "seeds": seeds, "poisson": poisson},
        )
        data = law_table_data(law, options, lambda: bar.advance(task), command=command)
    _write(data, out or data_path(law))
    for key, relative in data["fit"]["relative_rms"].items():
        typer.echo(f"{key}: relative rms={relative:.2e}")
