r"""Forward (f-NN) and inverse (i-NN) networks for spinodoids (Kumar et al. 2020, Fig. 4).

* f-NN ``F: Theta -> S`` maps ``Theta = (rho, theta1, theta2, theta3)`` onto the 9 orthotropic
  constants ``S = (C11, C12, C13, C22, C23, C33, C44, C55, C66) / E_s``, trained on the mean
  squared error (paper Eq. 6). Reference architecture (spec): 4 -> 128, 128, 64, 64, 32, 32 -> 9.
* i-NN ``G: S -> Theta``, 9 -> 6 x 100 -> 4, trained through the *frozen* f-NN on
  (paper Eq. 7)

  .. math:: \frac1n \sum_i \|F[G[S_i]] - S_i\|^2 + \lambda \|G[S_i] - \Theta_i\|^2,

  with ``lambda = prediction_weight`` (0.5) for the first ``prediction_epochs`` (40) epochs and
  0 afterwards (spec, schedule from the authors' code). ``S`` and ``Theta`` enter both terms
  min-max scaled to [-1, 1] per component (:class:`metainv.nn.layers.MinMaxScaler`), so every
  constant weighs the same.

The i-NN's output layer is bounded: ``rho = lo + (hi - lo) sigmoid(.)`` within the data's
density range (``SpinodoidNetConfig.density_range``; ``None``, the default, takes the smallest
interval that holds the ``relative_density`` ranges of all training data sets, e.g. [0.15, 0.9]
for the published range plus the low-density extension) and ``theta_j = 90 sigmoid(.)`` deg.
Angles are then snapped to the design space (spec: below 7.5 deg to 0, from 7.5 to 15 deg to 15,
see :func:`snap_angles`). During training the snap is applied in the forward pass with a
straight-through gradient (``snap_in_training``), so the reconstruction loss is always evaluated
at a realizable design: the f-NN never saw angles in (0, 15) deg and would otherwise be queried
where it has no data.

Artifacts (:func:`save_spinodoid_models`): ``model.safetensors`` (``forward.*``, ``inverse.*``
state_dict incl. scaler buffers), ``config.json``, ``manifest.json`` (data checksum, seed, code
version, metrics), the same layout as the truss models (:mod:`metainv.nn.artifacts`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from metainv.errors import MetainvError
from metainv.nn.artifacts import CONFIG, MANIFEST, WEIGHTS, save_models
from metainv.nn.layers import MinMaxScaler, mlp
from metainv.tensors import r2_score

logger = logging.getLogger(__name__)

FAMILY = "spinodoid"
#: Names of the 9 orthotropic constants (paper: the vector S).
STIFFNESS_NAMES = ("C11", "C12", "C13", "C22", "C23", "C33", "C44", "C55", "C66")
#: Names of the design parameters Theta.
DESIGN_NAMES = ("relative_density", "theta1", "theta2", "theta3")
#: Angle snapping (spec): below SNAP_OFF_DEG -> 0, in [SNAP_OFF_DEG, THETA_MIN) -> THETA_MIN.
SNAP_OFF_DEG = 7.5
THETA_MIN_DEG = 15.0
THETA_MAX_DEG = 90.0
#: Epoch callback: (stage "forward" | "inverse", record) -> None.
EpochCallback = Callable[[str, dict[str, Any]], None]


# ------------------------------------------------------------------------------ snapping


def snap_angles(theta: Any) -> Any:
    """Snap cone angles (..., 3) in degrees to the design space ``{0} U [15, 90]`` (spec).

    Angles below 7.5 deg become 0 (cone off), those in [7.5, 15) become 15, the rest are
    clipped to [15, 90]. Should every angle of a design snap to 0, its largest one becomes 15
    (a design needs one cone). Works on numpy arrays and torch tensors (no gradient).
    """
    if isinstance(theta, torch.Tensor):
        snapped = torch.where(
            theta < SNAP_OFF_DEG,
            torch.zeros_like(theta),
            theta.clamp(THETA_MIN_DEG, THETA_MAX_DEG),
        )
        dead = (snapped == 0).all(dim=-1, keepdim=True)
        largest = torch.nn.functional.one_hot(theta.argmax(dim=-1), 3).to(torch.bool)
        return torch.where(dead & largest, torch.full_like(theta, THETA_MIN_DEG), snapped)
    theta = np.asarray(theta, dtype=float)
    snapped = np.where(theta < SNAP_OFF_DEG, 0.0, np.clip(theta, THETA_MIN_DEG, THETA_MAX_DEG))
    dead = np.all(snapped == 0, axis=-1, keepdims=True)
    largest = np.arange(3) == np.argmax(theta, axis=-1)[..., None]
    return np.where(dead & largest, THETA_MIN_DEG, snapped)


def snap_design(theta_design: torch.Tensor) -> torch.Tensor:
    """Snap the angles of ``Theta`` (..., 4) with a straight-through gradient."""
    angles = theta_design[..., 1:]
    snapped = angles + (snap_angles(angles.detach()) - angles.detach())
    return torch.cat([theta_design[..., :1], snapped], dim=-1)


# ------------------------------------------------------------------------------ networks


@dataclass(frozen=True)
class SpinodoidNetConfig:
    """Architecture of both networks and the bounds of the i-NN's outputs."""

    forward_hidden: tuple[int, ...] = (128, 128, 64, 64, 32, 32)
    inverse_hidden: tuple[int, ...] = (100, 100, 100, 100, 100, 100)
    negative_slope: float = 0.01
    #: Bounds of the i-NN's relative density; ``None``: the training data's range.
    density_range: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpinodoidNetConfig:
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        )


