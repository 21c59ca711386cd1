"""End-to-end jobs behind ``metainv train truss`` and ``metainv evaluate truss``."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from metainv.data.shards import dataset_record, file_sha256
from metainv.errors import MetainvError
from metainv.nn.artifacts import save_models
from metainv.nn.train import EpochCallback, read_options
from metainv.truss.learn.artifacts import FAMILY, load_models
from metainv.truss.learn.data import load_truss_tensors
from metainv.truss.learn.decode import inverse_decode
from metainv.truss.learn.evaluate import (
    EvaluationSettings,
    evaluate_truss_models,
    forward_predictions,
    parity_plots,
)
from metainv.truss.learn.library import LIBRARY, build_library, save_library
from metainv.truss.learn.models import design_stiffness
from metainv.truss.learn.train import TrainConfig, train_truss_models

logger = logging.getLogger(__name__)


def load_train_config(path: Path | None) -> TrainConfig:
    """Training options from a TOML file (keys as in :class:`TrainConfig`); defaults if None."""
    return TrainConfig() if path is None else TrainConfig.from_dict(read_options(path))


def train_job(
    data_folder: Path,
    out: Path,
    config: TrainConfig,
    device: str = "cpu",
    on_epoch: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train F1, F2, G on ``data_folder``; write the model folder ``out``; return metrics."""
    if device != "cpu" and not torch.cuda.is_available():
        raise MetainvError(f"--device {device} requested but no CUDA device is available")
    data_record = dataset_record(Path(data_folder))
    start = time.perf_counter()
    data = load_truss_tensors(data_folder)
    models = train_truss_models(data, config, out / "checkpoints", on_epoch)
    validation = data.subset(models.validation_index)
    library = None
    if config.library_rows > 0:
        library = build_library(data.subset(models.train_index), config.library_rows, config.seed)
    train_C = data.C[models.train_index].double().numpy()
    metrics = evaluate_truss_models(
        models.forward,
        models.inverse,
        validation,
        EvaluationSettings(fe_samples=200, tau=config.tau, seed=config.seed),
        lookup_stiffness=train_C,
        library=library,
    )
    metrics["split"] = "validation"
    metrics["training_seconds"] = round(time.perf_counter() - start, 1)
    metrics["epochs"] = {name: len(history) for name, history in models.histories.items()}
    with torch.no_grad():
        parity_plots(
            validation.C.double().numpy(),
            forward_predictions(models.forward, validation).double().numpy(),
            out / "parity_forward.png",
            "forward model vs FE (validation)",
        )
        parity_plots(
            validation.C.double().numpy(),
            design_stiffness(models.forward, inverse_decode(models.inverse, validation.C))
            .double()
            .numpy(),
            out / "parity_inverse.png",
            "inverse designs reconstructed by the forward model (validation)",
        )
    manifest = {"data": data_record, "seed": config.seed, "metrics": metrics}
    config_dict = {
        "family": FAMILY,
        "forward": config.forward.to_dict(),
        "inverse": config.inverse.to_dict(),
        "training": config.to_dict(),
    }
    out.mkdir(parents=True, exist_ok=True)
    if library is not None:
        save_library(library, out / LIBRARY, {"data": data_record, "rows": len(library)})
        manifest["library"] = {"rows": len(library), "sha256": file_sha256(out / LIBRARY)}
    elif (out / LIBRARY).exists():
        (out / LIBRARY).unlink()  # a stale library of an earlier run with other settings
    save_models(out, {"forward": models.forward, "inverse": models.inverse}, config_dict, manifest)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    (out / "history.json").write_text(json.dumps(models.histories, indent=2))
    return metrics


def evaluate_job(
    model: Path | None,
    data_folder: Path,
    settings: EvaluationSettings,
    lookup_folder: Path | None = None,
) -> dict[str, Any]:
    """Metrics of a model folder (default model if None) on a data set."""
    models = load_models(model)
    data = load_truss_tensors(data_folder)
    lookup = load_truss_tensors(lookup_folder).C.double().numpy() if lookup_folder else None
    metrics = evaluate_truss_models(
        models.forward, models.inverse, data, settings, lookup, models.library
    )
    metrics["data"] = dataset_record(Path(data_folder))
    metrics["model"] = str(models.folder)
    return metrics
