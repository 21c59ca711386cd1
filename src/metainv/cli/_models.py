"""``metainv train truss`` and ``metainv evaluate truss``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from metainv.cli._app import app
from metainv.cli._errors import fail, handle_errors

train_app = typer.Typer(help="Train forward and inverse models.")
evaluate_app = typer.Typer(help="Evaluate trained models against FE data.")
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")


@train_app.command("truss")
@handle_errors
def train_truss(
    data: Path = typer.Option(..., "--data", help="Training data set (metainv generate truss)."),
    out: Path = typer.Option(..., "--out", help="Model folder to write (resumes checkpoints)."),
    config: Path = typer.Option(None, "--config", help="TOML file of training options."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
) -> None:
    """Train F1, F2, then the inverse model G through the frozen forward model."""
    from metainv.truss.learn.jobs import load_train_config, train_job

    console = Console(stderr=True)

    def on_epoch(stage: str, record: dict) -> None:
        console.print(
            f"{stage} epoch {record['epoch']:3d}  train {record['train_loss']:.3e}  "
            f"val {record['validation_loss']:.3e}  lr {record['learning_rate']:.1e}  "
            f"{record['seconds']:.1f}s"
        )

    metrics = train_job(data, out, load_train_config(config), device, on_epoch)
    console.print(
        f"[green]done[/]: {out}  forward R² min {metrics['forward_r2_min']:.4f}, "
        f"inverse R² (F) min {metrics['inverse_r2_forward_model_min']:.4f}, "
        f"inverse R² (FE) min {metrics['inverse_r2_fe_min']:.4f}"
    )


@evaluate_app.command("truss")
@handle_errors
def evaluate_truss(
    data: Path = typer.Option(..., "--data", help="Held-out data set."),
    model: Path = typer.Option(None, "--model", help="Model folder (default: shipped model)."),
    fe_samples: int = typer.Option(300, "--fe-samples", help="Inverse designs verified by FE."),
    tau: float = typer.Option(1.0, "--tau", help="Gumbel temperature for the diversity draws."),
    lookup: Path = typer.Option(None, "--lookup", help="Data set for the lookup baseline."),
    polish_steps: int = typer.Option(
        0, "--polish-steps", help="Also evaluate designs polished through F (Adam steps)."
    ),
    library_neighbours: int = typer.Option(
        1,
        "--library-neighbours",
        help="Pipeline metrics: library designs per target next to the inverse model's "
        "(0 skips them; needs a model with a design library).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """R² of forward and inverse models (by the forward model and by FE), NMSE, diversity."""
    if polish_steps < 0:
        raise fail(f"--polish-steps must be >= 0, got {polish_steps}")
    if library_neighbours < 0:
        raise fail(f"--library-neighbours must be >= 0, got {library_neighbours}")
    from metainv.truss.learn.evaluate import EvaluationSettings
    from metainv.truss.learn.jobs import evaluate_job

    settings = EvaluationSettings(
        fe_samples=fe_samples,
        tau=tau,
        polish_steps=polish_steps,
        library_neighbours=library_neighbours,
    )
    metrics = evaluate_job(model, data, settings, lookup)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    table = Table(title=f"truss models on {data} ({metrics['rows']} rows)")
    columns = {
        "forward R²": "forward_r2",
        "inverse R² (F)": "inverse_r2_forward_model",
        "inverse R² (FE)": "inverse_r2_fe",
        "pipeline R² (F)": "pipeline_r2_forward_model",
        "pipeline R² (FE)": "pipeline_r2_fe",
        "rotated lookup R² (FE)": "rotated_lookup_r2_fe",
    }
    columns = {title: key for title, key in columns.items() if key in metrics}
    table.add_column("Cij", justify="right")
    for title in columns:
        table.add_column(title, justify="right")
    for name in metrics["forward_r2"]:
        table.add_row(name, *(f"{metrics[key][name]:.4f}" for key in columns.values()))
    console = Console()
    console.print(table)
    for key in (
        "nmse_forward",
        "nmse_inverse_forward_model",
        "nmse_inverse_fe",
        "nmse_lookup_baseline",
        "nmse_polished_forward_model",
        "nmse_polished_fe",
        "nmse_rotated_lookup_fe",
        "nmse_pipeline_forward_model",
        "nmse_pipeline_fe",
    ):
        if key in metrics:
            console.print(
                f"{key}: median {metrics[key]['median']:.4f}, p90 {metrics[key]['p90']:.4f}"
            )
    console.print(f"topology diversity (two seeds, tau={tau}): {metrics['topology_diversity']:.3f}")
    if polish_steps:
        console.print(
            f"polished through F ({polish_steps} steps): R² min (F) "
            f"{metrics['polished_r2_forward_model_min']:.4f}, "
            f"(FE) {metrics['polished_r2_fe_min']:.4f}"
        )
