"""Spinodoid handlers of ``metainv homogenize`` and ``metainv export`` (registered on import),
the spinodoid commands ``metainv generate spinodoid``, ``metainv train spinodoid`` and
``metainv evaluate spinodoid``, the ``--family spinodoid`` branch of ``metainv design``
(:func:`design_spinodoid`) and the spinodoid handler of ``metainv grade``.

``homogenize`` prints ``C`` (6x6, in the unit of ``--youngs-modulus``), the measured
``relative_density`` of the voxel grid and its ``resolution``; the truss-only keys
``strut_diameter``, ``nodes`` and ``struts`` are omitted. ``export`` writes an STL (cell edge
``--size``, default 1) or a PNG preview.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from metainv.cli._data import generate_app
from metainv.cli._errors import handle_errors
from metainv.cli._grade import register_grade_family
from metainv.cli._models import evaluate_app, train_app
from metainv.cli._truss import Family, register_family


def _from_dict(data: Mapping[str, Any]) -> Any:
    from metainv.spinodoid.design import design_from_dict

    return design_from_dict(data)


def _homogenize(
    design: Any, youngs_modulus: float, poisson_ratio: float, resolution: int | None = None
) -> dict[str, Any]:
    from metainv.spinodoid.homogenize import DEFAULT_RESOLUTION, homogenize_spinodoid

    result = homogenize_spinodoid(
        design,
        resolution=DEFAULT_RESOLUTION if resolution is None else resolution,
        youngs_modulus=youngs_modulus,
        poisson_ratio=poisson_ratio,
    )
    return {
        "C": [[float(c) for c in row] for row in result.C],
        "relative_density": float(result.relative_density),
        "resolution": int(result.resolution),
    }


def _export(
    design: Any,
    path: Path,
    cells: tuple[int, int, int],
    fmt: str | None,
    segments: int,
    size: float | None = None,
    resolution: int | None = None,
) -> None:
    from metainv.spinodoid.export import export_spinodoid

    del segments  # struts only
    export_spinodoid(
        design,
        path,
        fmt=fmt,
        resolution=resolution,
        cells=cells,
        size=1.0 if size is None else size,
    )


register_family(
    "spinodoid",
    Family(
        from_dict=_from_dict,
        homogenize=_homogenize,
        export=_export,
        options=frozenset({"resolution", "size"}),
    ),
)


@generate_app.command("spinodoid")
@handle_errors
def generate_spinodoid(
    n: int = typer.Option(..., "--n", help="Number of rows (designs)."),
    out: Path = typer.Option(..., "--out", help="Data-set folder (created; resumed if present)."),
    seed: int = typer.Option(0, "--seed", help="Seed; shard i uses SeedSequence([seed, i])."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    shard_size: int = typer.Option(100, "--shard-size", help="Rows per shard."),
    resolution: int = typer.Option(24, "--resolution", help="Voxels per cell edge of the FE."),
    density_range: tuple[float, float] = typer.Option(
        (0.3, 0.9),
        "--density-range",
        help="Relative density range LOW HIGH sampled uniformly (default: the published "
        "0.3 0.9; at least 0.15, our low-density extension).",
    ),
    backend: str = typer.Option("local", "--backend", help="local | dask"),
    scheduler: str = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default: a LocalCluster)."
    ),
) -> None:
    """Sample spinodoid designs Theta = (rho, theta1..3) and label them by voxel FE.

    The data do not depend on --workers or --backend. Interrupted runs resume when the same
    command is run again.
    """
    from metainv.cli._data import _generate
    from metainv.data import GenerationSpec
    from metainv.errors import DesignError
    from metainv.spinodoid.dataset import generation_parameters

    if resolution < 4:
        raise typer.BadParameter(f"--resolution must be >= 4, got {resolution}")
    try:
        params = generation_parameters(resolution, density_range=density_range)
    except DesignError as error:
        raise typer.BadParameter(f"--density-range: {error}") from None
    spec = GenerationSpec("spinodoid", n, shard_size, seed, params)
    _generate(spec, out, workers, backend, scheduler)


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

    from metainv.nn.spinodoid import load_train_config, train_job

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

    from metainv.nn.spinodoid import SpinodoidEvaluationSettings, evaluate_job

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
    from metainv.nn.spinodoid import load_spinodoid_models
    from metainv.spinodoid.inverse import (
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


_GRADE_OPTIONS = frozenset({"elements_per_cell", "stl"})


def grade_spinodoid_handler(
    controls: Sequence[tuple[tuple[float, float, float], Path]],
    box: tuple[float, float, float] | None,
    zeta: float,
    out: Path,
    *,
    body: Path | None = None,
    on_step: Callable[[str], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """``metainv grade --family spinodoid``: level-shifted fields of the control designs
    blended with normalized Gaussian weights ``exp(-zeta |x - c|^2)`` in the box (cell = RVE
    edge), a watertight STL, a PNG preview and ``graded.json``. ``--elements-per-cell`` sets the
    sampling per RVE edge (default 32); ``--no-stl`` skips the STL."""
    from metainv.errors import DesignError
    from metainv.spinodoid.graded import (
        GRADED_RESOLUTION,
        GradedControl,
        grade_spinodoid,
        load_control_design,
    )

    unknown = sorted(set(options) - _GRADE_OPTIONS)
    if unknown:
        raise DesignError(f"option {unknown[0]!r} does not apply to spinodoid grading")
    if body is not None or box is None:
        raise DesignError("spinodoid grading fills a box: give --box LX LY LZ (no --body)")
    if on_step is not None:
        on_step("blending the control fields")
    return grade_spinodoid(
        [GradedControl(point, load_control_design(path)) for point, path in controls],
        box,
        zeta,
        out,
        resolution=options.get("elements_per_cell") or GRADED_RESOLUTION,
        stl=options.get("stl", True),
    )


register_grade_family("spinodoid", grade_spinodoid_handler)
