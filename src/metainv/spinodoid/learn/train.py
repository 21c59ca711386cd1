"""Training of the spinodoid f-NN (paper Eq. 6) and i-NN through the frozen f-NN (Eq. 7) on the
shared loop :func:`metainv.nn.train.run_stage` (cosine learning-rate decay, best validation
epoch kept, per-epoch checkpoints that resume)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metainv.errors import MetainvError
from metainv.nn.train import (
    EpochCallback,
    LoopSettings,
    read_options,
    run_stage,
    split_indices,
    torch_scope,
)
from metainv.spinodoid.learn.data import SpinodoidData
from metainv.spinodoid.learn.nets import (
    SpinodoidForward,
    SpinodoidInverse,
    SpinodoidNetConfig,
    snap_design,
)


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
    #: Multi-fidelity training: loss weight of the rows at the model's fidelity (the converged
    #: grid) relative to the coarse ones, which usually outnumber them 20 to 1.
    fine_weight: float = 5.0
    net: SpinodoidNetConfig = field(default_factory=SpinodoidNetConfig)

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

    def loop(self, epochs: int, seed: int, select_from_epoch: int = 0) -> LoopSettings:
        """Settings of one stage of the shared loop (cosine schedule, no early stopping)."""
        return LoopSettings(
            epochs=epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            seed=seed,
            schedule="cosine",
            final_learning_rate=self.final_learning_rate,
            select_from_epoch=select_from_epoch,
        )


def load_train_config(path: Path | None) -> SpinodoidTrainConfig:
    """Training options from a TOML file (keys of :class:`SpinodoidTrainConfig`)."""
    if path is None:
        return SpinodoidTrainConfig()
    return SpinodoidTrainConfig.from_dict(read_options(path))


def resolve_density_range(
    config: SpinodoidTrainConfig, data: SpinodoidData
) -> SpinodoidTrainConfig:
    """``config`` with ``net.density_range`` set to the data's range when it is ``None``."""
    if config.net.density_range is not None:
        return config
    low, high = (float(v) for v in data.manifest["params"]["relative_density"])
    return replace(config, net=replace(config.net, density_range=(low, high)))


def resolve_fidelity(config: SpinodoidTrainConfig, data: SpinodoidData) -> SpinodoidTrainConfig:
    """``config`` with ``net.fidelity_resolution`` set to the finest resolution of multi-fidelity
    data (rows from several FE resolutions) when it is ``None``."""
    if config.net.fidelity_resolution is not None or not data.multi_fidelity:
        return config
    finest = int(np.max(data.resolution))
    return replace(config, net=replace(config.net, fidelity_resolution=finest))


def _checkpoint(folder: Path | None, name: str) -> Path | None:
    return None if folder is None else Path(folder) / name


def _row_weights(resolution: torch.Tensor, config: SpinodoidTrainConfig) -> torch.Tensor:
    """Loss weight (N, 1) per row: ``fine_weight`` at the model's fidelity, 1 elsewhere."""
    fine = resolution == (config.net.fidelity_resolution or -1)
    return torch.where(fine, config.fine_weight, 1.0).float()[:, None]


