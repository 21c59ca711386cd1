r"""The truss forward model F and inverse model G (main Fig. 2; SI Sec. 3).

Forward (physics-guided, main Eq. 4): ``C = R2 . F2(R1 . F1(topology, rho, U), V)``, where
``.`` is the exact Bond rotation. Two physics-guided choices of ours, measured in the notes:

- both stages predict stiffness *per unit relative density*, ``C / rho``: stretch-dominated
  lattices then have labels of order one at every density, bending-dominated ones small;
- the first stage predicts all 21 constants of the unrotated stage-1 lattice, not only the 9
  orthotropic ones, since compounds with cell 6 carry shear couplings (spec section 2);
- F2 is equivariant under the symmetries of a stretch ``V = diag(V1, V2, V3)``: relabelling or
  reversing the axes turns input and output alike. F2 sees its input in the frame that sorts
  ``V`` ascending (exact, so permutations are never learned) and is trained on random axis
  reversals (exact augmentation, :func:`axis_reversal_signs`).

The inverse model likewise works in the target's material frame
(:func:`metainv.tensors.canonical_stiffness`): G sees ``Q^T . C`` and its second rotation is
composed as ``R2 = Q R2'``, so no network has to learn the target's orientation.

Inverse: ``G1(C)`` gives topology logits, sampled by straight-through Gumbel-softmax;
``G2(C, topology)`` gives ``rho, U, V`` through sigmoids into their ranges (SI Eqs. 5, 10) and
``R1, R2`` through the continuous 6-D representation (SI Eq. 6). The target enters as its shape
``C / ||C||`` and its magnitude ``log ||C||`` (Frobenius norm over the 36 entries), which
separates the density (magnitude) from topology, stretches and rotations (shape).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from metainv.nn.layers import (
    BondRotation,
    MinMaxScaler,
    mlp,
    straight_through_gumbel_softmax,
)
from metainv.tensors import (
    c21_from_matrix,
    canonical_stiffness,
    matrix_from_c21,
    rotate_stiffness,
    rotation_from_6d,
)
from metainv.truss.design import RELATIVE_DENSITY_RANGE, STRETCH_RANGE

#: Sizes of the six categorical topology blocks: S1, S2, S3 (7 cells) and t1, t2, t3 (2).
TOPOLOGY_BLOCKS: tuple[int, ...] = (7, 7, 7, 2, 2, 2)
TOPOLOGY_WIDTH = sum(TOPOLOGY_BLOCKS)


def topology_onehot(cells: torch.Tensor, tessellations: torch.Tensor) -> torch.Tensor:
    """Cells (B, 3) in 1..7 and tessellations (B, 3) in 1..2 -> one-hot (B, 27) in torch's
    default dtype; training and inference encode topologies with this one function."""
    blocks = [torch.nn.functional.one_hot(cells[:, k] - 1, 7) for k in range(3)]
    blocks += [torch.nn.functional.one_hot(tessellations[:, k] - 1, 2) for k in range(3)]
    return torch.cat(blocks, dim=1).to(torch.get_default_dtype())


def topology_from_onehot(onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`topology_onehot`: -> cells (B, 3), tessellations (B, 3) (int64)."""
    blocks = onehot.split(list(TOPOLOGY_BLOCKS), dim=-1)
    cells = torch.stack([b.argmax(dim=-1) + 1 for b in blocks[:3]], dim=-1)
    tessellations = torch.stack([b.argmax(dim=-1) + 1 for b in blocks[3:]], dim=-1)
    return cells, tessellations


