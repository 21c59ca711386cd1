r"""Nearest-neighbour lookup baseline (SI Sec. 3.G): the stored design closest to a target.

For each target stiffness ``Ct`` the row of a library (a data set's final stiffnesses ``Cp``)
with the smallest NMSE (spec ``truss.md`` section 1, over all 36 Voigt entries)

.. math:: \mathrm{NMSE} = \frac{\sum_{ij} (C^t_{ij} - C^p_{ij})^2}{\sum_{ij} (C^t_{ij})^2}.

The denominator does not depend on the candidate, so the argmin only needs
``||Cp||^2 - 2 Ct . Cp``: one matrix product per chunk of the library, which is how a library
of millions of rows is searched without ever holding the (targets x rows) distance matrix.
The NMSE of the winner is then recomputed directly (no cancellation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from metainv.data.shards import iter_shards
from metainv.errors import MetainvError
from metainv.tensors import C21_NAMES, matrix_from_c21

#: Largest (targets x library rows) score block computed at once (float64: 64 MB).
_BLOCK_ELEMENTS = 1 << 23


class LookupResult(NamedTuple):
    """Nearest library rows: ``index`` (T,) int64 row numbers, ``nmse`` (T,) their NMSE.

    A named tuple, so ``index, error = nearest_stiffness(...)`` works too.
    """

    index: np.ndarray
    nmse: np.ndarray


class _RunningBest:
    """The best candidate per target over library chunks seen so far."""

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = targets.reshape(len(targets), 36)
        self.index = np.full(len(targets), -1, dtype=np.int64)
        self.score = np.full(len(targets), np.inf)
        self.rows = np.zeros_like(self.targets)

    def update(self, chunk: np.ndarray, first_row: int) -> None:
        """Consider library rows ``chunk`` (M, 36) whose first has global index ``first_row``."""
        squared = np.einsum("mk,mk->m", chunk, chunk)
        step = max(1, _BLOCK_ELEMENTS // max(len(chunk), 1))
        for lo in range(0, len(self.targets), step):
            block = slice(lo, lo + step)
            score = squared[None, :] - 2.0 * (self.targets[block] @ chunk.T)  # (t, M)
            best = np.argmin(score, axis=1)
            value = score[np.arange(len(best)), best]
            better = value < self.score[block]  # strict: ties keep the earlier row
            where = np.flatnonzero(better) + lo
            self.score[where] = value[better]
            self.index[where] = best[better] + first_row
            self.rows[where] = chunk[best[better]]

    def result(self) -> LookupResult:
        if np.any(self.index < 0):
            raise MetainvError("the library is empty: nothing to look up")
        error = ((self.targets - self.rows) ** 2).sum(1) / (self.targets**2).sum(1)
        return LookupResult(self.index, error)


def _as_targets(targets: np.ndarray) -> np.ndarray:
    array = np.asarray(targets, dtype=np.float64)
    if array.shape[-2:] != (6, 6):
        raise MetainvError(f"targets must have shape (T, 6, 6) or (6, 6), got {array.shape}")
    array = array.reshape(-1, 6, 6)
    zero = np.flatnonzero(~np.any(array != 0, axis=(1, 2)))
    if zero.size:
        raise MetainvError(f"target {int(zero[0])} is all zeros: its NMSE is undefined")
    if not np.all(np.isfinite(array)):
        raise MetainvError("targets contain non-finite entries")
    return array


def nearest_stiffness(
    targets: np.ndarray,
    library: np.ndarray | Iterable[np.ndarray],
    chunk_size: int = 65_536,
) -> LookupResult:
    """Row of ``library`` with the smallest NMSE to each target.

    targets: (T, 6, 6) or (6, 6) Voigt stiffnesses. library: (N, 6, 6) array, searched in
    chunks of ``chunk_size`` rows, or an iterable of (M_k, 6, 6) chunks (rows numbered
    consecutively across chunks). Exact ties go to the lower row index.
    """
    if chunk_size < 1:
        raise MetainvError(f"chunk_size must be positive, got {chunk_size}")
    best = _RunningBest(_as_targets(targets))
    first_row = 0
    for chunk in _chunks(library, chunk_size):
        flat = np.asarray(chunk, dtype=np.float64).reshape(-1, 36)
        best.update(flat, first_row)
        first_row += len(flat)
    return best.result()


def _chunks(library: np.ndarray | Iterable[np.ndarray], chunk_size: int) -> Iterator[np.ndarray]:
    if hasattr(library, "shape"):  # one array (numpy or torch), not a stream of chunks
        library = np.asarray(library, dtype=np.float64)
        if library.shape[-2:] != (6, 6) or library.ndim != 3:
            raise MetainvError(f"library must have shape (N, 6, 6), got {library.shape}")
        for lo in range(0, len(library), chunk_size):
            yield library[lo : lo + chunk_size]
        return
    yield from library


def dataset_stiffness_chunks(
    folder: str | Path, prefix: str = "", verify: bool = True
) -> Iterator[np.ndarray]:
    """Stiffnesses (M, 6, 6) of a data set, shard by shard: the final ``C`` (``prefix=""``) or
    the stage-1 one (``prefix="stage1_"``)."""
    columns = [prefix + name for name in C21_NAMES]
    for _, table in iter_shards(folder, columns, verify):
        c21 = np.stack([table[name].to_numpy() for name in columns], axis=1)
        yield np.asarray(matrix_from_c21(c21), dtype=np.float64)


def nearest_in_dataset(
    targets: np.ndarray, folder: str | Path, verify: bool = True
) -> LookupResult:
    """:func:`nearest_stiffness` over the final stiffnesses of a data set folder, streamed
    shard by shard (row indices are global row numbers of the data set)."""
    return nearest_stiffness(targets, dataset_stiffness_chunks(folder, verify=verify))
