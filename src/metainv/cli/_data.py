"""``metainv generate FAMILY``: sharded, resumable data-set generation."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from metainv.cli._app import app
from metainv.cli._errors import handle_errors
from metainv.data import GenerationSpec, generate_dataset, generation_parameters

generate_app = typer.Typer(help="Generate labelled data sets (FE-homogenized designs).")
app.add_typer(generate_app, name="generate")


@generate_app.command("truss")
@handle_errors
def generate_truss(
    n: int = typer.Option(..., "--n", help="Number of rows (designs)."),
    out: Path = typer.Option(..., "--out", help="Data-set folder (created; resumed if present)."),
    seed: int = typer.Option(0, "--seed", help="Seed; shard i uses SeedSequence([seed, i])."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Rows per shard."),
    backend: str = typer.Option("local", "--backend", help="local | dask"),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address."),
) -> None:
    """Sample truss designs uniformly and label them by FE (stage-1 and final stiffness)."""
    spec = GenerationSpec("truss", n, shard_size, seed, generation_parameters("truss"))
    _generate(spec, out, workers, backend, scheduler)


def _generate(spec: GenerationSpec, out: Path, workers: int, backend: str, scheduler) -> None:
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} rows/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    start = time.perf_counter()
    fresh_rows = 0
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"{spec.family} → {out}", total=spec.n_rows, rate="-")

        def on_shard(record) -> None:
            nonlocal fresh_rows
            fresh_rows += record.rows
            rate = fresh_rows / max(time.perf_counter() - start, 1e-9)
            progress.update(task, advance=record.rows, rate=f"{rate:,.0f}")

        try:
            manifest = generate_dataset(spec, out, workers, backend, scheduler, on_shard)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: finished shards are kept; rerun to resume")
            raise typer.Exit(130) from None
    elapsed = time.perf_counter() - start
    rows = sum(s["rows"] for s in manifest["shards"])
    console.print(
        f"[green]done[/]: {rows:,} rows in {len(manifest['shards'])} shards at {out} "
        f"({fresh_rows:,} new rows in {elapsed:.1f} s, "
        f"{fresh_rows / max(elapsed, 1e-9):,.0f} rows/s)"
    )
