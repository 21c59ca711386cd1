r"""Material frames of a stiffness: second-order contractions and a canonical orientation.

Two symmetric second-order tensors are contracted from any stiffness (Cowin 1989):

.. math:: d_{ij} = C_{ijkk} \quad \text{(dilatational)}, \qquad
          v_{ij} = C_{ikjk} \quad \text{(Voigt)}.

Both rotate like second-order tensors, ``d(R . C) = R d R^T``. The *material frame* ``Q`` of a
stiffness is the proper rotation whose columns are the eigenvectors of ``d`` in ascending order
of their eigenvalues, with the two remaining sign choices fixed by ``v'_12 >= 0`` and
``v'_13 >= 0`` in that frame (a 180-degree turn about a principal axis flips exactly these
signs). Then ``material_frame(R . C) = R material_frame(C)`` and the canonical form
``canonical_stiffness(C) = Q^T . C`` is invariant under rotations of ``C``, wherever the
eigenvalues of ``d`` are distinct and ``v'_12, v'_13`` non-zero (elsewhere the frame is one of
several equivalent ones). ``.`` is the rotation of :func:`metainv.tensors.rotate_stiffness`.
"""

from __future__ import annotations

import numpy as np

from metainv.tensors._backend import Array, is_torch, stack, transpose
from metainv.tensors._rotation import rotate_stiffness
from metainv.tensors._voigt import (
    matrix_from_orthotropic9,
    orthotropic9_from_matrix,
    voigt_to_mandel,
)

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

# Voigt index of the pair (i, j), 0-based (order 11, 22, 33, 23, 13, 12).
_VOIGT = np.array([[0, 5, 4], [5, 1, 3], [4, 3, 2]])


def _symmetric(entries: dict[tuple[int, int], Array]) -> Array:
    """(..., 3, 3) from the six upper-triangle entries (each (...,))."""
    rows = [stack([entries[min(i, j), max(i, j)] for j in range(3)], -1) for i in range(3)]
    return stack(rows, -2)


def dilatational_tensor(C: Array) -> Array:
    """``d_ij = C_ijkk`` (..., 3, 3) of Voigt stiffnesses ``C`` (..., 6, 6)."""
    normal_sum = C[..., :, 0] + C[..., :, 1] + C[..., :, 2]
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    return _symmetric({(i, j): normal_sum[..., _VOIGT[i, j]] for i, j in pairs})


def voigt_contracted_tensor(C: Array) -> Array:
    """``v_ij = C_ikjk`` (..., 3, 3) of Voigt stiffnesses ``C`` (..., 6, 6)."""
    entries = {}
    for i in range(3):
        for j in range(i, 3):
            entries[i, j] = sum(C[..., _VOIGT[i, k], _VOIGT[j, k]] for k in range(3))
    return _symmetric(entries)


def _eigenvectors(symmetric: Array) -> Array:
    if is_torch(symmetric):
        return torch.linalg.eigh(symmetric)[1]
    return np.linalg.eigh(symmetric)[1]


def _sign(x: Array) -> Array:
    if is_torch(x):
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    return np.where(x >= 0, 1.0, -1.0)


def material_frame(C: Array) -> Array:
    """Proper rotations ``Q`` (..., 3, 3) of the material frame (see the module docstring).

    Not differentiable (a frame is a discrete choice); torch inputs give detached outputs.
    """
    if is_torch(C):
        C = C.detach()
    Q = _eigenvectors(dilatational_tensor(C))
    if is_torch(Q):
        handed = torch.linalg.det(Q)
    else:
        handed = np.linalg.det(Q)
    Q = stack([Q[..., :, 0], Q[..., :, 1], Q[..., :, 2] * handed[..., None]], -1)
    v = voigt_contracted_tensor(rotate_stiffness(C, transpose(Q)))
    s12, s13 = _sign(v[..., 0, 1]), _sign(v[..., 0, 2])
    # diag(1, s12, s13) keeps v'_12, v'_13 >= 0; a negative determinant is made proper by -1,
    # which leaves every stiffness unchanged (a fourth-order tensor is even).
    flips = stack([s12 * s13, s13, s12], -1)
    return Q * flips[..., None, :]


def canonical_stiffness(C: Array) -> tuple[Array, Array]:
    """``(Q, Q^T . C)``: the material frame and the stiffness in it (..., 3, 3), (..., 6, 6)."""
    Q = material_frame(C)
    return Q, rotate_stiffness(C, transpose(Q))


def closest_orthotropic(C: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The orthotropic stiffness closest to ``C`` (6, 6) in its material frame (numpy only).

    Returns ``(Q, C_ortho, distance)``: the material frame ``Q`` (3, 3) of
    :func:`material_frame` (its columns are the orthotropy axes, the eigenvectors of the
    dilatational tensor, as proposed by Cowin 1989 for the symmetry axes), ``C_ortho`` (6, 6):
    the nine orthotropic constants of ``Q^T . C`` with the couplings set to zero (the nearest
    orthotropic tensor in that frame in the Frobenius norm of the Mandel form), and
    ``distance = |Q^T . C - C_ortho| / |Q^T . C|`` in that norm (0 for an orthotropic ``C``
    whose dilatational tensor has distinct eigenvalues).
    """
    C = np.asarray(C, dtype=np.float64)
    Q, canonical = canonical_stiffness(C)
    ortho = matrix_from_orthotropic9(orthotropic9_from_matrix(canonical))
    norm = float(np.linalg.norm(voigt_to_mandel(canonical)))
    distance = float(np.linalg.norm(voigt_to_mandel(canonical - ortho))) / norm if norm > 0 else 0.0
    return np.asarray(Q), np.asarray(ortho), distance


__all__ = [
    "canonical_stiffness",
    "closest_orthotropic",
    "dilatational_tensor",
    "material_frame",
    "voigt_contracted_tensor",
]
