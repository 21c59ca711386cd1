r"""Material laws ``rho -> D^H(rho)`` of graded lattices, their registry, and SIMP on top.

A law maps the relative density ``rho`` of the lattice in an element to its homogenized Voigt
stiffness (order 11, 22, 33, 23, 13, 12, engineering shears, normalized by the solid's Young's
modulus ``E_s``). Every law is written as a sum of constant basis matrices times scalar functions,

.. math:: D^H(\rho) = \sum_{k=1}^{m} c_k(\rho)\, D_k ,

which is what the assembly exploits (:mod:`metainv.fem.assembly`): the stiffness of every element is
a combination of ``m`` reference element matrices. Laws shipped here:

* ``solid``: ``D^H = D_s`` (isotropic solid, ``m = 1``): with SIMP this is classical SIMP;
* ``isotruss``: ``D^H = E^H(\rho)/E_s \, D_s`` with the polynomial of SI Eq. 2 (Arabnejad and
  Pasini 2013), ``E^H/E_s = (0.20529 - 0.03303 \nu_s)\rho + (0.08121 + 0.27243 \nu_s)\rho^2
  + (0.64974 - 0.24237 \nu_s)\rho^3`` and the solid's Poisson ratio (isotropic ``D^H``);
* ``gyroid``: the cubic exponential law of SI Eq. 1 fitted to our voxel homogenization
  (:mod:`metainv.tpms`), ``m = 3`` (``C11``, ``C12``, ``C44`` bases);
* ``truss`` and ``spinodoid``: tabulated homogenizations of one truss design and of an
  isotropic spinodoid (:mod:`metainv.topopt.lattices`), registered there.

Density range
-------------
Every law carries ``density_range = (rho_min, rho_max)``, the densities over which it was fitted
or tabulated. The optimizer bounds the element densities to it (box constraints), so a law is
never extrapolated (an exponential fit of SI Eq. 1 used past its fit range can even exceed the
Voigt bound ``rho D_s``). Laws valid over all densities use ``(0, 1)``.

Registering more laws
---------------------
Forward models of other lattices (truss, spinodoid) plug in with :func:`register_law`, giving a
name and a zero-argument factory that returns a :class:`MaterialLaw` (loaded lazily, only when
the law is asked for). Any law with a differentiable ``D(rho)`` can be wrapped with
:func:`law_from_stiffness` (21 symmetric basis matrices), or built directly as a
:class:`BasisLaw` when it has fewer independent functions.

Modified SIMP on top of the law (SI Eq. 8)
------------------------------------------
The element stiffness is the law's stiffness scaled by the modified-SIMP factor, with a floor
``E_min`` relative to the law's fully dense stiffness so that void elements stay non-singular:

.. math:: D_e = E_{min}\, D^H(\rho_{max}) + (1 - E_{min})\, \rho_e^{p}\, D^H(\rho_e),

i.e. ``[E_min + rho^p (E_0 - E_min)] k_0`` of SI Eq. 8 with ``k_0 = k(D^H(rho))`` and
``E_0 = 1``. For the ``solid`` law this is classical modified SIMP; ``p = 0`` leaves the law
alone; the paper uses ``p = 1``. The coefficients stay scalar functions of ``rho``:

.. math:: g_k(\rho) = E_{min} c_k(\rho_{max}) + (1 - E_{min}) \rho^p c_k(\rho), \qquad
          g_k'(\rho) = (1 - E_{min}) (p \rho^{p-1} c_k(\rho) + \rho^p c_k'(\rho)).

Passive (non-design) elements are the solid itself, ``D_e = D_s``, whatever the law: their
coefficients are the exact expansion of ``D_s`` in the law's basis
(:func:`solid_coefficients`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from metainv.errors import MetainvError
from metainv.tensors import C21_NAMES, c21_from_matrix, isotropic_stiffness, matrix_from_c21

logger = logging.getLogger(__name__)

#: Poisson ratio of the solid (all stiffness normalized by its Young's modulus).
SOLID_POISSON_RATIO = 0.3

#: SI Eq. 2 coefficients: E^H/E_s = sum_n (alpha_n + beta_n nu_s) rho^n, n = 1, 2, 3.
ISOTRUSS_ALPHA = np.array([0.20529, 0.08121, 0.64974])
ISOTRUSS_BETA = np.array([-0.03303, 0.27243, -0.24237])

Coefficients = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@runtime_checkable
class MaterialLaw(Protocol):
    """What the optimizer needs from a law.

    name: registry name
    basis: (m, 6, 6) constant symmetric matrices ``D_k``
    density_range: ``(rho_min, rho_max)`` in which the law holds; the optimizer keeps the
        element densities inside it
    coefficients(rho (n,)) -> (c (n, m), dc/drho (n, m)) with ``D^H(rho) = sum_k c_k D_k``
    """

    name: str
    basis: np.ndarray
    density_range: tuple[float, float]

    def coefficients(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, eq=False)
class BasisLaw:
    """A law ``D^H(rho) = sum_k c_k(rho) D_k`` from basis matrices and a coefficient function.

    name: registry name
    basis: (m, 6, 6)
    functions: rho (n,) -> (c (n, m), dc/drho (n, m))
    description: one line for listings
    metadata: free-form facts (fit data, source)
    density_range: ``(rho_min, rho_max)``, ``0 <= rho_min < rho_max <= 1``, where the law holds
    """

    name: str
    basis: np.ndarray
    functions: Coefficients
    description: str = ""
    metadata: dict = field(default_factory=dict)
    density_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        low, high = (float(v) for v in self.density_range)
        if not 0.0 <= low < high <= 1.0:
            raise MetainvError(
                f"law {self.name!r}: density range must satisfy 0 <= rho_min < rho_max <= 1,"
                f" got {self.density_range}"
            )
        object.__setattr__(self, "density_range", (low, high))

    def coefficients(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rho = np.atleast_1d(np.asarray(rho, dtype=float))
        values, derivatives = self.functions(rho)
        return np.asarray(values, float), np.asarray(derivatives, float)

    def stiffness(self, rho: np.ndarray | float) -> np.ndarray:
        """``D^H(rho)`` (n, 6, 6) for densities (n,) (a scalar gives (1, 6, 6))."""
        return stiffness(self, rho)

    def stiffness_derivative(self, rho: np.ndarray | float) -> np.ndarray:
        """``dD^H/drho`` (n, 6, 6)."""
        return stiffness_derivative(self, rho)


def stiffness(law: MaterialLaw, rho: np.ndarray | float) -> np.ndarray:
    """``D^H(rho) = sum_k c_k(rho) D_k`` (n, 6, 6) of any law, densities (n,)."""
    values, _ = law.coefficients(np.atleast_1d(np.asarray(rho, float)))
    return np.einsum("nk,kij->nij", values, law.basis)


def stiffness_derivative(law: MaterialLaw, rho: np.ndarray | float) -> np.ndarray:
    """``dD^H/drho = sum_k c_k'(rho) D_k`` (n, 6, 6)."""
    _, derivatives = law.coefficients(np.atleast_1d(np.asarray(rho, float)))
    return np.einsum("nk,kij->nij", derivatives, law.basis)