def train_forward(
    theta: torch.Tensor,
    stiffness: torch.Tensor,
    validation: tuple[torch.Tensor, ...],
    config: SpinodoidTrainConfig,
    on_epoch: EpochCallback | None = None,
    checkpoint_folder: Path | None = None,
    resolution: torch.Tensor | None = None,
) -> tuple[SpinodoidForward, list[dict[str, Any]]]:
    """Fit the f-NN on scaled MSE (paper Eq. 6); returns the best-validation weights.

    Multi-fidelity (``config.net.fidelity_resolution`` set): ``resolution`` (N,) is the FE
    resolution of each row, also the third item of ``validation``; rows at the model's
    fidelity weigh ``fine_weight``.
    """
    with torch_scope(seed=config.seed):
        model = SpinodoidForward(config.net)
    model.design_scaler.fit(theta)
    model.stiffness_scaler.fit(stiffness)
    target = model.stiffness_scaler(stiffness).float()
    val_theta, val_stiffness = validation[:2]
    val_resolution = validation[2] if len(validation) > 2 else None
    val_target = model.stiffness_scaler(val_stiffness).float()
    if resolution is None:
        resolution = torch.full((len(theta),), -1)
    weights = _row_weights(resolution, config)

    def loss(batch: torch.Tensor, epoch: int) -> torch.Tensor:
        error = (model.scaled(theta[batch], resolution[batch]) - target[batch]) ** 2  # Eq. 6
        return torch.sum(weights[batch] * error) / (torch.sum(weights[batch]) * error.shape[1])

    def validation_loss() -> float:
        return float(torch.mean((model.scaled(val_theta, val_resolution) - val_target) ** 2))

    state = run_stage(
        "forward",
        model,
        loss,
        len(theta),
        validation_loss,
        config.loop(config.forward_epochs, config.seed),
        _checkpoint(checkpoint_folder, "forward.pt"),
        on_epoch,
    )
    return model, state.history


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
    checkpoint_folder: Path | None = None,
) -> tuple[SpinodoidInverse, list[dict[str, Any]]]:
    """Fit the i-NN through the frozen f-NN (paper Eq. 7, scheduled lambda); the best
    validation reconstruction of snapped designs is kept once lambda has dropped to 0."""
    for parameter in forward.parameters():
        parameter.requires_grad_(False)
    forward.eval()
    with torch_scope(seed=config.seed + 1):
        model = SpinodoidInverse(config.net)
    model.stiffness_scaler.load_state_dict(forward.stiffness_scaler.state_dict())
    val_theta, val_stiffness = validation

    def weight(epoch: int) -> float:
        return config.prediction_weight if epoch < config.prediction_epochs else 0.0

    def loss(batch: torch.Tensor, epoch: int) -> torch.Tensor:
        return inverse_loss(
            forward, model, stiffness[batch], theta[batch], weight(epoch), config.snap_in_training
        )[0]

    def validation_loss() -> float:  # selection on the reconstruction of snapped designs
        return float(inverse_loss(forward, model, val_stiffness, val_theta, 0.0, True)[1])

    state = run_stage(
        "inverse",
        model,
        loss,
        len(theta),
        validation_loss,
        config.loop(config.inverse_epochs, config.seed + 1, config.prediction_epochs - 1),
        _checkpoint(checkpoint_folder, "inverse.pt"),
        on_epoch,
        annotate=lambda epoch: {"prediction_weight": weight(epoch)},
    )
    return model, state.history


@dataclass(frozen=True)
class TrainedSpinodoid:
    forward: SpinodoidForward
    inverse: SpinodoidInverse
    train_index: np.ndarray
    validation_index: np.ndarray
    histories: dict[str, list[dict[str, Any]]]


def train_spinodoid_models(
    data: SpinodoidData,
    config: SpinodoidTrainConfig = SpinodoidTrainConfig(),
    on_epoch: EpochCallback | None = None,
    checkpoint_folder: Path | None = None,
) -> TrainedSpinodoid:
    """f-NN, then i-NN through the frozen f-NN, on a random train / validation split; with a
    ``checkpoint_folder`` every epoch is checkpointed and an interrupted run resumes there.

    Multi-fidelity data (:func:`resolve_fidelity`): the f-NN learns ``S(Theta, n)`` from all
    rows; the i-NN learns the converged ``S``: the rows at the model's fidelity keep their FE
    ``S``, the others get the f-NN's converged prediction, and it is validated on converged
    rows only.
    """
    config = resolve_fidelity(resolve_density_range(config, data), data)
    train_index, validation_index = split_indices(
        len(data.theta), config.validation_fraction, config.seed
    )
    theta = torch.as_tensor(data.theta, dtype=torch.float32)
    stiffness = torch.as_tensor(data.stiffness, dtype=torch.float32)
    resolution = torch.as_tensor(data.resolution)
    validation = (theta[validation_index], stiffness[validation_index])
    forward, forward_history = train_forward(
        theta[train_index],
        stiffness[train_index],
        (*validation, resolution[validation_index]),
        config,
        on_epoch,
        checkpoint_folder,
        resolution[train_index],
    )
    fidelity = config.net.fidelity_resolution
    if fidelity is not None:
        fine = resolution == fidelity
        with torch.no_grad():
            converged = torch.where(fine[:, None], stiffness, forward(theta, fidelity).float())
        stiffness = converged
        validation_index = validation_index[fine[validation_index].numpy()]
        validation = (theta[validation_index], stiffness[validation_index])
    inverse, inverse_history = train_inverse(
        forward,
        stiffness[train_index],
        theta[train_index],
        validation,
        config,
        on_epoch,
        checkpoint_folder,
    )
    return TrainedSpinodoid(
        forward,
        inverse,
        train_index,
        validation_index,
        {"forward": forward_history, "inverse": inverse_history},
    )
