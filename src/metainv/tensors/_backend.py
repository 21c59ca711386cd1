"""Tiny array-namespace shim so numpy and torch share one definition of every formula.

Every public function of :mod:`metainv.tensors` accepts either ``numpy.ndarray`` or
``torch.Tensor`` and returns the same kind; torch inputs stay differentiable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # torch is a hard dependency of the package, but keep the shim importable without it
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

Array = Any  # numpy.ndarray | torch.Tensor


def is_torch(x: Array) -> bool:
    """True when ``x`` is a ``torch.Tensor``."""
    return torch is not None and isinstance(x, torch.Tensor)


def index(idx: np.ndarray, like: Array) -> Array:
    """Integer index array usable to index ``like`` (numpy array or torch long tensor)."""
    if is_torch(like):
        return torch.as_tensor(idx, dtype=torch.long, device=like.device)
    return idx


def constant(values: Any, like: Array) -> Array:
    """A constant array with the dtype (and device) of ``like``."""
    if is_torch(like):
        return torch.as_tensor(np.asarray(values), dtype=like.dtype, device=like.device)
    return np.asarray(values, dtype=np.result_type(like, np.float64))


def transpose(x: Array) -> Array:
    """Swap the last two axes."""
    return x.transpose(-1, -2) if is_torch(x) else np.swapaxes(x, -1, -2)


def stack(arrays: list[Array], axis: int) -> Array:
    """Stack along a new axis, numpy or torch."""
    if is_torch(arrays[0]):
        return torch.stack(arrays, dim=axis)
    return np.stack(arrays, axis=axis)


def sqrt(x: Array) -> Array:
    return torch.sqrt(x) if is_torch(x) else np.sqrt(x)


def sin(x: Array) -> Array:
    return torch.sin(x) if is_torch(x) else np.sin(x)


def cos(x: Array) -> Array:
    return torch.cos(x) if is_torch(x) else np.cos(x)


def cross(a: Array, b: Array) -> Array:
    """Cross product over the last axis."""
    return torch.linalg.cross(a, b, dim=-1) if is_torch(a) else np.cross(a, b)


def inv(x: Array) -> Array:
    return torch.linalg.inv(x) if is_torch(x) else np.linalg.inv(x)


def einsum(spec: str, *operands: Array) -> Array:
    if is_torch(operands[0]):
        return torch.einsum(spec, *operands)
    return np.einsum(spec, *operands)


def sum_last(x: Array, n: int) -> Array:
    """Sum over the last ``n`` axes."""
    axes = tuple(range(-n, 0))
    return x.sum(dim=axes) if is_torch(x) else x.sum(axis=axes)


def concatenate(arrays: list[Array], axis: int) -> Array:
    """Concatenate along an existing axis, numpy or torch."""
    if is_torch(arrays[0]):
        return torch.cat(arrays, dim=axis)
    return np.concatenate(arrays, axis=axis)