class SpinodoidForward(nn.Module):
    """f-NN: physical ``Theta`` (B, 4) -> physical ``S`` (B, 9) (paper Eq. 6)."""

    def __init__(self, config: SpinodoidNetConfig = SpinodoidNetConfig()) -> None:
        super().__init__()
        self.design_scaler = MinMaxScaler(4)
        self.stiffness_scaler = MinMaxScaler(9)
        self.net = mlp((4, *config.forward_hidden, 9), config.negative_slope)

    def scaled(self, theta_design: torch.Tensor) -> torch.Tensor:
        """Prediction in scaled units (the training loss is taken there)."""
        return self.net(self.design_scaler(theta_design))

    def forward(self, theta_design: torch.Tensor) -> torch.Tensor:
        return self.stiffness_scaler.inverse(self.scaled(theta_design))


class SpinodoidInverse(nn.Module):
    """i-NN: physical ``S`` (B, 9) -> continuous physical ``Theta`` (B, 4), before snapping."""

    def __init__(self, config: SpinodoidNetConfig = SpinodoidNetConfig()) -> None:
        super().__init__()
        self.stiffness_scaler = MinMaxScaler(9)
        self.net = mlp((9, *config.inverse_hidden, 4), config.negative_slope)
        if config.density_range is None:
            raise MetainvError("the i-NN needs a density range (resolved from the data)")
        low, high = config.density_range
        self.register_buffer("low", torch.tensor([low, 0.0, 0.0, 0.0], dtype=torch.float64))
        self.register_buffer(
            "span", torch.tensor([high - low, THETA_MAX_DEG, THETA_MAX_DEG, THETA_MAX_DEG])
        )

    def forward(self, stiffness: torch.Tensor) -> torch.Tensor:
        raw = torch.sigmoid(self.net(self.stiffness_scaler(stiffness)))
        return self.low.to(raw.dtype) + self.span.to(raw.dtype) * raw


@dataclass(frozen=True)
class SpinodoidModels:
    """A loaded f-NN / i-NN pair with its config and manifest."""

    forward: SpinodoidForward
    inverse: SpinodoidInverse
    config: dict[str, Any]
    manifest: dict[str, Any]
    folder: Path

    @property
    def resolution(self) -> int:
        """Voxel resolution of the training data (and of FE verification)."""
        return int(self.config["data"]["resolution"])

    @property
    def threshold(self) -> str:
        return str(self.config["data"]["threshold"])

    def predict_designs(self, stiffness: np.ndarray) -> np.ndarray:
        """Snapped ``Theta`` (N, 4) predicted by the i-NN for ``S`` (N, 9)."""
        with torch.no_grad():
            theta = self.inverse(torch.as_tensor(stiffness, dtype=torch.float32)).double()
        theta = theta.numpy()
        theta[:, 1:] = snap_angles(theta[:, 1:])
        return theta

    def predict_stiffness(self, theta_design: np.ndarray) -> np.ndarray:
        """f-NN ``S`` (N, 9) of ``Theta`` (N, 4)."""
        with torch.no_grad():
            return self.forward(torch.as_tensor(theta_design, dtype=torch.float32)).double().numpy()


