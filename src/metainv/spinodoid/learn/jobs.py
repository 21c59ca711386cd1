"""End-to-end jobs behind ``metainv train spinodoid`` and ``metainv evaluate spinodoid``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from metainv.data.shards import dataset_record
from metainv.nn.artifacts import save_models
from metainv.nn.train import EpochCallback, torch_scope
from metainv.spinodoid.learn.artifacts import load_spinodoid_models
from metainv.spinodoid.learn.data import (
    SpinodoidData,
    concatenate_data,
    load_published_data,
    load_spinodoid_data,
)
from metainv.spinodoid.learn.evaluate import (
    SpinodoidEvaluationSettings,
    evaluate_spinodoid_models,
    parity_plot,
)
from metainv.spinodoid.learn.nets import DESIGN_NAMES, FAMILY, STIFFNESS_NAMES, SpinodoidModels
from metainv.spinodoid.learn.train import (
    SpinodoidTrainConfig,
    load_train_config,
    resolve_density_range,
    resolve_fidelity,
    train_spinodoid_models,
)

logger = logging.getLogger(__name__)

__all__ = ["evaluate_job", "load_train_config", "train_job"]


def train_job(
    data_folder: Path | list[Path],
    out: Path,
    config: SpinodoidTrainConfig = SpinodoidTrainConfig(),
    on_epoch: EpochCallback | None = None,
    fe_samples: int = 0,
    published: Path | None = None,
) -> dict[str, Any]:
    """Train on ``data_folder`` (one or several data sets) and optionally the ``published``
    data.csv, write the model folder ``out``; return validation metrics.

    Data at several FE resolutions (e.g. our 24^3 and 64^3 sets plus the published set, which
    counts as 22^3) train a multi-fidelity f-NN that predicts at the finest resolution
    (:mod:`metainv.spinodoid.learn.nets`). ``fe_samples`` validation designs are verified by FE
    at that resolution (0: f-NN metrics only).
    """
    folders = [Path(f) for f in (data_folder if isinstance(data_folder, list) else [data_folder])]
    out = Path(out)
    start = time.perf_counter()
    sets = [load_spinodoid_data(folder) for folder in folders]
    if published is not None:
        sets.append(load_published_data(published))
    resolutions = {int(s.manifest["params"]["resolution"]) for s in sets}
    data = concatenate_data(sets, multi_fidelity=len(resolutions) > 1)
    config = resolve_fidelity(resolve_density_range(config, data), data)
    with torch_scope(threads=1):
        return _train_and_save(data, sets, out, config, on_epoch, fe_samples, start)


def _source_record(data: SpinodoidData) -> dict[str, Any]:
    """Identity of one training source for the model manifest."""
    params = data.manifest["params"]
    if "sha256" in data.manifest:  # the published data.csv
        record = {"file": str(data.folder), "sha256": data.manifest["sha256"]}
        record["source"] = data.manifest["source"]
        record["rows"] = len(data.theta)
    else:
        record = dataset_record(data.folder)
    return {**record, "resolution": int(params["resolution"]), "threshold": params["threshold"]}


def _train_and_save(data, sets, out, config, on_epoch, fe_samples, start) -> dict[str, Any]:
    trained = train_spinodoid_models(data, config, on_epoch, out / "checkpoints")
    training_seconds = round(time.perf_counter() - start, 1)
    params = data.manifest["params"]
    sources = [_source_record(s) for s in sets]
    config_dict = {
        "family": FAMILY,
        "net": config.net.to_dict(),
        "training": config.to_dict(),
        "data": {
            "resolution": int(params["resolution"]),
            "threshold": params["threshold"],
            "kind": params.get("kind", "solid"),
            "n_waves": params.get("n_waves"),
            "beta": params.get("beta"),
            "relative_density": params["relative_density"],
            "fidelities": sorted({int(r) for r in data.resolution}),
        },
        "stiffness_names": list(STIFFNESS_NAMES),
        "design_names": list(DESIGN_NAMES),
    }
    models = SpinodoidModels(trained.forward, trained.inverse, config_dict, {}, out)
    validation = data.subset(trained.validation_index)
    metrics = evaluate_spinodoid_models(
        models, validation, SpinodoidEvaluationSettings(fe_samples=fe_samples, seed=config.seed)
    )
    metrics["split"] = "validation"
    metrics["training_seconds"] = training_seconds
    metrics["train_rows"] = len(trained.train_index)
    manifest = {
        "data": sources,
        "seed": config.seed,
        "metrics": metrics,
    }
    networks = {"forward": trained.forward, "inverse": trained.inverse}
    save_models(out, networks, config_dict, manifest)
    (out / "history.json").write_text(json.dumps(trained.histories))
    with torch.no_grad():
        parity_plot(
            validation.stiffness,
            models.predict_stiffness(validation.theta),
            out / "parity_forward.png",
            "f-NN vs FE (validation)",
        )
        parity_plot(
            validation.stiffness,
            models.predict_stiffness(models.predict_designs(validation.stiffness)),
            out / "parity_inverse.png",
            "i-NN designs reconstructed by the f-NN (validation)",
        )
    return metrics


def evaluate_job(
    model: Path | None,
    data_folder: Path,
    settings: SpinodoidEvaluationSettings = SpinodoidEvaluationSettings(),
    on_design: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Metrics of a model folder (default model if None) on a held-out data set."""
    models = load_spinodoid_models(model)
    data = load_spinodoid_data(data_folder)
    params = data.manifest["params"]
    if int(params["resolution"]) != models.resolution or params["threshold"] != models.threshold:
        logger.warning(
            "data at %s^3 (%s level) but model trained at %s^3 (%s level)",
            params["resolution"],
            params["threshold"],
            models.resolution,
            models.threshold,
        )
    with torch_scope(threads=1):
        metrics = evaluate_spinodoid_models(models, data, settings, on_design)
    metrics["data"] = dataset_record(Path(data_folder))
    metrics["model"] = str(models.folder)
    return metrics
