"""``metainv generate FAMILY``: sharded, resumable data-set generation of any registered family."""

from __future__ import annotations

import shlex
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from metainv.data import (
    BACKENDS,
    GenerationSpec,
    generate_dataset,
    generation_parameters,
    read_manifest,
)
from metainv.data.shards import MANIFEST_NAME
from metainv.family import get_family

#: Exit status after Ctrl-C or SIGTERM (128 + SIGINT, the shell convention).
EXIT_INTERRUPTED = 130


@app.command("generate")
@handle_errors
def generate_command(
    family: str = typer.Argument(..., help="Design family (truss, spinodoid, tpms, ...)."),
    n: int = typer.Option(..., "--n", help="Number of rows (designs)."),
    out: Path = typer.Option(..., "--out", help="Data-set folder (created; resumed if present)."),
    seed: int = typer.Option(0, "--seed", help="Seed; shard i uses SeedSequence([seed, i])."),
    workers: int = typer.Option(
        1, "--workers", help="Worker processes (local pool, or LocalCluster size for dask)."
    ),
    shard_size: int | None = typer.Option(
        None, "--shard-size", help="Rows per shard (default: the family's, truss 10000)."
    ),
    backend: str = typer.Option("local", "--backend", help=" | ".join(BACKENDS)),
    scheduler: str = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default: a LocalCluster)."
    ),
    resolution: int | None = typer.Option(
        None, "--resolution", help="Voxels per cell edge of the FE (spinodoid 24, tpms 24)."
    ),
    density_range: tuple[float, float] | None = typer.Option(
        None,
        "--density-range",
        help="Spinodoid: relative density range LOW HIGH sampled uniformly (default: the "
        "published 0.3 0.9; at least 0.15, our low-density extension).",
    ),
) -> None:
    """Sample designs of FAMILY and label them by FE (truss: stage-1 and final stiffness).

    The data do not depend on --workers or --backend. Interrupted runs resume when the same
    command is run again.
    """
    chosen = get_family(family)
    options = {"resolution": resolution, "density_range": density_range}
    params = generation_parameters(family, **options)
    size = chosen.shard_size if shard_size is None else shard_size
    spec = GenerationSpec(family, n, size, seed, params)
    _generate(spec, out, workers, backend, scheduler, chosen.accepts("generate", options))


def resume_command(
    spec: GenerationSpec,
    out: Path,
    workers: int,
    backend: str,
    scheduler: str | None,
    options: dict | None = None,
) -> str:
    """The command line that resumes (or repeats) the generation of ``spec`` into ``out``."""
    words = ["metainv", "generate", spec.family, "--n", str(spec.n_rows), "--out", str(out)]
    for key, value in (options or {}).items():
        values = value if isinstance(value, (tuple, list)) else [value]
        words += ["--" + key.replace("_", "-"), *(str(v) for v in values)]
    words += ["--seed", str(spec.seed), "--shard-size", str(spec.shard_size)]
    words += ["--workers", str(workers), "--backend", backend]
    if scheduler:
        words += ["--scheduler", scheduler]
    return shlex.join(words)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (batch schedulers, ``kill``) like Ctrl-C: stop workers, keep the manifest."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _generate(
    spec: GenerationSpec,
    out: Path,
    workers: int,
    backend: str,
    scheduler: str | None,
    options: dict | None = None,
) -> None:
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
    progress = Progress(*columns, console=console, transient=False)
    task = progress.add_task(f"{spec.family} → {out}", total=spec.n_rows, rate="-")

    def on_start(manifest) -> None:  # the folder is accepted: show the bar from here on
        kept = sum(record["rows"] for record in manifest["shards"])
        if kept:
            console.print(
                f"resuming: {len(manifest['shards'])} of {manifest['n_shards']} shards "
                f"({kept:,} rows) already done"
            )
        progress.update(task, completed=kept)
        progress.start()

    def on_shard(record) -> None:
        nonlocal fresh_rows
        fresh_rows += record.rows
        rate = fresh_rows / max(time.perf_counter() - start, 1e-9)
        progress.update(task, advance=record.rows, rate=f"{rate:,.0f}")

    try:
        with _sigterm_as_interrupt():
            manifest = generate_dataset(spec, out, workers, backend, scheduler, on_shard, on_start)
    except KeyboardInterrupt:
        progress.stop()
        _report_interrupt(console, spec, out, workers, backend, scheduler, options)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        progress.stop()
    elapsed = time.perf_counter() - start
    rows = sum(s["rows"] for s in manifest["shards"])
    console.print(
        f"[green]done[/]: {rows:,} rows in {len(manifest['shards'])} shards at {out} "
        f"({fresh_rows:,} new rows in {elapsed:.1f} s, "
        f"{fresh_rows / max(elapsed, 1e-9):,.0f} rows/s)"
    )


def _report_interrupt(
    console: Console,
    spec: GenerationSpec,
    out: Path,
    workers: int,
    backend: str,
    scheduler: str | None,
    options: dict | None = None,
) -> None:
    manifest = read_manifest(out) or {}
    done = len(manifest.get("shards", []))
    console.print(
        f"[yellow]interrupted[/]: {done} of {manifest.get('n_shards', '?')} shards are finished "
        f"and recorded in {Path(out) / MANIFEST_NAME}; resume with:\n"
        f"  {resume_command(spec, out, workers, backend, scheduler, options)}",
        highlight=False,
        soft_wrap=True,
    )