# ------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class SpinodoidData:
    """Design parameters ``Theta`` (N, 4), stiffness ``S`` (N, 9), seeds (N,) and the manifest."""

    theta: np.ndarray
    stiffness: np.ndarray
    seed: np.ndarray
    manifest: dict[str, Any]
    folder: Path

    def subset(self, index: np.ndarray) -> SpinodoidData:
        return replace(
            self, theta=self.theta[index], stiffness=self.stiffness[index], seed=self.seed[index]
        )


def load_spinodoid_data(folder: str | Path) -> SpinodoidData:
    """Read a complete data set of ``metainv generate spinodoid`` (checksums verified)."""
    from metainv.data.shards import complete_manifest, read_dataset

    folder = Path(folder)
    manifest = complete_manifest(folder)
    if manifest.get("family") != FAMILY:
        raise MetainvError(
            f"{folder} holds {manifest.get('family')!r} data; expected a spinodoid data set "
            "(metainv generate spinodoid)"
        )
    table = read_dataset(folder, columns=[*DESIGN_NAMES, "seed", *STIFFNESS_NAMES])
    theta = np.stack([table[name].to_numpy() for name in DESIGN_NAMES], axis=1)
    stiffness = np.stack([table[name].to_numpy() for name in STIFFNESS_NAMES], axis=1)
    return SpinodoidData(
        theta.astype(float), stiffness.astype(float), table["seed"].to_numpy(), manifest, folder
    )


def data_record(folder: Path) -> dict[str, Any]:
    """Identity of a data set for a model manifest (checksum of its manifest)."""
    from metainv.data.shards import MANIFEST_NAME, file_sha256, read_manifest

    manifest = read_manifest(folder) or {}
    return {
        "folder": str(folder),
        "manifest_sha256": file_sha256(Path(folder) / MANIFEST_NAME),
        "rows": manifest.get("n_rows"),
        "seed": manifest.get("seed"),
        "code_version": manifest.get("code_version"),
    }


# ------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class SpinodoidTrainConfig:
    """Training options (defaults follow the spec's reference protocol where it has one:
    batch 64, Adam, lambda 0.5 for the first 40 epochs; the learning rate is higher than the
    reference 1e-4, with cosine decay, so that a few hundred epochs on CPU suffice)."""

    seed: int = 0
    validation_fraction: float = 0.1
    batch_size: int = 64
    forward_epochs: int = 400
    inverse_epochs: int = 300
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5
    prediction_weight: float = 0.5
    prediction_epochs: int = 40
    snap_in_training: bool = True
    net: SpinodoidNetConfig = SpinodoidNetConfig()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["net"] = self.net.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpinodoidTrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MetainvError(f"unknown training option {unknown[0]!r}; known: {sorted(known)}")
        values = dict(data)
        if "net" in values:
            values["net"] = SpinodoidNetConfig.from_dict(values["net"])
        return cls(**values)


@dataclass(frozen=True)
class TrainedSpinodoid:
    forward: SpinodoidForward
    inverse: SpinodoidInverse
    train_index: np.ndarray
    validation_index: np.ndarray
    histories: dict[str, list[dict[str, Any]]]


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train / validation split (at least one row each when n >= 2)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(fraction * n)), n - 1) if n >= 2 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _cosine(config: SpinodoidTrainConfig, epochs: int) -> Callable[[int], float]:
    ratio = config.final_learning_rate / config.learning_rate

    def factor(epoch: int) -> float:
        return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * min(epoch / epochs, 1.0)))

    return factor


