"""Training of the truss forward stages F1, F2 and the inverse model G (SI Sec. 3.C).

Protocol (paper): F1 and F2 are trained separately on their own labels with MSE; then G is
trained through the frozen forward model on the stiffness reconstruction loss only. Ours adds,
through the shared loop :func:`metainv.nn.train.run_stage`, validation-based early stopping, LR
decay on plateau, the true epoch-mean loss and per-epoch checkpoints that resume; and random
extra rotations of the inverse model's targets (exact, via Bond rotation: no FE needed).

Optional last stage (``inverse_refit_epochs > 0``): the topology head G1 is frozen and the
geometry head G2 is refitted on ``NMSE + w * mean_c (C_pred,c - C_c)^2 / Var_c`` (``w =
inverse_component_weight``; ``Var_c`` the training set's variance of each of the 21 constants,
so the second term estimates the mean ``1 - R^2`` over the components). The NMSE alone weighs
every target by ``1 / |C|^2`` and so neglects the stiff targets that dominate the per-component
R^2; the straight-through topology gradient made the full G unstable at this point (its training
loss rose again), hence G1 frozen and the gradient norm clipped (``inverse_refit_max_grad_norm``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metainv.errors import MetainvError
from metainv.nn.train import (
    EpochCallback,
    LoopSettings,
    run_stage,
    split_indices,
    torch_scope,
    tuples,
)
from metainv.tensors import c21_from_matrix, matrix_from_c21, random_rotations, rotate_stiffness
from metainv.truss.design import STRETCH_RANGE
from metainv.truss.learn.data import TrussTensors
from metainv.truss.learn.models import (
    ForwardConfig,
    ForwardModel,
    InverseConfig,
    InverseModel,
    axis_reversal_signs,
    design_stiffness,
    inverse_training_loss,
    nmse_loss,
    stretch_order,
    unit_interval,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters (ours, for a 2-core CPU; the paper's GPU sizes are in the spec).

    ``library_rows > 0`` also stores that many training rows (seeded subset) as the model's
    rotation-aware design library (:mod:`metainv.truss.learn.library`); 0 stores none."""

    seed: int = 0
    validation_fraction: float = 0.05
    batch_size: int = 1024
    forward_epochs: int = 60
    inverse_epochs: int = 40
    forward_learning_rate: float = 1e-3
    inverse_learning_rate: float = 5e-4
    lr_patience: int = 3
    lr_factor: float = 0.5
    early_stopping_patience: int = 8
    min_learning_rate: float = 1e-5
    tau: float = 1.0
    inverse_refit_epochs: int = 0
    inverse_refit_learning_rate: float = 1e-4
    inverse_component_weight: float = 3.0
    inverse_refit_max_grad_norm: float = 1.0
    max_rows: int | None = None
    library_rows: int = 0
    forward: ForwardConfig = field(default_factory=ForwardConfig)
    inverse: InverseConfig = field(default_factory=InverseConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        forward = ForwardConfig(**tuples(data.pop("forward", {})))
        inverse = InverseConfig(**tuples(data.pop("inverse", {})))
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise MetainvError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(forward=forward, inverse=inverse, **data)

    def loop(self, epochs: int, learning_rate: float, **options) -> LoopSettings:
        """Settings of one stage of the shared loop (plateau schedule, early stopping)."""
        return LoopSettings(
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=self.batch_size,
            seed=self.seed,
            schedule="plateau",
            lr_factor=self.lr_factor,
            lr_patience=self.lr_patience,
            min_learning_rate=self.min_learning_rate,
            early_stopping_patience=self.early_stopping_patience,
            **options,
        )


# ----------------------------------------------------------------------------- stage data


def stage1_label(data: TrussTensors) -> torch.Tensor:
    """c21 of the stage-1 stiffness per unit density (N, 21)."""
    return c21_from_matrix(data.stage1_C / data.rho[:, None, None])


def stage2_input(data: TrussTensors) -> torch.Tensor:
    """Stage-1 stiffness per unit density rotated by R1 (N, 6, 6): F2's input."""
    return rotate_stiffness(data.stage1_C / data.rho[:, None, None], data.R1)


def stage2_label(data: TrussTensors) -> torch.Tensor:
    """Final stiffness per unit density with R2 undone, ``Bond(R2^T) C / rho`` (N, 21)."""
    unrotated = rotate_stiffness(data.C, data.R2.transpose(-1, -2))
    return c21_from_matrix(unrotated / data.rho[:, None, None])


def stage2_pairs(forward: ForwardModel, data: TrussTensors):
    """F2's unscaled inputs c21 (N, 21), stretches V (N, 3) and labels c21 (N, 21), in the
    frame that sorts V when the model works in it (:meth:`ForwardModel.stage2`)."""
    inputs, V = stage2_input(data), data.V
    labels = matrix_from_c21(stage2_label(data))
    if forward.config.canonical_stretch:
        order = stretch_order(V)
        inputs, labels = rotate_stiffness(inputs, order), rotate_stiffness(labels, order)
        V = (order @ V[..., None])[..., 0]
    return c21_from_matrix(inputs), V, c21_from_matrix(labels)


def _with_reversals(values: torch.Tensor, forward: ForwardModel) -> torch.Tensor:
    """``values`` (N, 21) and, when F2 is trained on axis reversals, their 3 reversed copies."""
    if not forward.config.canonical_stretch:
        return values
    return (values[None] * axis_reversal_signs(values.dtype)[:, None]).flatten(0, 1)


def fit_scalers(forward: ForwardModel, inverse: InverseModel, train: TrussTensors) -> None:
    """Min-max scalers from the training split only (SI Eq. 3)."""
    forward.stage1_label.fit(stage1_label(train))
    inputs, _, labels = stage2_pairs(forward, train)
    forward.stage2_input.fit(_with_reversals(inputs, forward))
    forward.stage2_label.fit(_with_reversals(labels, forward))
    rng = np.random.default_rng(0)
    augmented = rotate_stiffness(
        train.C, torch.as_tensor(random_rotations(len(train), rng), dtype=train.C.dtype)
    )
    features = [inverse.frame_and_features(C)[1] for C in (train.C, augmented)]
    inverse.target_scaler.fit(torch.cat(features))


# ----------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class TrainedModels:
    forward: ForwardModel
    inverse: InverseModel
    histories: dict[str, list[dict[str, float]]]
    train_index: torch.Tensor
    validation_index: torch.Tensor


def train_truss_models(
    data: TrussTensors,
    config: TrainConfig,
    checkpoint_folder: Path,
    on_epoch: EpochCallback | None = None,
) -> TrainedModels:
    """F1, then F2, then G through the frozen F (paper protocol, our sizes). Torch's global
    RNG is seeded with ``config.seed`` for the initial weights and restored after."""
    with torch_scope(seed=config.seed):
        return _train_truss_models(data, config, checkpoint_folder, on_epoch)


def _train_truss_models(data, config, checkpoint_folder, on_epoch) -> TrainedModels:
    checkpoint_folder.mkdir(parents=True, exist_ok=True)
    if config.max_rows is not None:
        data = data.subset(torch.arange(min(config.max_rows, len(data))))
    train_index, validation_index = (
        torch.as_tensor(index)
        for index in split_indices(len(data), config.validation_fraction, config.seed)
    )
    train, validation = data.subset(train_index), data.subset(validation_index)
    forward, inverse = ForwardModel(config.forward), InverseModel(config.inverse)
    fit_scalers(forward, inverse, train)
    histories: dict[str, list[dict[str, float]]] = {}

    # F1: (topology, rho, U) -> stage-1 stiffness per unit density.
    x1 = forward.stage1_features(train.onehot, train.rho, train.U)
    y1 = forward.stage1_label(stage1_label(train)).float()
    x1_val = forward.stage1_features(validation.onehot, validation.rho, validation.U)
    y1_val = forward.stage1_label(stage1_label(validation)).float()
    mse = torch.nn.functional.mse_loss
    histories["F1"] = run_stage(
        "F1",
        forward.f1,
        lambda index, _: mse(forward.f1(x1[index]), y1[index]),
        len(train),
        lambda: float(mse(forward.f1(x1_val), y1_val)),
        config.loop(config.forward_epochs, config.forward_learning_rate),
        checkpoint_folder / "F1.pt",
        on_epoch,
    ).history

    # F2: (Bond(R1) C1 / rho, V) -> Bond(R2^T) C / rho, trained on the FE stage-1 stiffness,
    # in the frame that sorts V and on random axis reversals (exact symmetries, models.py).
    inputs2, V2, labels2 = stage2_pairs(forward, train)
    inputs2_val, V2_val, labels2_val = stage2_pairs(forward, validation)
    stretch2 = unit_interval(V2, STRETCH_RANGE).float()
    x2_val = torch.cat(
        [forward.stage2_input(inputs2_val).float(), unit_interval(V2_val, STRETCH_RANGE)], -1
    ).float()
    y2_val = forward.stage2_label(labels2_val).float()
    reversals = axis_reversal_signs(inputs2.dtype)
    reversal_generator = torch.Generator().manual_seed(config.seed + 3)

    def stage2_loss(index: torch.Tensor, epoch: int) -> torch.Tensor:
        inputs, labels = inputs2[index], labels2[index]
        if forward.config.canonical_stretch:
            signs = reversals[torch.randint(4, (len(index),), generator=reversal_generator)]
            inputs, labels = inputs * signs, labels * signs
        features = torch.cat([forward.stage2_input(inputs).float(), stretch2[index]], -1)
        return mse(forward.f2(features), forward.stage2_label(labels).float())

    histories["F2"] = run_stage(
        "F2",
        forward.f2,
        stage2_loss,
        len(train),
        lambda: float(mse(forward.f2(x2_val), y2_val)),
        config.loop(config.forward_epochs, config.forward_learning_rate),
        checkpoint_folder / "F2.pt",
        on_epoch,
    ).history

    # G through the frozen F, NMSE reconstruction loss, targets randomly re-rotated.
    forward.eval()
    forward.requires_grad_(False)
    rotation_rng = np.random.default_rng(config.seed + 1)

    def inverse_loss(index: torch.Tensor, epoch: int) -> torch.Tensor:
        target = train.C[index]
        extra = torch.as_tensor(random_rotations(len(index), rotation_rng), dtype=target.dtype)
        target = rotate_stiffness(target, extra)
        return inverse_training_loss(target, design_stiffness(forward, inverse(target, config.tau)))

    def inverse_validation() -> float:
        # the same Gumbel draws every epoch, so that epochs compare on equal terms
        generator = torch.Generator().manual_seed(config.seed + 2)
        design = inverse(validation.C, config.tau, generator=generator)
        return float(nmse_loss(validation.C, design_stiffness(forward, design)))

    histories["G"] = run_stage(
        "G",
        inverse,
        inverse_loss,
        len(train),
        inverse_validation,
        config.loop(config.inverse_epochs, config.inverse_learning_rate),
        checkpoint_folder / "G.pt",
        on_epoch,
    ).history
    if config.inverse_refit_epochs > 0:
        histories["G2-refit"] = _refit_geometry_head(
            forward, inverse, train, validation, config, checkpoint_folder, on_epoch
        )
    return TrainedModels(forward, inverse, histories, train_index, validation_index)


def component_loss(
    target: torch.Tensor, predicted: torch.Tensor, variance: torch.Tensor
) -> torch.Tensor:
    """``mean_{b,c} (C_pred,bc - C_bc)^2 / Var_c`` over the 21 constants: the batch estimate of
    the mean ``1 - R^2`` over the components. Shapes (B, 6, 6), (B, 6, 6), (21,)."""
    residual = c21_from_matrix(predicted) - c21_from_matrix(target)
    return (residual.pow(2) / variance).mean()


def _refit_geometry_head(forward, inverse, train, validation, config, checkpoint_folder, on_epoch):
    """The optional last stage (module docstring): G1 frozen, G2 on NMSE + component loss."""
    variance = c21_from_matrix(train.C).double().var(0).to(train.C.dtype)
    weight = config.inverse_component_weight
    inverse.g1.requires_grad_(False)

    def loss(target: torch.Tensor, design: dict[str, torch.Tensor]) -> torch.Tensor:
        predicted = design_stiffness(forward, design)
        base = inverse_training_loss(target, predicted)
        return base + weight * component_loss(target, predicted, variance)

    def refit_loss(index: torch.Tensor, epoch: int) -> torch.Tensor:
        target = train.C[index]
        return loss(target, inverse(target, config.tau))

    def refit_validation() -> float:
        generator = torch.Generator().manual_seed(config.seed + 2)
        return float(loss(validation.C, inverse(validation.C, config.tau, generator=generator)))

    try:
        return run_stage(
            "G2-refit",
            inverse,
            refit_loss,
            len(train),
            refit_validation,
            config.loop(
                config.inverse_refit_epochs,
                config.inverse_refit_learning_rate,
                max_grad_norm=config.inverse_refit_max_grad_norm,
            ),
            checkpoint_folder / "G2-refit.pt",
            on_epoch,
        ).history
    finally:
        inverse.g1.requires_grad_(True)
