"""A deterministic bone-like demo scan: a grey micro-CT-like image made by the package.

The microstructure is the excursion set ``phi(x) > t(x)`` of a Gaussian random field (white
noise filtered by an anisotropic Gaussian kernel, correlation length ``(1, 1, 1.8) * 3``
voxels: struts and plates elongated along x3, as trabecular bone along its main load axis),
with a threshold ``t(x) = Phi^-1(1 - rho(x))`` that grades the bone volume fraction linearly
from ``rho_min`` at ``x1 = 0`` to ``rho_max`` at the far end. Grey values imitate a scan:
bone 180, marrow 50, Gaussian noise of standard deviation 12, clipped to uint8. The same
``(n, seed)`` gives the same image bit for bit (numpy's PCG64 and FFT).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from metainv.errors import MetainvError

#: Correlation lengths of the field in voxels along x1, x2, x3.
CORRELATION = (3.0, 3.0, 5.4)
BONE_GREY, MARROW_GREY, NOISE_GREY = 180.0, 50.0, 12.0


def demo_scan(
    n: int = 96, seed: int = 0, rho_min: float = 0.22, rho_max: float = 0.38
) -> np.ndarray:
    """A grey (n, n, n) uint8 bone-like image (module docstring)."""
    if not 8 <= int(n) <= 512:
        raise MetainvError(f"the demo scan edge must lie in 8..512 voxels, got {n}")
    if not 0.0 < rho_min <= rho_max < 1.0:
        raise MetainvError(f"need 0 < rho_min <= rho_max < 1, got {rho_min}, {rho_max}")
    n = int(n)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, n, n))
    k = [2.0 * np.pi * np.fft.fftfreq(n)] * 2 + [2.0 * np.pi * np.fft.rfftfreq(n)]
    kx, ky, kz = np.meshgrid(*k, indexing="ij")
    kernel = np.exp(
        -0.5
        * ((kx * CORRELATION[0]) ** 2 + (ky * CORRELATION[1]) ** 2 + (kz * CORRELATION[2]) ** 2)
    )
    field = np.fft.irfftn(np.fft.rfftn(noise) * kernel, s=(n, n, n), axes=(0, 1, 2))
    field = (field - field.mean()) / field.std()
    rho = np.linspace(rho_min, rho_max, n)[:, None, None]
    solid = field > ndtri(1.0 - rho)
    grey = np.where(solid, BONE_GREY, MARROW_GREY) + NOISE_GREY * rng.standard_normal((n, n, n))
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)