def _batches(n: int, size: int, generator: torch.Generator) -> list[torch.Tensor]:
    return list(torch.randperm(n, generator=generator).split(size))


def train_forward(
    theta: torch.Tensor,
    stiffness: torch.Tensor,
    validation: tuple[torch.Tensor, torch.Tensor],
    config: SpinodoidTrainConfig,
    on_epoch: EpochCallback | None = None,
) -> tuple[SpinodoidForward, list[dict[str, Any]]]:
    """Fit the f-NN on scaled MSE (paper Eq. 6); returns the best-validation weights."""
    torch.manual_seed(config.seed)
    model = SpinodoidForward(config.net)
    model.design_scaler.fit(theta)
    model.stiffness_scaler.fit(stiffness)
    target = model.stiffness_scaler(stiffness).float()
    val_theta, val_stiffness = validation
    val_target = model.stiffness_scaler(val_stiffness).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(config, config.forward_epochs))
    generator = torch.Generator().manual_seed(config.seed)
    best, best_state, history = math.inf, None, []
    for epoch in range(config.forward_epochs):
        start = time.perf_counter()
        model.train()
        total = 0.0
        for batch in _batches(len(theta), config.batch_size, generator):
            loss = torch.mean((model.scaled(theta[batch]) - target[batch]) ** 2)  # Eq. 6
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        schedule.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(torch.mean((model.scaled(val_theta) - val_target) ** 2))
        record = _record(epoch, total / len(theta), val_loss, optimizer, start)
        history.append(record)
        if on_epoch is not None:
            on_epoch("forward", record)
        if val_loss < best:
            best, best_state = val_loss, _copy_state(model)
    model.load_state_dict(best_state)
    model.eval()
    return model, history


