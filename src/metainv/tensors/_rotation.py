"""Rotations: Bond matrices for Voigt stiffness, angle-axis, the 6-D representation, sampling.

All functions are batched over leading axes and accept numpy arrays or torch tensors.
"""

from __future__ import annotations

import numpy as np

from metainv.tensors._backend import (
    Array,
    cos,
    cross,
    einsum,
    index,
    is_torch,
    sin,
    sqrt,
    stack,
    transpose,
)
from metainv.tensors._voigt import VOIGT_PAIRS

_PAIRS = np.array(VOIGT_PAIRS)
# For K_IJ with I = (i, j), J = (k, l): index grids of shape (6, 6).
_I = np.repeat(_PAIRS[:, 0][:, None], 6, axis=1)
_J = np.repeat(_PAIRS[:, 1][:, None], 6, axis=1)
_K = np.repeat(_PAIRS[:, 0][None, :], 6, axis=0)
_L = np.repeat(_PAIRS[:, 1][None, :], 6, axis=0)
_HALF_ON_NORMAL_COLUMNS = np.where(_K == _L, 0.5, 1.0)


def bond_matrix(R: Array) -> Array:
    r"""Bond stress-transformation matrix ``K`` (..., 6, 6) of rotations ``R`` (..., 3, 3).

    SI Eqs. 8-9 (Bond 1943), written for all 36 entries at once:

    .. math:: K_{IJ} = \tfrac{1}{1+\delta_{kl}} (R_{ik} R_{jl} + R_{il} R_{jk}),
              \quad I \leftrightarrow (i,j),\ J \leftrightarrow (k,l),

    which gives ``K1`` (``R_ik^2``), ``2 K2``, ``K3`` and ``K4`` of the SI blockwise.
    """
    i, j, k, m = (index(a, R) for a in (_I, _J, _K, _L))
    factor = _HALF_ON_NORMAL_COLUMNS
    if is_torch(R):
        import torch

        factor = torch.as_tensor(factor, dtype=R.dtype, device=R.device)
    return (R[..., i, k] * R[..., j, m] + R[..., i, m] * R[..., j, k]) * factor


def rotate_stiffness(C: Array, R: Array) -> Array:
    r"""Rotate a Voigt stiffness: ``C' = K C K^T`` (SI Eq. 7).

    Equals the tensor rule :math:`C'_{pqrs} = R_{pi} R_{qj} R_{rk} R_{sl} C_{ijkl}`.
    Shapes: ``C`` (..., 6, 6), ``R`` (..., 3, 3), broadcast over leading axes.
    """
    K = bond_matrix(R)
    return K @ C @ transpose(K)


def rotate_tensor4(T: Array, R: Array) -> Array:
    """Reference rotation of a fourth-order tensor (..., 3, 3, 3, 3) by ``R`` (..., 3, 3)."""
    return einsum("...pi,...qj,...rk,...sl,...ijkl->...pqrs", R, R, R, R, T)


def rotation_from_angle_axis(angle: Array, axis: Array) -> Array:
    r"""Rodrigues' formula, angle (...,) in radians and axis (..., 3) -> R (..., 3, 3).

    .. math:: R = I + \sin\theta\, [a]_\times + (1 - \cos\theta) [a]_\times^2

    The axis is normalized here; a zero axis is an error of the caller.
    """
    a = axis / _norm(axis)
    zero = a[..., 0] * 0
    a1, a2, a3 = a[..., 0], a[..., 1], a[..., 2]
    skew = stack(
        [
            stack([zero, -a3, a2], axis=-1),
            stack([a3, zero, -a1], axis=-1),
            stack([-a2, a1, zero], axis=-1),
        ],
        axis=-2,
    )
    s = sin(angle)[..., None, None]
    c = cos(angle)[..., None, None]
    return _eye_like(skew) + s * skew + (1 - c) * (skew @ skew)


def _eye_like(x: Array) -> Array:
    if is_torch(x):
        import torch

        return torch.eye(3, dtype=x.dtype, device=x.device)
    return np.eye(3, dtype=x.dtype)


def angle_axis_from_rotation(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`rotation_from_angle_axis` for numpy ``R`` (..., 3, 3).

    Returns ``angle`` (...,) in [0, pi] and a unit ``axis`` (..., 3). For ``angle = 0`` the axis is
    arbitrary and returned as e3.
    """
    R = np.asarray(R, dtype=float)
    cos_angle = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos_angle)
    vee = np.stack(
        [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]],
        axis=-1,
    )
    norm = np.linalg.norm(vee, axis=-1, keepdims=True)
    axis = np.where(norm > 1e-8, vee / np.maximum(norm, 1e-300), 0.0)
    # Near pi the vee vector vanishes: read the axis from the symmetric part R + I = 2 a a^T.
    sym = (R + np.eye(3)) / 2.0
    column = np.argmax(np.diagonal(sym, axis1=-2, axis2=-1), axis=-1)
    from_sym = np.take_along_axis(sym, column[..., None, None], axis=-1)[..., 0]
    from_sym = from_sym / np.linalg.norm(from_sym, axis=-1, keepdims=True)
    near_pi = (norm[..., 0] <= 1e-8) & (angle > np.pi / 2)
    axis = np.where(near_pi[..., None], from_sym, axis)
    identity = (norm[..., 0] <= 1e-8) & ~near_pi
    axis = np.where(identity[..., None], np.array([0.0, 0.0, 1.0]), axis)
    return angle, axis


def rotation_from_6d(a: Array) -> Array:
    r"""Continuous 6-D representation (..., 6) -> rotation (..., 3, 3) (SI Eq. 6).

    With ``a = (a1, a2)``: ``b1 = N(a1)``, ``b2 = N(a2 - (b1.a2) b1)``, ``b3 = b1 x b2``, and
    ``R = [b1 b2 b3]`` column-wise (Zhou et al. 2019).
    """
    a1, a2 = a[..., 0:3], a[..., 3:6]
    b1 = a1 / _norm(a1)
    b2 = a2 - (b1 * a2).sum(-1)[..., None] * b1
    b2 = b2 / _norm(b2)
    b3 = cross(b1, b2)
    return stack([b1, b2, b3], axis=-1)


def sixd_from_rotation(R: Array) -> Array:
    """Rotation (..., 3, 3) -> its 6-D representation (..., 6): the first two columns."""
    if is_torch(R):
        import torch

        return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)
    return np.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def _norm(v: Array) -> Array:
    return sqrt((v * v).sum(-1))[..., None]


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotations drawn from the uniform (Haar) measure on SO(3), shape (n, 3, 3).

    Uses normalized Gaussian quaternions (Shoemake 1992).
    """
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def random_unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors uniform on the sphere, shape (n, 3)."""
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sample_angle_axis(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The data-set rotation law of the spec (truss.md section 3).

    Angle ``theta ~ U(-pi, pi)`` about an axis uniform on the unit sphere. Note that this is not
    the Haar measure on SO(3) (use :func:`random_rotations` for that). Returns angle (n,) and
    axis (n, 3).
    """
    angle = rng.uniform(-np.pi, np.pi, size=n)
    axis = random_unit_vectors(n, rng)
    return angle, axis


def is_rotation(R: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Whether each ``R`` (..., 3, 3) is orthogonal with determinant +1 within ``tol``."""
    R = np.asarray(R, dtype=float)
    orth = np.abs(R @ np.swapaxes(R, -1, -2) - np.eye(3)).max(axis=(-2, -1)) <= tol
    return orth & (np.abs(np.linalg.det(R) - 1.0) <= tol)
