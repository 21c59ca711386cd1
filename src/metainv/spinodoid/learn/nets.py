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

Multi-fidelity f-NN (our extension, issue 17): with ``SpinodoidNetConfig.fidelity_resolution``
set, the f-NN takes a fifth input, the voxel size of the FE that labelled a row,
:func:`fidelity_feature` ``= 16 / n`` (n voxels per cell edge; the published data set counts as
``REFERENCE_RESOLUTION`` = 22, where our FE reproduces it), and is trained on many coarse rows
(the published set, our 24^3 data) and fewer converged ones (64^3). Voxel FE of solid networks
converges about linearly in the voxel size (``docs/spinodoid_convergence.md``), so the coarse rows
fix the shape of ``S(Theta)`` and the fine rows its converged level. Queried without a
resolution, it predicts at ``fidelity_resolution`` (the converged grid); the i-NN is trained
through it at that fidelity.

Artifacts (:mod:`metainv.spinodoid.learn.artifacts`): ``model.safetensors`` (``forward.*``,
``inverse.*`` state_dict incl. scaler buffers), ``config.json``, ``manifest.json``, the layout of
every family (:mod:`metainv.nn.artifacts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from metainv.errors import MetainvError
from metainv.nn.layers import MinMaxScaler, mlp
from metainv.spinodoid.dataset import DESIGN_NAMES, STIFFNESS_NAMES

FAMILY = "spinodoid"
#: Angle snapping (spec): below SNAP_OFF_DEG -> 0, in [SNAP_OFF_DEG, THETA_MIN) -> THETA_MIN.
SNAP_OFF_DEG = 7.5
THETA_MIN_DEG = 15.0
THETA_MAX_DEG = 90.0
#: Voxels per cell edge at which the fidelity feature is 1 (:func:`fidelity_feature`).
FIDELITY_UNIT_RESOLUTION = 16.0


def fidelity_feature(resolution: Any, like: torch.Tensor) -> torch.Tensor:
    """The f-NN's fidelity input (B, 1): voxel size ``16 / n`` for ``n`` voxels per cell edge.

    ``resolution``: an int, or (B,) per row; returned in the dtype and batch of ``like`` (B, 4).
    """
    n = torch.as_tensor(resolution, dtype=like.dtype, device=like.device)
    return (FIDELITY_UNIT_RESOLUTION / n).expand(like.shape[:-1]).unsqueeze(-1)


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
    #: Multi-fidelity f-NN (module docstring): the resolution it predicts by default; ``None``:
    #: a single-fidelity f-NN of ``Theta`` only.
    fidelity_resolution: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpinodoidNetConfig:
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        )


class SpinodoidForward(nn.Module):
    """f-NN: physical ``Theta`` (B, 4) -> physical ``S`` (B, 9) (paper Eq. 6); a multi-fidelity
    f-NN also takes the FE resolution (int or (B,)), by default its ``fidelity_resolution``."""

    def __init__(self, config: SpinodoidNetConfig = SpinodoidNetConfig()) -> None:
        super().__init__()
        self.fidelity_resolution = config.fidelity_resolution
        inputs = 4 if config.fidelity_resolution is None else 5
        self.design_scaler = MinMaxScaler(4)
        self.stiffness_scaler = MinMaxScaler(9)
        self.net = mlp((inputs, *config.forward_hidden, 9), config.negative_slope)

    def scaled(self, theta_design: torch.Tensor, resolution: Any = None) -> torch.Tensor:
        """Prediction in scaled units (the training loss is taken there)."""
        features = self.design_scaler(theta_design)
        if self.fidelity_resolution is not None:
            n = self.fidelity_resolution if resolution is None else resolution
            features = torch.cat([features, fidelity_feature(n, features)], dim=-1)
        return self.net(features)

    def forward(self, theta_design: torch.Tensor, resolution: Any = None) -> torch.Tensor:
        return self.stiffness_scaler.inverse(self.scaled(theta_design, resolution))


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

    @property
    def multi_fidelity(self) -> bool:
        """Whether the f-NN takes the FE resolution as an input (module docstring)."""
        return self.forward.fidelity_resolution is not None

    def predict_stiffness(
        self, theta_design: np.ndarray, resolution: int | None = None
    ) -> np.ndarray:
        """f-NN ``S`` (N, 9) of ``Theta`` (N, 4); a multi-fidelity f-NN at ``resolution``
        (default: its converged ``fidelity_resolution``), a single-fidelity one ignores it."""
        with torch.no_grad():
            theta = torch.as_tensor(theta_design, dtype=torch.float32)
            return self.forward(theta, resolution).double().numpy()


__all__ = [
    "DESIGN_NAMES",
    "FAMILY",
    "STIFFNESS_NAMES",
    "SpinodoidForward",
    "SpinodoidInverse",
    "SpinodoidModels",
    "SpinodoidNetConfig",
    "fidelity_feature",
    "snap_angles",
    "snap_design",
]