def inverse_loss(
    forward: SpinodoidForward,
    inverse: SpinodoidInverse,
    stiffness: torch.Tensor,
    theta: torch.Tensor,
    prediction_weight: float,
    snap: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper Eq. 7 in scaled units: (total, reconstruction) losses of one batch."""
    predicted = inverse(stiffness)
    realized = snap_design(predicted) if snap else predicted
    reconstruction = torch.mean(
        (forward.scaled(realized) - forward.stiffness_scaler(stiffness).float()) ** 2
    )
    if prediction_weight == 0:
        return reconstruction, reconstruction
    scaler = forward.design_scaler
    prediction = torch.mean((scaler(predicted) - scaler(theta).float()) ** 2)
    return reconstruction + prediction_weight * prediction, reconstruction


def train_inverse(
    forward: SpinodoidForward,
    stiffness: torch.Tensor,
    theta: torch.Tensor,
    validation: tuple[torch.Tensor, torch.Tensor],
    config: SpinodoidTrainConfig,
    on_epoch: EpochCallback | None = None,
) -> tuple[SpinodoidInverse, list[dict[str, Any]]]:
    """Fit the i-NN through the frozen f-NN (paper Eq. 7, scheduled lambda)."""
    torch.manual_seed(config.seed + 1)
    for parameter in forward.parameters():
        parameter.requires_grad_(False)
    forward.eval()
    model = SpinodoidInverse(config.net)
    model.stiffness_scaler.load_state_dict(forward.stiffness_scaler.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(config, config.inverse_epochs))
    generator = torch.Generator().manual_seed(config.seed + 1)
    val_theta, val_stiffness = validation
    best, best_state, history = math.inf, None, []
    for epoch in range(config.inverse_epochs):
        start = time.perf_counter()
        weight = config.prediction_weight if epoch < config.prediction_epochs else 0.0
        model.train()
        total = 0.0
        for batch in _batches(len(theta), config.batch_size, generator):
            loss, _ = inverse_loss(
                forward, model, stiffness[batch], theta[batch], weight, config.snap_in_training
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        schedule.step()
        model.eval()
        with torch.no_grad():  # selection on the reconstruction of snapped designs
            _, val_loss = inverse_loss(forward, model, val_stiffness, val_theta, 0.0, True)
        record = _record(epoch, total / len(theta), float(val_loss), optimizer, start)
        record["prediction_weight"] = weight
        history.append(record)
        if on_epoch is not None:
            on_epoch("inverse", record)
        if epoch >= config.prediction_epochs - 1 and float(val_loss) < best:
            best, best_state = float(val_loss), _copy_state(model)
    model.load_state_dict(best_state if best_state is not None else _copy_state(model))
    model.eval()
    return model, history


def _record(
    epoch: int, train_loss: float, val_loss: float, optimizer: Any, start: float
) -> dict[str, Any]:
    return {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "validation_loss": val_loss,
        "learning_rate": optimizer.param_groups[0]["lr"],
        "seconds": round(time.perf_counter() - start, 3),
    }


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_spinodoid_models(
    data: SpinodoidData,
    config: SpinodoidTrainConfig = SpinodoidTrainConfig(),
    on_epoch: EpochCallback | None = None,
) -> TrainedSpinodoid:
    """f-NN, then i-NN through the frozen f-NN, on a random train / validation split."""
    config = resolve_density_range(config, data)
    train_index, validation_index = split_indices(
        len(data.theta), config.validation_fraction, config.seed
    )
    theta = torch.as_tensor(data.theta, dtype=torch.float32)
    stiffness = torch.as_tensor(data.stiffness, dtype=torch.float32)
    validation = (theta[validation_index], stiffness[validation_index])
    forward, forward_history = train_forward(
        theta[train_index], stiffness[train_index], validation, config, on_epoch
    )
    inverse, inverse_history = train_inverse(
        forward,
        stiffness[train_index],
        theta[train_index],
        (validation[0], validation[1]),
        config,
        on_epoch,
    )
    return TrainedSpinodoid(
        forward,
        inverse,
        train_index,
        validation_index,
        {"forward": forward_history, "inverse": inverse_history},
    )


# ------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class SpinodoidEvaluationSettings:
    """fe_samples: i-NN designs verified by FE (0: none); seed: choice of those rows and of
    the designs' field realizations; noise_floor: also re-homogenize the *true* designs with a
    fresh realization (the R^2 a perfect inverse model could reach)."""

    fe_samples: int = 500
    seed: int = 0
    noise_floor: bool = False


def _r2_dict(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(STIFFNESS_NAMES, r2_score(true, predicted), strict=True)}


def _nmse_stats(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from metainv.tensors import matrix_from_orthotropic9, nmse

    errors = nmse(matrix_from_orthotropic9(true), matrix_from_orthotropic9(predicted))
    return {
        "median": float(np.median(errors)),
        "mean": float(np.mean(errors)),
        "p90": float(np.quantile(errors, 0.9)),
    }


def fe_stiffness(
    theta_design: np.ndarray,
    seeds: np.ndarray,
    resolution: int,
    threshold: str,
    on_design: Callable[[], None] | None = None,
) -> np.ndarray:
    """Voxel-FE ``S`` (N, 9) of designs ``Theta`` (N, 4) with the given field seeds."""
    from metainv.spinodoid.dataset import generation_parameters, label_design
    from metainv.spinodoid.design import SpinodoidDesign
    from metainv.tensors import orthotropic9_from_matrix

    params = generation_parameters(resolution, threshold)
    out = np.empty((len(theta_design), 9))
    for row, (values, seed) in enumerate(zip(theta_design, seeds, strict=True)):
        design = SpinodoidDesign(float(values[0]), values[1:], seed=int(seed))
        out[row] = orthotropic9_from_matrix(label_design(design, params)[0])
        if on_design is not None:
            on_design()
    return out


def evaluate_spinodoid_models(
    models: SpinodoidModels,
    data: SpinodoidData,
    settings: SpinodoidEvaluationSettings = SpinodoidEvaluationSettings(),
    on_design: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """R^2 per component of the f-NN, and of i-NN designs reconstructed by f-NN and by FE.

    FE verification homogenizes each snapped i-NN design at the data's resolution and level
    rule with a fresh field realization (a seed the data never used for that row).
    """
    forward_S = models.predict_stiffness(data.theta)
    designs = models.predict_designs(data.stiffness)
    inverse_S = models.predict_stiffness(designs)
    metrics: dict[str, Any] = {
        "rows": len(data.theta),
        "forward_r2": _r2_dict(data.stiffness, forward_S),
        "inverse_r2_forward_model": _r2_dict(data.stiffness, inverse_S),
        "nmse_forward": _nmse_stats(data.stiffness, forward_S),
        "nmse_inverse_forward_model": _nmse_stats(data.stiffness, inverse_S),
        "snapped_angle_share": {
            "zero": float(np.mean(designs[:, 1:] == 0)),
            "fifteen": float(np.mean(designs[:, 1:] == THETA_MIN_DEG)),
        },
    }
    metrics["forward_r2_min"] = min(metrics["forward_r2"].values())
    metrics["inverse_r2_forward_model_min"] = min(metrics["inverse_r2_forward_model"].values())
    count = min(settings.fe_samples, len(data.theta))
    if count > 0:
        rng = np.random.default_rng(settings.seed)
        rows = np.sort(rng.choice(len(data.theta), size=count, replace=False))
        seeds = rng.integers(0, 2**31 - 1, size=count)
        start = time.perf_counter()
        fe_S = fe_stiffness(designs[rows], seeds, models.resolution, models.threshold, on_design)
        metrics["fe_samples"] = count
        metrics["fe_resolution"] = models.resolution
        metrics["fe_seconds"] = round(time.perf_counter() - start, 1)
        metrics["inverse_r2_fe"] = _r2_dict(data.stiffness[rows], fe_S)
        metrics["inverse_r2_fe_min"] = min(metrics["inverse_r2_fe"].values())
        metrics["nmse_inverse_fe"] = _nmse_stats(data.stiffness[rows], fe_S)
        if settings.noise_floor:
            again = fe_stiffness(
                data.theta[rows], seeds, models.resolution, models.threshold, on_design
            )
            metrics["noise_floor_r2"] = _r2_dict(data.stiffness[rows], again)
            metrics["noise_floor_r2_min"] = min(metrics["noise_floor_r2"].values())
    return metrics


def parity_plot(true: np.ndarray, predicted: np.ndarray, out_path: Path, title: str) -> Path:
    """9 parity panels (predicted vs true with the identity line) in one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 10))
    FigureCanvasAgg(figure)
    scores = _r2_dict(true, predicted)
    for k, name in enumerate(STIFFNESS_NAMES):
        axes = figure.add_subplot(3, 3, k + 1)
        axes.scatter(true[:, k], predicted[:, k], s=2, alpha=0.4, rasterized=True)
        low = min(true[:, k].min(), predicted[:, k].min())
        high = max(true[:, k].max(), predicted[:, k].max())
        axes.plot([low, high], [low, high], color="k", linewidth=0.7)
        axes.set_title(f"{name} / E_s   R² = {scores[name]:.4f}", fontsize=10)
    figure.suptitle(title)
    figure.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=100)
    return out_path


