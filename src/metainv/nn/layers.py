"""Building blocks of the networks: MLPs, Bond-rotation layers, Gumbel-softmax, scalers.

The rotation layers call :func:`metainv.tensors.rotate_stiffness`: the same Bond matrices
(SI Eqs. 7-9) as every other part of metainv, differentiable through torch.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from metainv.tensors import rotate_stiffness


def mlp(sizes: Sequence[int], negative_slope: float = 0.01) -> nn.Sequential:
    """Fully connected network ``sizes[0] -> ... -> sizes[-1]`` with leaky ReLU between layers
    (SI Sec. 3.C: leaky ReLU 0.01); the last layer is linear."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(fan_in, fan_out), nn.LeakyReLU(negative_slope)]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class BondRotation(nn.Module):
    """``C' = K(R) C K(R)^T`` on batches: C (B, 6, 6), R (B, 3, 3) (SI Eq. 7)."""

    def forward(self, stiffness: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
        return rotate_stiffness(stiffness, rotation)


class MinMaxScaler(nn.Module):
    """Per-component affine map of ``[lo, hi]`` onto ``[-1, 1]`` (SI Eq. 3), with buffers.

    ``fit`` on the training split only; the buffers travel in the model's state_dict.
    Shapes: (..., width).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("low", torch.zeros(width, dtype=torch.float64))
        self.register_buffer("high", torch.ones(width, dtype=torch.float64))

    def fit(self, values: torch.Tensor) -> MinMaxScaler:
        low = values.min(dim=0).values.to(torch.float64)
        high = values.max(dim=0).values.to(torch.float64)
        span = torch.where(high - low > 0, high - low, torch.ones_like(high))
        self.low.copy_(low)
        self.high.copy_(low + span)
        return self

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        low, high = self.low.to(values.dtype), self.high.to(values.dtype)
        return 2 * (values - low) / (high - low) - 1

    def inverse(self, scaled: torch.Tensor) -> torch.Tensor:
        low, high = self.low.to(scaled.dtype), self.high.to(scaled.dtype)
        return (scaled + 1) / 2 * (high - low) + low


def straight_through_gumbel_softmax(
    logits: torch.Tensor,
    tau: float,
    blocks: Sequence[int],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""One-hot samples per categorical block with straight-through gradients (main Eqs. 5-6).

    With Gumbel noise ``g = -log(-log u)`` and ``z = logits / tau + g``, the forward value is
    ``onehot(argmax z)``, a draw from the *tempered* posterior ``softmax(logits / tau)``, and the
    backward pass uses the relaxation ``y = softmax(z)``: ``y_hard - y.detach() + y``.
    At ``tau = 1`` (training) this is the textbook straight-through Gumbel-softmax. For other
    ``tau`` note that the textbook hard sample ``argmax((logits + g) / tau)`` does not depend on
    ``tau`` at all, so raising ``tau`` there would not diversify the draws; tempering the logits
    does: ``tau -> infinity`` samples topologies uniformly, ``tau -> 0`` returns the mode.
    Shapes: logits (B, sum(blocks)) -> (B, sum(blocks)).
    """
    uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
    out = []
    for block_logits, block_noise in zip(
        logits.split(list(blocks), dim=-1), gumbel.split(list(blocks), dim=-1), strict=True
    ):
        soft = torch.softmax(block_logits / tau + block_noise, dim=-1)
        hard = torch.nn.functional.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)
        out.append(hard - soft.detach() + soft)
    return torch.cat(out, dim=-1)


def argmax_onehot(logits: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
    """Most probable category per block as one-hot (deterministic decoding)."""
    out = [
        torch.nn.functional.one_hot(block.argmax(dim=-1), block.shape[-1]).to(logits.dtype)
        for block in logits.split(list(blocks), dim=-1)
    ]
    return torch.cat(out, dim=-1)


__all__ = [
    "BondRotation",
    "MinMaxScaler",
    "argmax_onehot",
    "mlp",
    "straight_through_gumbel_softmax",
]
