"""Truss data-set rows as torch tensors for training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from metainv.data import read_dataset
from metainv.tensors import matrix_from_c21
from metainv.truss.learn.models import topology_onehot


@dataclass(frozen=True)
class TrussTensors:
    """Designs and FE labels, one row per lattice (float32 unless stated).

    onehot (N, 27); cells, tessellations (N, 3) int64; rho (N,); U, V (N, 3);
    R1, R2 (N, 3, 3); stage1_C, C (N, 6, 6) normalized by the base modulus.
    """

    onehot: torch.Tensor
    cells: torch.Tensor
    tessellations: torch.Tensor
    rho: torch.Tensor
    U: torch.Tensor
    V: torch.Tensor
    R1: torch.Tensor
    R2: torch.Tensor
    stage1_C: torch.Tensor
    C: torch.Tensor

    def __len__(self) -> int:
        return self.rho.shape[0]

    def subset(self, index: torch.Tensor) -> TrussTensors:
        return TrussTensors(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _stack(table, names: list[str]) -> np.ndarray:
    return np.stack([table.column(name).to_numpy() for name in names], axis=-1)


def load_truss_tensors(folder: str | Path, dtype: torch.dtype = torch.float32) -> TrussTensors:
    """All rows of a complete truss data set (checksums verified) as tensors."""
    table = read_dataset(folder)
    triu = [(i, j) for i in range(1, 7) for j in range(i, 7)]
    cells = torch.as_tensor(_stack(table, ["S1", "S2", "S3"]).astype(np.int64))
    tessellations = torch.as_tensor(_stack(table, ["t1", "t2", "t3"]).astype(np.int64))
    rotations = {
        name: _stack(table, [f"{name}_{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)]).reshape(
            -1, 3, 3
        )
        for name in ("R1", "R2")
    }
    as_tensor = lambda array: torch.as_tensor(np.ascontiguousarray(array), dtype=dtype)  # noqa: E731
    return TrussTensors(
        onehot=topology_onehot(cells, tessellations).to(dtype),
        cells=cells,
        tessellations=tessellations,
        rho=as_tensor(table.column("relative_density").to_numpy()),
        U=as_tensor(_stack(table, ["U1", "U2", "U3"])),
        V=as_tensor(_stack(table, ["V1", "V2", "V3"])),
        R1=as_tensor(rotations["R1"]),
        R2=as_tensor(rotations["R2"]),
        stage1_C=as_tensor(matrix_from_c21(_stack(table, [f"stage1_C{i}{j}" for i, j in triu]))),
        C=as_tensor(matrix_from_c21(_stack(table, [f"C{i}{j}" for i, j in triu]))),
    )
