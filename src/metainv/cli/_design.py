"""``metainv design TARGET``: inverse design with FE verification and FE-gradient refinement."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from metainv.cli._app import app
from metainv.cli._errors import fail, handle_errors
from metainv.cli._stiffness import BASE_MODULUS_HELP, TARGET_HELP, UNIT_HELP


@app.command("design")
@handle_errors
def design_command(
    target: str = typer.Argument(..., help=TARGET_HELP + " Or a CSV/Parquet of 21-column rows."),
    out: Path = typer.Option(..., "--out", help="Output folder (designs.json, STL, PNG)."),
    unit: str | None = typer.Option(None, "--unit", help=UNIT_HELP),
    base_modulus: str | None = typer.Option(None, "--base-modulus", help=BASE_MODULUS_HELP),
    family: str = typer.Option("truss", "--family", help="Design family: truss or spinodoid."),
    model: Path = typer.Option(None, "--model", help="Model folder (default: shipped model)."),
    samples: int = typer.Option(
        10_000, "--samples", help="Candidates drawn from the inverse model."
    ),
    tau: float = typer.Option(2.0, "--tau", help="Gumbel-softmax temperature (large: diverse)."),
    top: int = typer.Option(5, "--top", help="Distinct designs kept, verified and refined."),
    refine: bool = typer.Option(True, "--refine/--no-refine", help="Polish by FE gradients."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Verify by FE."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws."),
    polish_steps: int = typer.Option(
        0, "--polish-steps", help="Batch mode: polish each design through the forward model."
    ),
    library_neighbours: int = typer.Option(
        None,
        "--library-neighbours",
        help="Nearest designs of the model's rotation-aware library added as candidates per "
        "target (default 64 for one target, 0 in batch mode; 0 turns the library off).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print designs.json to stdout."),
) -> None:
    """Design lattices whose FE stiffness matches TARGET; writes OUT/designs.json and files."""
    from metainv.targets import read_target, read_target_table
    from metainv.truss.learn.artifacts import load_models
    from metainv.truss.learn.inverse import (
        DesignSettings,
        design_batch,
        design_for_target,
        write_design_outputs,
    )

    if family == "spinodoid":
        from metainv.cli._spinodoid import design_spinodoid

        return design_spinodoid(target, out, unit, base_modulus, model, top, verify, seed, as_json)
    if family != "truss":
        raise fail(f"unknown or unavailable family {family!r}; available: truss, spinodoid")
    for name, value in (("--samples", samples), ("--top", top)):
        if value < 1:
            raise fail(f"{name} must be >= 1, got {value}")
    if tau <= 0:
        raise fail(f"--tau must be positive, got {tau}")
    if polish_steps < 0:
        raise fail(f"--polish-steps must be >= 0, got {polish_steps}")
    if library_neighbours is not None and library_neighbours < 0:
        raise fail(f"--library-neighbours must be >= 0, got {library_neighbours}")
    console = Console(stderr=True)
    start = time.perf_counter()
    models = load_models(model)
    batch = read_target_table(target, unit, base_modulus)
    if batch is not None:
        options = (samples, verify, seed, polish_steps, library_neighbours or 0)
        _batch_mode(models, batch, out, options, console, design_batch)
        return
    loaded = read_target(target, unit=unit, base_modulus=base_modulus)
    settings = DesignSettings(samples=samples, tau=tau, top=top, refine=refine, seed=seed)
    if library_neighbours is not None:
        settings = replace(settings, library_neighbours=library_neighbours)
    candidates = design_for_target(
        models, loaded.stiffness, settings, on_step=lambda m: console.print(f"  {m}")
    )
    document = write_design_outputs(loaded.stiffness, candidates, out)
    elapsed = time.perf_counter() - start
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    table = Table(title=f"designs for {loaded.name} ({elapsed:.1f} s) -> {out}/designs.json")
    for column in ("#", "topology (S,t)", "rho", "NMSE forward", "NMSE FE"):
        table.add_column(column, justify="right")
    for rank, candidate in enumerate(candidates, start=1):
        topology = " ".join(f"{s},{t}" for s, t in candidate.design.topology)
        table.add_row(
            str(rank),
            topology,
            f"{candidate.design.relative_density:.4f}",
            f"{candidate.nmse_forward:.4f}",
            f"{candidate.nmse_fe:.4f}",
        )
    Console().print(table)


def _batch_mode(models, targets, out, options, console, design_batch) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from metainv.truss.design import design_arrays

    samples, verify, seed, polish_steps, library_neighbours = options
    if samples != 1 or verify:
        raise fail("a file of many targets runs in batch mode: pass --samples 1 --no-verify")
    start = time.perf_counter()
    designs, _, errors = design_batch(
        models,
        targets,
        seed=seed,
        polish_steps=polish_steps,
        library_neighbours=library_neighbours,
    )
    elapsed = time.perf_counter() - start
    arrays = design_arrays(designs)
    columns = {
        **{f"S{k + 1}": arrays["cells"][:, k] for k in range(3)},
        **{f"t{k + 1}": arrays["tessellations"][:, k] for k in range(3)},
        "relative_density": arrays["relative_density"],
        **{f"U{k + 1}": arrays["U"][:, k] for k in range(3)},
        **{f"V{k + 1}": arrays["V"][:, k] for k in range(3)},
        **{f"R1_{i + 1}{j + 1}": arrays["R1"][:, i, j] for i in range(3) for j in range(3)},
        **{f"R2_{i + 1}{j + 1}": arrays["R2"][:, i, j] for i in range(3) for j in range(3)},
        "nmse_forward": errors,
    }
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), out / "designs.parquet")
    console.print(
        f"[green]done[/]: {len(designs)} designs in {elapsed:.2f} s "
        f"({len(designs) / elapsed:,.0f} /s); median forward NMSE {np.median(errors):.4f} "
        f"-> {out / 'designs.parquet'}"
    )