# ------------------------------------------------------------------------------ artifacts


def default_model_folder() -> Path:
    """Folder of the spinodoid model shipped with metainv."""
    return Path(str(resources.files("metainv") / "models" / "spinodoid"))


def save_spinodoid_models(
    folder: Path,
    forward: SpinodoidForward,
    inverse: SpinodoidInverse,
    config: dict[str, Any],
    manifest: dict[str, Any],
) -> None:
    """Weights (safetensors), config and manifest, as for the truss models."""
    save_models(folder, forward, inverse, config, manifest)  # type: ignore[arg-type]


def load_spinodoid_models(folder: str | Path | None = None) -> SpinodoidModels:
    """Load a spinodoid model folder (the shipped default when ``folder`` is None)."""
    folder = default_model_folder() if folder in (None, "default") else Path(folder)
    for name in (WEIGHTS, CONFIG):
        if not (folder / name).exists():
            raise MetainvError(
                f"{folder} is not a spinodoid model folder (missing {name}); train one with "
                "`metainv train spinodoid` or omit --model for the default"
            )
    config = json.loads((folder / CONFIG).read_text())
    if config.get("family") != FAMILY:
        raise MetainvError(f"{folder} holds a {config.get('family')!r} model, not a spinodoid one")
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    net = SpinodoidNetConfig.from_dict(config["net"])
    tensors = load_file(str(folder / WEIGHTS))
    forward, inverse = SpinodoidForward(net), SpinodoidInverse(net)
    forward.load_state_dict(_prefixed(tensors, "forward."))
    inverse.load_state_dict(_prefixed(tensors, "inverse."))
    forward.eval()
    inverse.eval()
    return SpinodoidModels(forward, inverse, config, manifest, folder)


