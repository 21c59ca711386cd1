"""Evaluation of the truss models: forward R^2 against FE, inverse R^2 reconstructed by the
forward model AND verified by FE (the paper only did the former), NMSE distributions, topology
diversity and the lookup-table baseline (SI Sec. 3.G)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metainv.tensors import C21_NAMES, c21_from_matrix, nmse, r2_score
from metainv.truss.homogenize import homogenize_many
from metainv.truss.learn.data import TrussTensors
from metainv.truss.learn.decode import designs_from_outputs, inverse_decode, inverse_draw
from metainv.truss.learn.inverse import inverse_pipeline, polish_with_forward
from metainv.truss.learn.library import DesignLibrary, library_stiffness, nearest_rows
from metainv.truss.learn.models import ForwardModel, InverseModel, design_stiffness

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationSettings:
    """fe_samples: inverse designs verified by FE; tau: Gumbel temperature of the draws;
    polish_steps: when > 0, the inverse designs are also evaluated after that many Adam steps of
    :func:`metainv.truss.learn.inverse.polish_with_forward` (batch mode ``--polish-steps``);
    library_neighbours: with a design library, the pipeline metrics (G plus that many library
    designs per target, polished by ``polish_steps``, best by F; 0 skips them)."""

    fe_samples: int = 300
    tau: float = 1.0
    polish_steps: int = 0
    library_neighbours: int = 1
    seed: int = 0
    batch_size: int = 8192


def _batched(function, n: int, batch_size: int) -> torch.Tensor:
    return torch.cat([function(slice(lo, lo + batch_size)) for lo in range(0, n, batch_size)])


@torch.no_grad()
def forward_predictions(forward: ForwardModel, data: TrussTensors, batch_size: int = 8192):
    """Forward-model stiffness of every row (N, 6, 6)."""
    return _batched(
        lambda s: forward(
            data.onehot[s], data.rho[s], data.U[s], data.V[s], data.R1[s], data.R2[s]
        ),
        len(data),
        batch_size,
    )


def _summary(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=float)
    return {
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
    }


def _r2(true: torch.Tensor | np.ndarray, predicted: torch.Tensor | np.ndarray) -> dict[str, float]:
    scores = r2_score(
        c21_from_matrix(np.asarray(true, dtype=float)),
        c21_from_matrix(np.asarray(predicted, dtype=float)),
    )
    return dict(zip(C21_NAMES, (float(s) for s in scores), strict=True))


def evaluate_truss_models(
    forward: ForwardModel,
    inverse: InverseModel,
    data: TrussTensors,
    settings: EvaluationSettings = EvaluationSettings(),
    lookup_stiffness: np.ndarray | None = None,
    library: DesignLibrary | None = None,
) -> dict[str, Any]:
    """All metrics of the issue on a (held-out) data set; ``lookup_stiffness`` (M, 6, 6) is the
    training set's stiffness for the nearest-neighbour baseline; ``library`` adds the
    rotation-aware lookup and the pipeline metrics (:func:`_pipeline_metrics`)."""
    true = data.C.double().numpy()
    forward_C = forward_predictions(forward, data, settings.batch_size).double().numpy()
    decoded = inverse_decode(inverse, data.C)
    inverse_C = design_stiffness(forward, decoded).detach().double().numpy()

    rng = np.random.default_rng(settings.seed)
    sample = np.sort(rng.choice(len(data), size=min(settings.fe_samples, len(data)), replace=False))
    sample_outputs = {k: v[sample] for k, v in decoded.items()}
    fe_C = homogenize_many(designs_from_outputs(sample_outputs))

    first = inverse_draw(inverse, data.C, settings.tau, settings.seed)
    second = inverse_draw(inverse, data.C, settings.tau, settings.seed + 1)
    differs = (first["onehot"] != second["onehot"]).any(dim=-1).double().mean()

    metrics: dict[str, Any] = {
        "rows": len(data),
        "forward_r2": _r2(true, forward_C),
        "inverse_r2_forward_model": _r2(true, inverse_C),
        "inverse_r2_fe": _r2(true[sample], fe_C),
        "fe_samples": len(sample),
        "nmse_forward": _summary(nmse(true, forward_C)),
        "nmse_inverse_forward_model": _summary(nmse(true, inverse_C)),
        "nmse_inverse_fe": _summary(nmse(true[sample], fe_C)),
        "topology_diversity": float(differs),
        "tau": settings.tau,
    }
    if settings.polish_steps:
        metrics.update(_polished_metrics(forward, data, decoded, sample, settings.polish_steps))
    if library is not None and settings.library_neighbours:
        metrics.update(_pipeline_metrics(forward, inverse, library, data, sample, settings))
    if lookup_stiffness is not None:
        from metainv.data.lookup import nearest_stiffness

        _, lookup_nmse = nearest_stiffness(true[sample], lookup_stiffness)
        metrics["nmse_lookup_baseline"] = _summary(lookup_nmse)
    for key in ("forward_r2", "inverse_r2_forward_model", "inverse_r2_fe"):
        metrics[f"{key}_min"] = min(metrics[key].values())
    return metrics


def _pipeline_metrics(
    forward: ForwardModel,
    inverse: InverseModel,
    library: DesignLibrary,
    data: TrussTensors,
    sample: np.ndarray,
    settings: EvaluationSettings,
) -> dict[str, Any]:
    """The rotation-aware library lookup alone (exact: the stored FE stiffness rotated, no
    network) and the batch pipeline of :func:`metainv.truss.learn.inverse.inverse_pipeline`."""
    true = data.C.double().numpy()
    lookup_C = library_stiffness(library, nearest_rows(library, data.C).rows[:, 0], data.C)
    outputs, _, source = inverse_pipeline(
        forward,
        inverse,
        library,
        data.C,
        settings.library_neighbours,
        settings.polish_steps,
    )
    with torch.no_grad():
        pipeline_C = design_stiffness(forward, outputs).double().numpy()
    fe_C = homogenize_many(designs_from_outputs({k: v[sample] for k, v in outputs.items()}))
    metrics: dict[str, Any] = {
        "library_rows": len(library),
        "rotated_lookup_r2_fe": _r2(true, lookup_C.numpy()),
        "nmse_rotated_lookup_fe": _summary(nmse(true, lookup_C.numpy())),
        "pipeline_library_neighbours": settings.library_neighbours,
        "pipeline_polish_steps": settings.polish_steps,
        "pipeline_library_share": float((source > 0).double().mean()),
        "pipeline_r2_forward_model": _r2(true, pipeline_C),
        "pipeline_r2_fe": _r2(true[sample], fe_C),
        "nmse_pipeline_forward_model": _summary(nmse(true, pipeline_C)),
        "nmse_pipeline_fe": _summary(nmse(true[sample], fe_C)),
    }
    for key in ("rotated_lookup_r2_fe", "pipeline_r2_forward_model", "pipeline_r2_fe"):
        metrics[f"{key}_min"] = min(metrics[key].values())
    return metrics


def _polished_metrics(
    forward: ForwardModel,
    data: TrussTensors,
    decoded: dict[str, torch.Tensor],
    sample: np.ndarray,
    steps: int,
) -> dict[str, Any]:
    """The inverse metrics again after polishing every design through F (no FE in the loop)."""
    true = data.C.double().numpy()
    polished = polish_with_forward(forward, data.C, decoded, steps)
    with torch.no_grad():
        polished_C = design_stiffness(forward, polished).double().numpy()
    fe_C = homogenize_many(designs_from_outputs({k: v[sample] for k, v in polished.items()}))
    metrics: dict[str, Any] = {
        "polish_steps": steps,
        "polished_r2_forward_model": _r2(true, polished_C),
        "polished_r2_fe": _r2(true[sample], fe_C),
        "nmse_polished_forward_model": _summary(nmse(true, polished_C)),
        "nmse_polished_fe": _summary(nmse(true[sample], fe_C)),
    }
    for key in ("polished_r2_forward_model", "polished_r2_fe"):
        metrics[f"{key}_min"] = min(metrics[key].values())
    return metrics


def parity_plots(true: np.ndarray, predicted: np.ndarray, out_path: Path, title: str) -> Path:
    """21 parity panels (predicted vs true, identity line) in one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    true21, predicted21 = c21_from_matrix(true), c21_from_matrix(predicted)
    figure = Figure(figsize=(18, 11))
    FigureCanvasAgg(figure)
    scores = _r2(true, predicted)
    for k, name in enumerate(C21_NAMES):
        axes = figure.add_subplot(3, 7, k + 1)
        axes.scatter(true21[:, k], predicted21[:, k], s=1, alpha=0.3, rasterized=True)
        low = min(true21[:, k].min(), predicted21[:, k].min())
        high = max(true21[:, k].max(), predicted21[:, k].max())
        axes.plot([low, high], [low, high], color="k", linewidth=0.7)
        axes.set_title(f"{name}  R²={scores[name]:.3f}", fontsize=9)
        axes.tick_params(labelsize=6)
    figure.suptitle(title)
    figure.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=110)
    return out_path
