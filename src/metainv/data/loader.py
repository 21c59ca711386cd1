"""Truss data sets as torch tensors for training (spec ``truss.md`` section 5; SI Eqs. 2-3).

A data-set folder (:mod:`metainv.data.shards`) becomes :class:`TrussBatch` objects:

- ``geometry`` (B, 7): ``rho, U1..U3, V1..V3`` min-max scaled to [0, 1] with the design ranges
  stored in the manifest (SI Eq. 2: ``(x - lo) / (hi - lo)``);
- ``topology`` (B, 27): one-hot blocks of 7 + 7 + 7 (cells S1..S3) and 2 + 2 + 2 (tessellations
  t1..t3), in that order; ``features()`` is ``[geometry, topology]`` (B, 34);
- labels as raw 21-vectors (spec order C11 C12 ... C66): ``stage1_C`` of the stage-1 lattice
  (``F1 = U``, the label of the first forward network; ``ORTHO_IN_C21`` picks its 9 orthotropic
  constants) and ``C`` of the final lattice. Scale them with :class:`MinMaxScaler` (SI Eq. 3,
  [-1, 1] per component), fitted on the training split only.

Rows are split into train / validation / test by a seeded permutation (:func:`split_indices`).
Data are read either at once (:func:`load_truss`, 300k rows take about 100 MB in float32) or one
shard at a time (:func:`iter_truss_shards`), and cut into minibatches by :func:`minibatches`.
:func:`augment_rotations` adds exact extra final rotations without any FE.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from metainv.data.shards import DatasetError, complete_manifest, iter_shards
from metainv.errors import MetainvError
from metainv.tensors import (
    C21_NAMES,
    ORTHO_NAMES,
    c21_from_matrix,
    matrix_from_c21,
    random_rotations,
    rotate_stiffness,
    rotation_from_angle_axis,
    sample_angle_axis,
)

SPLITS = ("train", "validation", "test")
GEOMETRY_COLUMNS = ("relative_density", "U1", "U2", "U3", "V1", "V2", "V3")
#: (column, number of classes) of the one-hot topology blocks, in feature order.
TOPOLOGY_BLOCKS = (("S1", 7), ("S2", 7), ("S3", 7), ("t1", 2), ("t2", 2), ("t3", 2))
FEATURE_NAMES: tuple[str, ...] = GEOMETRY_COLUMNS + tuple(
    f"{column}={value}" for column, size in TOPOLOGY_BLOCKS for value in range(1, size + 1)
)
#: Positions of the 9 orthotropic constants C11 C12 C13 C22 C23 C33 C44 C55 C66 in a 21-vector.
ORTHO_IN_C21 = tuple(C21_NAMES.index(name) for name in ORTHO_NAMES)
_ROTATION_COLUMNS = tuple(f"{r}_{i}{j}" for r in ("R1", "R2") for i in (1, 2, 3) for j in (1, 2, 3))
COLUMNS = (
    tuple(column for column, _ in TOPOLOGY_BLOCKS)
    + GEOMETRY_COLUMNS
    + _ROTATION_COLUMNS
    + tuple(f"stage1_{name}" for name in C21_NAMES)
    + C21_NAMES
)


# --------------------------------------------------------------------------------------------
# Splits and design ranges
# --------------------------------------------------------------------------------------------


def split_indices(
    n_rows: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, np.ndarray]:
    """Deterministic train / validation / test row indices (sorted, disjoint, covering all rows).

    A permutation of ``range(n_rows)`` drawn from ``seed`` is cut into consecutive parts of
    ``round(fraction * n_rows)`` rows for validation and test; training gets the rest.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise MetainvError(
            f"split fractions must be 3 non-negative numbers summing to 1, got {fractions}"
        )
    if n_rows < 0:
        raise MetainvError(f"number of rows must be >= 0, got {n_rows}")
    order = np.random.default_rng(np.random.SeedSequence([seed, n_rows])).permutation(n_rows)
    n_validation = round(fractions[1] * n_rows)
    n_test = round(fractions[2] * n_rows)
    n_train = n_rows - n_validation - n_test
    parts = np.split(order, [n_train, n_train + n_validation])
    return {name: np.sort(part) for name, part in zip(SPLITS, parts, strict=True)}