def unit_interval(values: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Min-max scale into [0, 1] with the design ranges (SI Eq. 2)."""
    low, high = bounds
    return (values - low) / (high - low)


def from_unit_interval(values: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Inverse of :func:`unit_interval` (SI Eq. 10)."""
    low, high = bounds
    return values * (high - low) + low


@dataclass(frozen=True)
class ForwardConfig:
    """Hidden-layer widths of the two forward stages (ours, sized for a 2-core CPU)."""

    stage1_hidden: tuple[int, ...] = (256, 256, 256)
    stage2_hidden: tuple[int, ...] = (512, 512, 512)
    #: F2 in the frame that sorts V ascending (False in models saved before this option).
    canonical_stretch: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InverseConfig:
    """Hidden-layer widths of G1 and G2."""

    topology_hidden: tuple[int, ...] = (512, 512, 256)
    geometry_hidden: tuple[int, ...] = (512, 512, 512, 256)
    #: G in the target's material frame (False in models saved before this option).
    canonical_frame: bool = True
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class ForwardModel(nn.Module):
    """F: design -> stiffness (B, 6, 6) normalized by the base modulus.

    Inputs: topology one-hot (B, 27), rho (B,), U (B, 3), V (B, 3), R1 (B, 3, 3), R2 (B, 3, 3).
    """

    def __init__(self, config: ForwardConfig = ForwardConfig()) -> None:
        super().__init__()
        self.config = config
        self.f1 = mlp([TOPOLOGY_WIDTH + 1 + 3, *config.stage1_hidden, 21])
        self.f2 = mlp([21 + 3, *config.stage2_hidden, 21])
        self.stage1_label = MinMaxScaler(21)  # c21(C_stage1 / rho)
        self.stage2_input = MinMaxScaler(21)  # c21(Bond(R1) C_stage1 / rho)
        self.stage2_label = MinMaxScaler(21)  # c21(Bond(R2)^T C / rho)
        self.rotate = BondRotation()

    def stage1_features(self, onehot, rho, U) -> torch.Tensor:
        rho01 = unit_interval(rho, RELATIVE_DENSITY_RANGE)[:, None]
        return torch.cat([onehot, rho01, unit_interval(U, STRETCH_RANGE)], dim=-1)

    def stage1_scaled(self, onehot, rho, U) -> torch.Tensor:
        """F1 output in its label scaling (B, 21)."""
        return self.f1(self.stage1_features(onehot, rho, U))

    def stage2_scaled(self, rotated_stage1: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """F2 output in its label scaling (B, 21), from ``Bond(R1) C1 / rho`` (B, 6, 6)."""
        features = self.stage2_input(c21_from_matrix(rotated_stage1))
        return self.f2(torch.cat([features, unit_interval(V, STRETCH_RANGE)], dim=-1))

    def stage2(self, rotated_stage1: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """F2 per unit density (B, 6, 6) from ``Bond(R1) C1 / rho`` (B, 6, 6) and V (B, 3)."""
        if not self.config.canonical_stretch:
            return matrix_from_c21(self.stage2_label.inverse(self.stage2_scaled(rotated_stage1, V)))
        order = stretch_order(V)
        canonical_input = self.rotate(rotated_stage1, order)
        sorted_V = (order @ V[..., None])[..., 0]
        scaled = self.stage2_scaled(canonical_input, sorted_V)
        return self.rotate(matrix_from_c21(self.stage2_label.inverse(scaled)), order.mT)

    def forward(self, onehot, rho, U, V, R1, R2) -> torch.Tensor:
        stage1 = matrix_from_c21(self.stage1_label.inverse(self.stage1_scaled(onehot, rho, U)))
        stage2 = self.stage2(self.rotate(stage1, R1), V)
        return self.rotate(stage2 * rho[:, None, None], R2)


def stretch_order(V: torch.Tensor) -> torch.Tensor:
    """Permutation matrices ``P`` (B, 3, 3) with ``P V`` ascending; ``P . C`` relabels axes."""
    return torch.nn.functional.one_hot(torch.argsort(V, dim=-1), 3).to(V.dtype)


def axis_reversal_signs(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(4, 21) sign patterns of ``c21(S . C)`` for the axis reversals ``S = diag(+-1)``.

    ``S`` and ``-S`` act alike on a stiffness, so four patterns cover all eight reversals; a
    stretch ``diag(V)`` commutes with every ``S``, which makes them exact symmetries of F2.
    """
    reversals = torch.tensor(
        [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64
    ).diag_embed()
    ones = torch.ones(4, 6, 6, dtype=torch.float64)
    return c21_from_matrix(rotate_stiffness(ones, reversals)).round().to(dtype)


def target_features(stiffness: torch.Tensor) -> torch.Tensor:
    """(B, 6, 6) -> (B, 22): the 21 constants of ``C / ||C||_F`` and ``log ||C||_F``."""
    norm = stiffness.flatten(1).norm(dim=-1)
    return torch.cat([c21_from_matrix(stiffness / norm[:, None, None]), norm.log()[:, None]], -1)


class InverseModel(nn.Module):
    """G: target stiffness (B, 6, 6) -> design tensors (dict)."""

    def __init__(self, config: InverseConfig = InverseConfig()) -> None:
        super().__init__()
        self.config = config
        self.target_scaler = MinMaxScaler(22)
        self.g1 = mlp([22, *config.topology_hidden, TOPOLOGY_WIDTH])
        self.g2 = mlp([22 + TOPOLOGY_WIDTH, *config.geometry_hidden, 7 + 12])
        # Start from mid-range rho, U, V and identity rotations: with a random last layer the
        # sigmoids start saturated where the NMSE pushes them, and training stalls at NMSE ~0.9.
        last = self.g2[-1]
        torch.nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.zero_()
            last.bias[7:19] = torch.tensor([1.0, 0, 0, 0, 1.0, 0] * 2)

    def frame_and_features(
        self, stiffness: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The target's material frame ``Q`` (B, 3, 3) or None, and its unscaled features
        (B, 22) in that frame (:func:`target_features` of ``Q^T . C``)."""
        if not self.config.canonical_frame:
            return None, target_features(stiffness)
        frame, canonical = canonical_stiffness(stiffness)
        return frame, target_features(canonical)

    def topology_logits(self, stiffness: torch.Tensor) -> torch.Tensor:
        return self.g1(self.target_scaler(self.frame_and_features(stiffness)[1]))

    def geometry(self, stiffness: torch.Tensor, onehot: torch.Tensor) -> dict[str, torch.Tensor]:
        frame, features = self.frame_and_features(stiffness)
        raw = self.g2(torch.cat([self.target_scaler(features), onehot], dim=-1))
        bounded = torch.sigmoid(raw[:, :7])  # SI Eq. 5
        R2 = rotation_from_6d(raw[:, 13:19])
        return {
            "rho": from_unit_interval(bounded[:, 0], RELATIVE_DENSITY_RANGE),
            "U": from_unit_interval(bounded[:, 1:4], STRETCH_RANGE),
            "V": from_unit_interval(bounded[:, 4:7], STRETCH_RANGE),
            "R1": rotation_from_6d(raw[:, 7:13]),
            "R2": R2 if frame is None else frame.to(R2.dtype) @ R2,
        }

    def forward(
        self,
        stiffness: torch.Tensor,
        tau: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        logits = self.topology_logits(stiffness)
        onehot = straight_through_gumbel_softmax(logits, tau, TOPOLOGY_BLOCKS, generator=generator)
        return {"onehot": onehot, "logits": logits, **self.geometry(stiffness, onehot)}


def design_stiffness(forward_model: ForwardModel, design: dict[str, torch.Tensor]) -> torch.Tensor:
    """Forward-model stiffness of an inverse-model output (B, 6, 6)."""
    return forward_model(
        design["onehot"], design["rho"], design["U"], design["V"], design["R1"], design["R2"]
    )


def nmse_loss(target: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """Batch mean of the spec's NMSE (36 entries)."""
    residual = (target - predicted).flatten(1).pow(2).sum(-1)
    return (residual / target.flatten(1).pow(2).sum(-1)).mean()


def inverse_training_loss(target: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    r"""NMSE plus the squared log-ratio of the Frobenius norms, ``(log |C_p| / |C_t|)^2``.

    The log term is zero at the optimum of the NMSE's magnitude and keeps a useful gradient when
    the predicted magnitude is far off (NMSE saturates at 1 for a vanishing prediction).
    """
    ratio = predicted.flatten(1).norm(dim=-1) / target.flatten(1).norm(dim=-1)
    return nmse_loss(target, predicted) + ratio.log().pow(2).mean()
