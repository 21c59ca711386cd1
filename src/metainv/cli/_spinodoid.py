"""The spinodoid commands ``metainv train spinodoid`` and
``metainv evaluate spinodoid``, the ``--family spinodoid`` branch of ``metainv design``
(:func:`design_spinodoid`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from metainv.cli._errors import handle_errors
from metainv.cli._models import evaluate_app, train_app


@train_app.command("spinodoid")
@handle_errors
def train_spinodoid(
    data: list[Path] = typer.Option(
        ..., "--data", help="Training data set(s) (metainv generate spinodoid); repeatable."
    ),
    out: Path = typer.Option(..., "--out", help="Model folder to write."),
    config: Path = typer.Option(None, "--config", help="TOML file of training options."),
    fe_samples: int = typer.Option(
        0, "--fe-samples", help="Validation i-NN designs verified by FE (0: none)."
    ),
) -> None:
    """Train the f-NN (Eq. 6), then the i-NN through the frozen f-NN (Eq. 7)."""
    from rich.console import Console

    from metainv.spinodoid.learn.jobs import load_train_config, train_job

    console = Console(stderr=True)

    def on_epoch(stage: str, record: dict) -> None:
        if record["epoch"] % 20 == 0 or record["epoch"] == 1:
            console.print(
                f"{stage} epoch {record['epoch']:4d}  train {record['train_loss']:.3e}  "
                f"val {record['validation_loss']:.3e}  lr {record['learning_rate']:.1e}"
            )

    metrics = train_job(data, out, load_train_config(config), on_epoch, fe_samples)
    summary = (
        f"[green]done[/]: {out} in {metrics['training_seconds']:.0f} s; validation R² min: "
        f"f-NN {metrics['forward_r2_min']:.4f}, i-NN via f-NN "
        f"{metrics['inverse_r2_forward_model_min']:.4f}"
    )
    if "inverse_r2_fe_min" in metrics:
        summary += f", i-NN via FE {metrics['inverse_r2_fe_min']:.4f}"
    console.print(summary)


@evaluate_app.command("spinodoid")
@handle_errors
def evaluate_spinodoid(
    data: Path = typer.Option(..., "--data", help="Held-out data set."),
    model: Path = typer.Option(None, "--model", help="Model folder (default: shipped model)."),
    fe_samples: int = typer.Option(500, "--fe-samples", help="i-NN designs verified by FE."),
    noise_floor: bool = typer.Option(
        False, "--noise-floor", help="Also re-homogenize the true designs with new fields."
    ),
    seed: int = typer.Option(0, "--seed", help="Rows and field realizations of the FE check."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """R² per constant: f-NN vs FE, and i-NN designs reconstructed by the f-NN and by FE."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    from rich.table import Table

    from metainv.spinodoid.learn.evaluate import SpinodoidEvaluationSettings
    from metainv.spinodoid.learn.jobs import evaluate_job

    settings = SpinodoidEvaluationSettings(
        fe_samples=fe_samples, seed=seed, noise_floor=noise_floor
    )
    total = fe_samples * (2 if noise_floor else 1)
    with Progress(
        "FE verification",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task("fe", total=total)
        metrics = evaluate_job(model, data, settings, lambda: progress.advance(task))
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    table = Table(title=f"spinodoid models on {data} ({metrics['rows']} rows)")
    columns = ["forward_r2", "inverse_r2_forward_model", "inverse_r2_fe", "noise_floor_r2"]
    titles = ["f-NN R²", "i-NN R² (f-NN)", "i-NN R² (FE)", "noise floor R²"]
    present = [(c, t) for c, t in zip(columns, titles, strict=True) if c in metrics]
    table.add_column("constant")
    for _, title in present:
        table.add_column(title, justify="right")
    for name in metrics["forward_r2"]:
        table.add_row(name, *(f"{metrics[c][name]:.4f}" for c, _ in present))
    Console().print(table)


def design_spinodoid(
    target: str,
    out: Path,
    unit: str | None,
    base_modulus: str | None,
    model: Path | None,
    top: int,
    verify: bool,
    seed: int,
    as_json: bool,
) -> None:
    """``metainv design TARGET --family spinodoid``: i-NN designs in the fitted orthotropic
    frame, polished by the f-NN and verified by voxel FE, connected networks ranked first;
    OUT/designs.json, STL and PNG."""
    import json
    import time

    from rich.console import Console
    from rich.table import Table

    from metainv.cli._errors import fail
    from metainv.spinodoid.learn.artifacts import load_spinodoid_models
    from metainv.spinodoid.learn.inverse import (
        SpinodoidDesignSettings,
        design_for_target,
        write_design_outputs,
    )
    from metainv.targets import read_target

    if top < 1:
        raise fail(f"--top must be >= 1, got {top}")
    console = Console(stderr=True)
    start = time.perf_counter()
    models = load_spinodoid_models(model)
    loaded = read_target(target, unit=unit, base_modulus=base_modulus)
    settings = SpinodoidDesignSettings(top=top, pool=max(4, top), verify=verify, seed=seed)
    candidates, fit = design_for_target(
        models, loaded.stiffness, settings, on_step=lambda m: console.print(f"  {m}")
    )
    document = write_design_outputs(
        loaded.stiffness, candidates, out, fit, models.resolution, models.threshold
    )
    elapsed = time.perf_counter() - start
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    table = Table(
        title=f"spinodoid designs for {loaded.name} ({elapsed:.1f} s) -> {out}/designs.json"
    )
    for column in ("#", "rho", "theta (deg)", "rotation (deg)", "NMSE f-NN", "NMSE FE", "network"):
        table.add_column(column, justify="right")
    for rank, candidate in enumerate(candidates, start=1):
        design = candidate.design
        angle = _rotation_angle(design.rotation_matrix)
        table.add_row(
            str(rank),
            f"{design.relative_density:.3f}",
            ", ".join(f"{t:.1f}" for t in design.theta),
            f"{angle:.1f}",
            f"{candidate.nmse_forward:.4f}",
            "-" if candidate.nmse_fe is None else f"{candidate.nmse_fe:.4f}",
            "-"
            if candidate.connectivity is None
            else ("connected" if candidate.connectivity["connected"] else "[yellow]pieces[/]"),
        )
    Console().print(table)


def _rotation_angle(rotation: Any) -> float:
    import numpy as np

    return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1))))