def _prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


# ------------------------------------------------------------------------------ jobs


def load_train_config(path: Path | None) -> SpinodoidTrainConfig:
    """Training options from a TOML file (keys of :class:`SpinodoidTrainConfig`)."""
    if path is None:
        return SpinodoidTrainConfig()
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as error:
        raise MetainvError(f"{path} is not valid TOML: {error}") from None
    return SpinodoidTrainConfig.from_dict(data)


def concatenate_data(sets: list[SpinodoidData]) -> SpinodoidData:
    """Rows of several data sets generated with the same geometry and FE settings.

    The relative-density ranges may differ (e.g. the published 0.3-0.9 and the low-density
    extension 0.15-0.3); the result's manifest records the smallest interval holding them all.
    """
    keys = ("resolution", "threshold", "kind", "n_waves", "beta", "boundary")
    first = sets[0].manifest["params"]
    for other in sets[1:]:
        for key in keys:
            if other.manifest["params"].get(key) != first.get(key):
                raise MetainvError(
                    f"data sets {sets[0].folder} and {other.folder} differ in {key} "
                    f"({first.get(key)!r} vs {other.manifest['params'].get(key)!r})"
                )
    ranges = np.array([s.manifest["params"]["relative_density"] for s in sets], dtype=float)
    manifest = dict(sets[0].manifest)
    manifest["params"] = {
        **first,
        "relative_density": [float(ranges[:, 0].min()), float(ranges[:, 1].max())],
    }
    return replace(
        sets[0],
        manifest=manifest,
        theta=np.concatenate([s.theta for s in sets]),
        stiffness=np.concatenate([s.stiffness for s in sets]),
        seed=np.concatenate([s.seed for s in sets]),
    )


def resolve_density_range(
    config: SpinodoidTrainConfig, data: SpinodoidData
) -> SpinodoidTrainConfig:
    """``config`` with ``net.density_range`` set to the data's range when it is ``None``."""
    if config.net.density_range is not None:
        return config
    low, high = (float(v) for v in data.manifest["params"]["relative_density"])
    return replace(config, net=replace(config.net, density_range=(low, high)))


def train_job(
    data_folder: Path | list[Path],
    out: Path,
    config: SpinodoidTrainConfig = SpinodoidTrainConfig(),
    on_epoch: EpochCallback | None = None,
    fe_samples: int = 0,
) -> dict[str, Any]:
    """Train on ``data_folder`` (one or several data sets), write the model folder ``out``;
    return validation metrics.

    ``fe_samples`` validation designs are verified by FE (0: f-NN metrics only).
    """
    from metainv.data.shards import code_version

    folders = [Path(f) for f in (data_folder if isinstance(data_folder, list) else [data_folder])]
    out = Path(out)
    start = time.perf_counter()
    data = concatenate_data([load_spinodoid_data(folder) for folder in folders])
    config = resolve_density_range(config, data)
    torch.set_num_threads(1)
    trained = train_spinodoid_models(data, config, on_epoch)
    training_seconds = round(time.perf_counter() - start, 1)
    params = data.manifest["params"]
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
        "family": FAMILY,
        "data": [data_record(folder) for folder in folders],
        "seed": config.seed,
        "code_version": code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parameters": sum(p.numel() for p in trained.forward.parameters())
        + sum(p.numel() for p in trained.inverse.parameters()),
        "metrics": metrics,
    }
    save_spinodoid_models(out, trained.forward, trained.inverse, config_dict, manifest)
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
    torch.set_num_threads(1)
    metrics = evaluate_spinodoid_models(models, data, settings, on_design)
    metrics["data"] = data_record(Path(data_folder))
    metrics["model"] = str(models.folder)
    return metrics
