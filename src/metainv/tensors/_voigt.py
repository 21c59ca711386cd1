"""Voigt, Mandel, full fourth-order and 21-vector forms of a stiffness.

Conventions (spec ``truss.md`` section 1): Voigt order 11, 22, 33, 23, 13, 12 and engineering
shear strains, so ``sigma = C @ [e11, e22, e33, 2 e23, 2 e13, 2 e12]``. Then the Voigt stiffness
holds the tensor components unchanged, ``C_IJ = C_ijkl``, while the Mandel form scales shear rows
and columns by sqrt(2): ``M_IJ = w_I w_J C_IJ`` with ``w = (1, 1, 1, sqrt2, sqrt2, sqrt2)``.
"""

from __future__ import annotations

import numpy as np

from metainv.tensors._backend import Array, concatenate, constant, index

#: Voigt index I -> tensor index pair (i, j), order 11, 22, 33, 23, 13, 12.
VOIGT_PAIRS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))

#: Tensor index pair (i, j) -> Voigt index, shape (3, 3).
VOIGT_INDEX = np.array([[0, 5, 4], [5, 1, 3], [4, 3, 2]])

#: Mandel weights w_I.
MANDEL_WEIGHTS = np.array([1.0, 1.0, 1.0, np.sqrt(2.0), np.sqrt(2.0), np.sqrt(2.0)])

#: Row and column of the 21 independent constants: upper triangle, row major (spec order
#: C11 C12 C13 C14 C15 C16 C22 ... C66).
TRIU_ROWS, TRIU_COLS = np.triu_indices(6)

#: Names of the 21 constants in spec order.
C21_NAMES: tuple[str, ...] = tuple(
    f"C{i + 1}{j + 1}" for i, j in zip(TRIU_ROWS, TRIU_COLS, strict=True)
)

#: The 9 orthotropic constants C11 C12 C13 C22 C23 C33 C44 C55 C66 as (row, col) in 6x6.
ORTHO_ROWS = np.array([0, 0, 0, 1, 1, 2, 3, 4, 5])
ORTHO_COLS = np.array([0, 1, 2, 1, 2, 2, 3, 4, 5])
ORTHO_NAMES: tuple[str, ...] = tuple(
    f"C{i + 1}{j + 1}" for i, j in zip(ORTHO_ROWS, ORTHO_COLS, strict=True)
)


def voigt_to_mandel(C: Array) -> Array:
    """Voigt stiffness (..., 6, 6) -> Mandel stiffness (..., 6, 6)."""
    w = constant(MANDEL_WEIGHTS, C)
    return C * w[:, None] * w[None, :]


def mandel_to_voigt(M: Array) -> Array:
    """Mandel stiffness (..., 6, 6) -> Voigt stiffness (..., 6, 6)."""
    w = constant(MANDEL_WEIGHTS, M)
    return M / (w[:, None] * w[None, :])


def voigt_to_tensor(C: Array) -> Array:
    """Voigt stiffness (..., 6, 6) -> fourth-order tensor (..., 3, 3, 3, 3), ``C_ijkl = C_IJ``."""
    row = VOIGT_INDEX[:, :, None, None]
    col = VOIGT_INDEX[None, None, :, :]
    row, col = np.broadcast_arrays(row, col)
    return C[..., index(row, C), index(col, C)]


def tensor_to_voigt(T: Array) -> Array:
    """Fourth-order tensor (..., 3, 3, 3, 3) -> Voigt stiffness (..., 6, 6).

    Reads ``C_IJ = T_ijkl`` from the pairs of :data:`VOIGT_PAIRS`; minor symmetry is assumed.
    """
    pairs = np.array(VOIGT_PAIRS)
    i = pairs[:, 0][:, None] * np.ones((1, 6), dtype=int)
    j = pairs[:, 1][:, None] * np.ones((1, 6), dtype=int)
    k = pairs[:, 0][None, :] * np.ones((6, 1), dtype=int)
    m = pairs[:, 1][None, :] * np.ones((6, 1), dtype=int)
    return T[..., index(i, T), index(j, T), index(k, T), index(m, T)]


def c21_from_matrix(C: Array) -> Array:
    """6x6 (..., 6, 6) -> 21-vector (..., 21) in spec order (upper triangle, row major)."""
    return C[..., index(TRIU_ROWS, C), index(TRIU_COLS, C)]


def matrix_from_c21(c21: Array) -> Array:
    """21-vector (..., 21) -> symmetric 6x6 (..., 6, 6)."""
    lookup = np.zeros((6, 6), dtype=int)
    lookup[TRIU_ROWS, TRIU_COLS] = np.arange(21)
    lookup[TRIU_COLS, TRIU_ROWS] = np.arange(21)
    flat = c21[..., index(lookup.ravel(), c21)]
    return flat.reshape((*c21.shape[:-1], 6, 6))


def orthotropic9_from_matrix(C: Array) -> Array:
    """6x6 (..., 6, 6) -> 9 orthotropic constants (..., 9): C11 C12 C13 C22 C23 C33 C44 C55 C66."""
    return C[..., index(ORTHO_ROWS, C), index(ORTHO_COLS, C)]


def matrix_from_orthotropic9(c9: Array) -> Array:
    """9 orthotropic constants (..., 9) -> symmetric 6x6 (..., 6, 6) with zero couplings."""
    lookup = np.full((6, 6), 9, dtype=int)  # index 9 -> an appended zero
    lookup[ORTHO_ROWS, ORTHO_COLS] = np.arange(9)
    lookup[ORTHO_COLS, ORTHO_ROWS] = np.arange(9)
    zero = c9[..., :1] * 0
    padded = concatenate([c9, zero], axis=-1)
    flat = padded[..., index(lookup.ravel(), padded)]
    return flat.reshape((*c9.shape[:-1], 6, 6))