@dataclass(frozen=True)
class DesignRanges:
    """Ranges of the min-max feature scaling (SI Eq. 2): ``rho`` and every stretch."""

    relative_density: tuple[float, float] = (0.002, 0.1)
    stretch: tuple[float, float] = (0.5, 2.0)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> DesignRanges:
        params = manifest.get("params", {})
        return cls(
            tuple(params.get("relative_density", cls.relative_density)),
            tuple(params.get("stretch", cls.stretch)),
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (7,) of ``rho, U1..U3, V1..V3``."""
        lo = np.array([self.relative_density[0]] + [self.stretch[0]] * 6)
        hi = np.array([self.relative_density[1]] + [self.stretch[1]] * 6)
        return lo, hi


def scale_geometry(raw: torch.Tensor, ranges: DesignRanges = DesignRanges()) -> torch.Tensor:
    """Physical ``rho, U1..U3, V1..V3`` (..., 7) -> features in [0, 1] (SI Eq. 2)."""
    lo, hi = (torch.as_tensor(b, dtype=raw.dtype, device=raw.device) for b in ranges.bounds())
    return (raw - lo) / (hi - lo)


def unscale_geometry(scaled: torch.Tensor, ranges: DesignRanges = DesignRanges()) -> torch.Tensor:
    """Inverse of :func:`scale_geometry`: features (..., 7) -> physical ``rho, U, V``."""
    lo, hi = (torch.as_tensor(b, dtype=scaled.dtype, device=scaled.device) for b in ranges.bounds())
    return lo + scaled * (hi - lo)


def one_hot_topology(cells: torch.Tensor, tessellations: torch.Tensor) -> torch.Tensor:
    """Cells (B, 3) in 1..7 and tessellations (B, 3) in 1..2 -> one-hot (B, 27) float."""
    blocks = [torch.nn.functional.one_hot(cells[:, k] - 1, 7) for k in range(3)]
    blocks += [torch.nn.functional.one_hot(tessellations[:, k] - 1, 2) for k in range(3)]
    return torch.cat(blocks, dim=1).to(torch.get_default_dtype())


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrussBatch:
    """Rows of a truss data set as tensors (B rows).

    Attributes:
        index: (B,) int64 global row numbers in the data set.
        cells: (B, 3) int64 cell types S1..S3 in 1..7.
        tessellations: (B, 3) int64 t1..t3 in 1..2.
        geometry: (B, 7) ``rho, U1..U3, V1..V3`` scaled to [0, 1] (:func:`scale_geometry`).
        topology: (B, 27) one-hot blocks (:func:`one_hot_topology`).
        R1, R2: (B, 3, 3) rotations.
        stage1_C: (B, 21) stiffness constants of the stage-1 lattice ``F1 = U``.
        C: (B, 21) stiffness constants of the final lattice ``F = R2 V R1 U``.
    """

    index: torch.Tensor
    cells: torch.Tensor
    tessellations: torch.Tensor
    geometry: torch.Tensor
    topology: torch.Tensor
    R1: torch.Tensor
    R2: torch.Tensor
    stage1_C: torch.Tensor
    C: torch.Tensor

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def features(self) -> torch.Tensor:
        """Network input ``[geometry, topology]`` (B, 34), columns :data:`FEATURE_NAMES`."""
        return torch.cat([self.geometry, self.topology], dim=1)

    def stage1_orthotropic(self) -> torch.Tensor:
        """The 9 orthotropic stage-1 constants (B, 9): C11 C12 C13 C22 C23 C33 C44 C55 C66."""
        return self.stage1_C[:, list(ORTHO_IN_C21)]

    def select(self, rows: torch.Tensor | np.ndarray | slice) -> TrussBatch:
        """The rows ``rows`` (positions in this batch, not global indices)."""
        if isinstance(rows, np.ndarray):
            rows = torch.from_numpy(rows)
        return TrussBatch(**{f.name: getattr(self, f.name)[rows] for f in _fields()})

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """Move to ``device``; floating tensors are cast to ``dtype`` when given."""
        moved = {}
        for f in _fields():
            value = getattr(self, f.name)
            cast = dtype if dtype is not None and value.is_floating_point() else None
            moved[f.name] = value.to(device=device, dtype=cast)
        return TrussBatch(**moved)


def _fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(TrussBatch)


def concatenate_batches(batches: Sequence[TrussBatch]) -> TrussBatch:
    """Rows of several batches, in order."""
    if not batches:
        raise MetainvError("nothing to concatenate: no batches")
    return TrussBatch(
        **{f.name: torch.cat([getattr(b, f.name) for b in batches]) for f in _fields()}
    )


def batch_from_table(
    table: pa.Table,
    first_row: int = 0,
    ranges: DesignRanges = DesignRanges(),
    dtype: torch.dtype = torch.float32,
) -> TrussBatch:
    """Tensors of a truss table (the columns of :func:`metainv.truss.dataset.column_names`).

    ``first_row`` is the global index of the table's first row.
    """
    missing = [name for name in COLUMNS if name not in table.column_names]
    if missing:
        raise DatasetError(f"not a truss data set: columns {missing[:3]} ... are missing")

    def stack(names: Sequence[str], kind: type = np.float64) -> np.ndarray:
        return np.stack([table[name].to_numpy().astype(kind) for name in names], axis=1)

    n = table.num_rows
    cells = torch.from_numpy(stack(("S1", "S2", "S3"), np.int64))
    tessellations = torch.from_numpy(stack(("t1", "t2", "t3"), np.int64))
    geometry = scale_geometry(torch.from_numpy(stack(GEOMETRY_COLUMNS)), ranges)
    rotations = torch.from_numpy(stack(_ROTATION_COLUMNS)).reshape(n, 2, 3, 3)
    return TrussBatch(
        index=torch.arange(first_row, first_row + n, dtype=torch.int64),
        cells=cells,
        tessellations=tessellations,
        geometry=geometry.to(dtype),
        topology=one_hot_topology(cells, tessellations).to(dtype),
        R1=rotations[:, 0].to(dtype),
        R2=rotations[:, 1].to(dtype),
        stage1_C=torch.from_numpy(stack([f"stage1_{name}" for name in C21_NAMES])).to(dtype),
        C=torch.from_numpy(stack(C21_NAMES)).to(dtype),
    )


def _truss_manifest(folder: str | Path) -> dict[str, Any]:
    manifest = complete_manifest(folder)
    if manifest.get("family") != "truss":
        raise DatasetError(f"{folder} holds a {manifest.get('family')!r} data set, not 'truss'")
    return manifest


def iter_truss_shards(
    folder: str | Path,
    rows: np.ndarray | None = None,
    dtype: torch.dtype = torch.float32,
    verify: bool = True,
    rng: np.random.Generator | None = None,
) -> Iterator[TrussBatch]:
    """Stream a truss data set one shard at a time (only one shard is in memory).

    rows: global row indices to keep (e.g. ``split_indices(...)["train"]``), all when None.
    rng: when given, shards come in a random order (rows within a shard keep theirs; shuffle
    them with :func:`minibatches`).
    """
    manifest = _truss_manifest(folder)
    ranges = DesignRanges.from_manifest(manifest)
    keep = None if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
    order = None if rng is None else rng.permutation(int(manifest["n_shards"]))
    shards = iter_shards(folder, list(COLUMNS), verify, order)
    for first_row, table in shards:
        if keep is not None:
            lo, hi = np.searchsorted(keep, [first_row, first_row + table.num_rows])
            if lo == hi:
                continue
            table = table.take(pa.array(keep[lo:hi] - first_row))
            batch = batch_from_table(table, 0, ranges, dtype)
            batch = dataclasses.replace(batch, index=torch.from_numpy(keep[lo:hi].copy()))
        else:
            batch = batch_from_table(table, first_row, ranges, dtype)
        yield batch


def load_truss(
    folder: str | Path,
    rows: np.ndarray | None = None,
    dtype: torch.dtype = torch.float32,
    verify: bool = True,
) -> TrussBatch:
    """A whole truss data set (or the rows ``rows`` of it) in memory, rows in index order."""
    return concatenate_batches(list(iter_truss_shards(folder, rows, dtype, verify)))


def minibatches(
    batches: TrussBatch | Iterable[TrussBatch],
    batch_size: int,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[TrussBatch]:
    """Cut a batch (in memory) or a stream of batches (shards) into minibatches of
    ``batch_size`` rows; rows are shuffled (within each incoming batch) when ``rng`` is given.
    Rows left over from one incoming batch are carried into the next."""
    if batch_size < 1:
        raise MetainvError(f"batch_size must be positive, got {batch_size}")
    if isinstance(batches, TrussBatch):
        batches = [batches]
    carry: TrussBatch | None = None
    for batch in batches:
        if rng is not None:
            batch = batch.select(torch.from_numpy(rng.permutation(len(batch))))
        if carry is not None:
            batch = concatenate_batches([carry, batch])
        full = len(batch) // batch_size * batch_size
        for lo in range(0, full, batch_size):
            yield batch.select(slice(lo, lo + batch_size))
        carry = batch.select(slice(full, len(batch))) if full < len(batch) else None
    if carry is not None and not drop_last:
        yield carry


# --------------------------------------------------------------------------------------------
# Label scaling (SI Eq. 3)
# --------------------------------------------------------------------------------------------


class MinMaxScaler(nn.Module):
    """Per-column affine map of the training range ``[min, max]`` onto ``feature_range``
    (SI Eq. 3: [-1, 1]). Buffers, so it is saved in the ``state_dict`` with the model.

    A column whose range is below ``rtol`` times the largest column range (e.g. stage-1 shear
    couplings that are zero up to rounding) uses that floor instead, so rounding noise is not
    blown up to [-1, 1].

    Shapes: ``x`` (..., n_features).
    """

    data_min: torch.Tensor
    data_max: torch.Tensor
    feature_range: torch.Tensor
    rtol: torch.Tensor

    def __init__(
        self,
        n_features: int,
        feature_range: tuple[float, float] = (-1.0, 1.0),
        rtol: float = 1e-6,
    ) -> None:
        super().__init__()
        if not feature_range[0] < feature_range[1]:
            raise MetainvError(f"feature_range must be increasing, got {feature_range}")
        self.register_buffer("data_min", torch.full((n_features,), torch.inf, dtype=torch.float64))
        self.register_buffer("data_max", torch.full((n_features,), -torch.inf, dtype=torch.float64))
        self.register_buffer("feature_range", torch.tensor(feature_range, dtype=torch.float64))
        self.register_buffer("rtol", torch.tensor(float(rtol), dtype=torch.float64))

    @property
    def fitted(self) -> bool:
        return bool(torch.all(self.data_min <= self.data_max))

    def partial_fit(self, x: torch.Tensor) -> MinMaxScaler:
        """Widen the range with the rows of ``x`` (N, n_features) (streaming fit)."""
        x = x.detach().reshape(-1, self.data_min.shape[0]).to(self.data_min)
        if len(x):
            self.data_min.copy_(torch.minimum(self.data_min, x.min(0).values))
            self.data_max.copy_(torch.maximum(self.data_max, x.max(0).values))
        return self

    def fit(self, x: torch.Tensor) -> MinMaxScaler:
        """Range of the rows of ``x`` (N, n_features) only (fit on the training split)."""
        self.data_min.fill_(torch.inf)
        self.data_max.fill_(-torch.inf)
        return self.partial_fit(x)

    def _span(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not self.fitted:
            raise MetainvError("MinMaxScaler is not fitted: call fit() on the training labels")
        span = self.data_max - self.data_min
        floor = self.rtol * span.max()
        span = torch.where(span > floor, span, floor if floor > 0 else torch.ones_like(span))
        low, high = self.feature_range
        scale = (high - low) / span
        cast = {"dtype": like.dtype, "device": like.device}
        return self.data_min.to(**cast), scale.to(**cast), low.to(**cast)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled ``low + (x - min) (high - low) / (max - min)``."""
        data_min, scale, low = self._span(x)
        return low + (x - data_min) * scale

    transform = forward

    def inverse_transform(self, y: torch.Tensor) -> torch.Tensor:
        """Physical values of scaled ``y``."""
        data_min, scale, low = self._span(y)
        return data_min + (y - low) / scale


def fit_label_scalers(
    train: TrussBatch | Iterable[TrussBatch], rtol: float = 1e-6
) -> dict[str, MinMaxScaler]:
    """Scalers of the 21 final (``"C"``) and the 21 stage-1 (``"stage1_C"``) constants, fitted on
    the training rows (a batch or a stream of batches) only."""
    scalers = {name: MinMaxScaler(21, rtol=rtol) for name in ("C", "stage1_C")}
    for batch in [train] if isinstance(train, TrussBatch) else train:
        for name, scaler in scalers.items():
            scaler.partial_fit(getattr(batch, name))
    return scalers


# --------------------------------------------------------------------------------------------
# Augmentation by exact final rotations
# --------------------------------------------------------------------------------------------


def _resample(R2: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    new = np.asarray(rotation_from_angle_axis(*sample_angle_axis(len(R2), rng)), dtype=np.float64)
    return new @ np.swapaxes(R2, -1, -2)


def _haar(R2: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return random_rotations(len(R2), rng)


def _angle_axis(R2: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(rotation_from_angle_axis(*sample_angle_axis(len(R2), rng)), dtype=np.float64)


#: law -> function(R2 (B, 3, 3), rng) -> extra rotations R' (B, 3, 3).
ROTATION_LAWS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "resample": _resample,  # R' R2 is a fresh draw of the data-set law: same distribution
    "haar": _haar,  # R' uniform on SO(3)
    "angle_axis": _angle_axis,  # R' drawn like R2 (angle U(-pi, pi), uniform axis)
}


def augment_rotations(
    batch: TrussBatch, rng: np.random.Generator, law: str = "resample"
) -> TrussBatch:
    """The same lattices, each turned by one more random rotation ``R'`` (exact, no FE).

    The final rotation acts exactly on the stiffness (spec section 3), so the rotated lattice
    ``R' F`` has ``C' = Bond(R') C`` (``K C K^T``) and final rotation ``R' R2``; the topology,
    ``rho``, ``U``, ``V``, ``R1`` and the stage-1 label are unchanged. ``law`` picks ``R'`` from
    :data:`ROTATION_LAWS`; the default ``"resample"`` chooses ``R' = R R2^T`` with ``R`` a new draw
    of the data-set rotation law, so augmented rows follow the distribution of the data set.
    Computed in float64, returned in the batch's dtype.
    """
    if law not in ROTATION_LAWS:
        raise MetainvError(f"unknown rotation law {law!r}; expected one of {sorted(ROTATION_LAWS)}")
    R2 = batch.R2.detach().cpu().to(torch.float64).numpy()
    extra = torch.from_numpy(ROTATION_LAWS[law](R2, rng))
    C = matrix_from_c21(batch.C.detach().cpu().to(torch.float64))
    rotated = rotate_stiffness(C, extra)
    rotated = (rotated + rotated.transpose(-1, -2)) / 2
    cast = {"dtype": batch.C.dtype, "device": batch.C.device}
    return dataclasses.replace(
        batch,
        C=c21_from_matrix(rotated).to(**cast),
        R2=(extra @ torch.from_numpy(R2)).to(dtype=batch.R2.dtype, device=batch.R2.device),
    )