def simp_coefficients(
    law: MaterialLaw, rho: np.ndarray, penalty: float, e_min: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""Element coefficients ``g_k(rho_e)`` and ``g_k'(rho_e)`` (nel, m) of SIMP on the law.

    ``g_k = E_min c_k(rho_max) + (1 - E_min) rho^p c_k(rho)`` (module docstring, SI Eq. 8).
    """
    rho = np.asarray(rho, dtype=float)
    values, derivatives = law.coefficients(rho)
    dense, _ = law.coefficients(np.array([law.density_range[1]]))
    power = rho**penalty
    if penalty == 0:
        power_derivative = np.zeros_like(rho)
    else:
        power_derivative = penalty * np.maximum(rho, 1e-300) ** (penalty - 1.0)
    g = e_min * dense + (1.0 - e_min) * power[:, None] * values
    dg = (1.0 - e_min) * (power_derivative[:, None] * values + power[:, None] * derivatives)
    return g, dg


def solid_coefficients(law: MaterialLaw, poisson_ratio: float | None = None) -> np.ndarray:
    """Coefficients (m,) with ``sum_k c_k D_k = D_s``, the isotropic solid in the law's basis.

    ``poisson_ratio`` defaults to the law's ``metadata["poisson_ratio"]`` or
    :data:`SOLID_POISSON_RATIO`. Least squares on the 36 entries; raises
    :class:`~metainv.errors.MetainvError` when the basis cannot represent the solid exactly.
    """
    if poisson_ratio is None:
        poisson_ratio = getattr(law, "metadata", {}).get("poisson_ratio", SOLID_POISSON_RATIO)
    solid = isotropic_stiffness(1.0, poisson_ratio)
    basis = np.asarray(law.basis, dtype=float).reshape(len(law.basis), 36)
    coefficients, *_ = np.linalg.lstsq(basis.T, solid.ravel(), rcond=None)
    residual = np.abs(coefficients @ basis - solid.ravel()).max()
    if residual > 1e-10 * np.abs(solid).max():
        raise MetainvError(
            f"law {law.name!r} cannot represent the isotropic solid in its basis"
            f" (residual {residual:.2e}); passive solid elements need it"
        )
    return coefficients


def solid_law(poisson_ratio: float = SOLID_POISSON_RATIO) -> BasisLaw:
    """The isotropic solid itself, ``D^H = D_s`` for every density (classical SIMP)."""

    def functions(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.ones((rho.size, 1)), np.zeros((rho.size, 1))

    return BasisLaw(
        name="solid",
        basis=isotropic_stiffness(1.0, poisson_ratio)[None],
        functions=functions,
        description="isotropic solid (classical SIMP)",
    )


def isotruss_modulus(
    rho: np.ndarray, poisson_ratio: float = SOLID_POISSON_RATIO
) -> tuple[np.ndarray, np.ndarray]:
    r"""``E^H/E_s`` of the iso-truss (SI Eq. 2) and its derivative, both shaped like ``rho``.

    .. math:: E^H/E_s = \sum_{n=1}^{3} (\alpha_n + \beta_n \nu_s)\, \rho^n
    """
    rho = np.asarray(rho, dtype=float)
    a = ISOTRUSS_ALPHA + ISOTRUSS_BETA * poisson_ratio
    modulus = a[0] * rho + a[1] * rho**2 + a[2] * rho**3
    return modulus, a[0] + 2 * a[1] * rho + 3 * a[2] * rho**2


def isotruss_law(poisson_ratio: float = SOLID_POISSON_RATIO) -> BasisLaw:
    """Iso-truss lattice: isotropic ``D^H = (E^H(rho)/E_s) D_s(E=1, nu_s)`` (SI Eq. 2)."""

    def functions(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        modulus, derivative = isotruss_modulus(rho, poisson_ratio)
        return modulus[:, None], derivative[:, None]

    return BasisLaw(
        name="isotruss",
        basis=isotropic_stiffness(1.0, poisson_ratio)[None],
        functions=functions,
        description="iso-truss lattice, polynomial law of SI Eq. 2 (Arabnejad and Pasini 2013)",
        metadata={"poisson_ratio": poisson_ratio},
    )


#: The 21 symmetric unit matrices (21, 6, 6), in the spec's C21 order.
SYMMETRIC_BASIS = matrix_from_c21(np.eye(21))


def law_from_stiffness(
    name: str,
    stiffness_function: Callable[[np.ndarray], np.ndarray],
    derivative_function: Callable[[np.ndarray], np.ndarray],
    description: str = "",
    density_range: tuple[float, float] = (0.0, 1.0),
    metadata: dict | None = None,
) -> BasisLaw:
    """Wrap any ``D(rho)`` (n,) -> (n, 6, 6) and ``dD/drho`` as a law on the 21 symmetric bases.

    For forward models (truss, spinodoid) that give the full stiffness of a density; the
    assembly then scales 21 reference matrices per element.
    """

    def functions(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return c21_from_matrix(stiffness_function(rho)), c21_from_matrix(derivative_function(rho))

    return BasisLaw(
        name=name,
        basis=SYMMETRIC_BASIS,
        functions=functions,
        description=description,
        metadata={"basis_names": list(C21_NAMES), **(metadata or {})},
        density_range=density_range,
    )


#: Law name -> zero-argument factory (lazy: a factory runs only when its law is asked for);
#: the gyroid, truss and spinodoid laws are registered by :mod:`metainv.topopt.lattices`.
_LAWS: dict[str, Callable[[], MaterialLaw]] = {
    "isotruss": isotruss_law,
    "solid": solid_law,
}


def register_law(name: str, factory: Callable[[], MaterialLaw], replace: bool = False) -> None:
    """Make a law available to the optimizer and the CLI (``--material NAME``).

    name: registry name (lower case, no spaces)
    factory: zero-argument callable returning a :class:`MaterialLaw`; it may raise
        :class:`~metainv.errors.MetainvError` when its data or model is unavailable.
    replace: allow overwriting an existing name.
    """
    if not name or name != name.strip() or " " in name:
        raise MetainvError(f"law name must be a non-empty word, got {name!r}")
    if name in _LAWS and not replace:
        raise MetainvError(f"material law {name!r} is already registered")
    _LAWS[name] = factory


def available_laws() -> list[str]:
    """Registered law names, sorted."""
    return sorted(_LAWS)


def get_law(name: str) -> MaterialLaw:
    """The law registered under ``name`` (clear error listing the available ones otherwise)."""
    if name not in _LAWS:
        raise MetainvError(
            f"unknown material {name!r}; available: {', '.join(available_laws())}"
            " (more can be added with metainv.topopt.register_law)"
        )
    law = _LAWS[name]()
    if not isinstance(law, MaterialLaw):
        raise MetainvError(f"material law {name!r} does not provide name, basis and coefficients")
    return law
