"""The spinodoid commands ``metainv train spinodoid`` and ``metainv evaluate spinodoid``
(``metainv design --family spinodoid`` goes through the family registry)."""

from __future__ import annotations

from pathlib import Path

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
    published: Path = typer.Option(
        None,
        "--published",
        help="Also train on the published data.csv of Kumar et al. 2020 (counts as 22^3 FE).",
    ),
) -> None:
    """Train the f-NN (Eq. 6), then the i-NN through the frozen f-NN (Eq. 7).

    Data at several FE resolutions (e.g. --data our-24 --data our-64 --published data.csv)
    train a multi-fidelity f-NN that predicts at the finest resolution."""
    from rich.console import Console

    from metainv.spinodoid.learn.jobs import load_train_config, train_job

    console = Console(stderr=True)

    def on_epoch(stage: str, record: dict) -> None:
        if record["epoch"] % 20 == 0 or record["epoch"] == 1:
            console.print(
                f"{stage} epoch {record['epoch']:4d}  train {record['train_loss']:.3e}  "
                f"val {record['validation_loss']:.3e}  lr {record['learning_rate']:.1e}"
            )

    metrics = train_job(data, out, load_train_config(config), on_epoch, fe_samples, published)
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
    scores = {c: metrics[c] for c in columns if c in metrics}
    present = [(c, t) for c, t in zip(columns, titles, strict=True) if c in metrics]
    for name, entry in metrics.get("inverse_r2_fe_by_density", {}).items():
        scores[name] = entry["r2"]
        present.append((name, f"i-NN R² (FE) rho {name} ({entry['rows']})"))
    table.add_column("constant")
    for _, title in present:
        table.add_column(title, justify="right")
    for name in metrics["forward_r2"]:
        table.add_row(name, *(f"{scores[c][name]:.4f}" for c, _ in present))
    Console().print(table)
    if "fe_resolution" in metrics:
        Console().print(
            f"FE at {metrics['fe_resolution']}^3: {metrics['fe_samples']} designs in "
            f"{metrics['fe_seconds']:.0f} s; median NMSE {metrics['nmse_inverse_fe']['median']:.4f}"
        )
