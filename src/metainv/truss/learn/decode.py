"""Inverse-model outputs: deterministic decoding and Gumbel draws, and their conversion to
:class:`metainv.truss.design.TrussDesign` objects (and back)."""

from __future__ import annotations

import numpy as np
import torch

from metainv.nn.layers import argmax_onehot
from metainv.truss.design import RELATIVE_DENSITY_RANGE, STRETCH_RANGE, TrussDesign
from metainv.truss.learn.models import (
    TOPOLOGY_BLOCKS,
    InverseModel,
    topology_from_onehot,
    topology_onehot,
)


@torch.no_grad()
def inverse_decode(inverse: InverseModel, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Deterministic inverse design: most probable topology, then its geometry."""
    onehot = argmax_onehot(inverse.topology_logits(targets), TOPOLOGY_BLOCKS)
    return {"onehot": onehot, **inverse.geometry(targets, onehot)}


@torch.no_grad()
def inverse_draw(
    inverse: InverseModel, targets: torch.Tensor, tau: float, seed: int
) -> dict[str, torch.Tensor]:
    """One Gumbel-softmax draw per target."""
    return inverse(targets, tau, generator=torch.Generator().manual_seed(seed))


def nearest_rotation(matrices: np.ndarray) -> np.ndarray:
    """Closest rotation (polar factor, det +1) to each (..., 3, 3) matrix, in float64."""
    u, _, vt = np.linalg.svd(np.asarray(matrices, dtype=np.float64))
    sign = np.sign(np.linalg.det(u @ vt))
    u[..., :, -1] *= sign[..., None]
    return u @ vt


def designs_from_outputs(outputs: dict[str, torch.Tensor]) -> list[TrussDesign]:
    """Inverse-model outputs (batched) -> validated designs (float64, clipped to the ranges)."""
    cells, tessellations = topology_from_onehot(outputs["onehot"].detach())
    rho = np.clip(outputs["rho"].detach().double().numpy(), *RELATIVE_DENSITY_RANGE)
    U = np.clip(outputs["U"].detach().double().numpy(), *STRETCH_RANGE)
    V = np.clip(outputs["V"].detach().double().numpy(), *STRETCH_RANGE)
    R1 = nearest_rotation(outputs["R1"].detach().double().numpy())
    R2 = nearest_rotation(outputs["R2"].detach().double().numpy())
    return [
        TrussDesign(
            topology=tuple(zip(cells[i].tolist(), tessellations[i].tolist(), strict=True)),
            relative_density=float(rho[i]),
            U=U[i],
            V=V[i],
            R1=R1[i],
            R2=R2[i],
        )
        for i in range(len(rho))
    ]


def forward_inputs(designs: list[TrussDesign], dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Designs -> the forward model's inputs (onehot, rho, U, V, R1, R2)."""
    topology = torch.tensor([d.topology for d in designs], dtype=torch.int64)
    return {
        "onehot": topology_onehot(topology[:, :, 0], topology[:, :, 1]).to(dtype),
        "rho": torch.tensor([d.relative_density for d in designs], dtype=dtype),
        "U": torch.tensor(np.array([d.U for d in designs]), dtype=dtype),
        "V": torch.tensor(np.array([d.V for d in designs]), dtype=dtype),
        "R1": torch.tensor(np.array([d.R1 for d in designs]), dtype=dtype),
        "R2": torch.tensor(np.array([d.R2 for d in designs]), dtype=dtype),
    }
