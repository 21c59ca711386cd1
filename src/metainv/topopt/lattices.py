r"""Tabulated lattice laws for topology optimization: a truss design and an isotropic spinodoid.

Both laws are homogenized with the project's own forward models, tabulated over the lattice's
relative density, fitted by a low-order polynomial (smooth, with an exact derivative for the
sensitivities) and shipped as JSON in ``metainv/topopt/data/<law>.json``;
``metainv laws table truss|spinodoid`` regenerates a table (:func:`law_table_data`).

``truss``
    One fixed design: the compound of the simple-cubic and the octet cells (topology
    ``((1, 1), (2, 1), (2, 1))``, unstretched, unrotated; Bastek et al. 2022 cells 1 and 2) with
    one strut diameter, homogenized with rigid-jointed Timoshenko beams
    (:func:`metainv.truss.homogenize.homogenize_lattice`). It has cubic symmetry, so three
    constants ``C11, C12, C44`` describe it; it is nearly isotropic (Zener ratio
    ``2 C44 / (C11 - C12)`` about 1.17; the octet alone has about 1.98) and stretch-dominated
    (``C / rho`` changes by under 1 % over the range; the cubic fits the table to 5e-8 relative
    RMS). Beam models hold for slender struts only, so the table covers the truss design range
    ``rho_t in [0.002, 0.1]`` (:data:`metainv.truss.design.RELATIVE_DENSITY_RANGE`); the
    polynomial goes to 0 with ``rho_t`` below it. **Density map:** the optimizer's
    density ``rho in [0, 1]`` is the truss relative density scaled to that range,
    ``rho_t = 0.1 rho`` (:data:`TRUSS_DENSITY_SCALE`): ``rho = 1`` is the densest truss, and
    volume fractions and densities of a truss run are in units of ``rho_t / 0.1``. Each constant
    is fitted by ``c(rho_t) = sum_{k=1}^{3} alpha_k rho_t^k`` (no constant term: the lattice
    vanishes with its struts; ``rho_t`` is the stretching, ``rho_t^2`` the bending term of
    slender beams).
``spinodoid``
    Isotropic solid spinodoid (Kumar et al. 2020, cone angles ``(0, 0, 90)`` deg, the whole
    sphere of wave directions), voxelized at the exact density (sample quantile) and homogenized
    with affine boundary conditions (:func:`metainv.spinodoid.homogenize_spinodoid`) for a few
    field realizations, over the paper's range ``rho in [0.3, 1]`` (designs are valid down to
    0.15, :data:`metainv.spinodoid.design.RELATIVE_DENSITY_RANGE`, but below about 0.25 the
    isotropic solid often falls apart into islands, so the law keeps 0.3). The stiffness of each
    realization is projected on the isotropic tensors (bulk modulus ``k`` and shear modulus
    ``mu``, the Voigt average of the 6x6), averaged over realizations, and fitted by
    ``c(rho) = sum_{k=0}^{3} alpha_k rho^k`` including the solid point ``rho = 1``. The law's
    density range is ``(0.3, 1)``: the optimizer keeps every element within it. Shipped table:
    64^3 voxels, 3 realizations per density (about 5 CPU-minutes); the realizations' ``k`` and
    ``mu`` scatter by at most 3 % (rho = 0.3), one realization deviates from isotropy by up to
    19 % of its largest constant at rho = 0.3 and 2 % at 0.9, and the cubic fits ``k`` and
    ``mu`` to 0.1 % RMS of their largest value.

In both cases the law is ``D^H(rho) = sum_k c_k(s rho) D_k`` with ``s`` the density scale and
``c'`` from the polynomial's derivative (times ``s``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from metainv.errors import MetainvError
from metainv.tensors import cubic_stiffness
from metainv.topopt.materials import SOLID_POISSON_RATIO, BasisLaw, register_law
from metainv.tpms.law import CUBIC_BASIS, ExponentialFit, exponential_fit

logger = logging.getLogger(__name__)

DATA_PACKAGE = "metainv.topopt"

#: Truss design of the ``truss`` law: simple cubic + octet, identity affine map.
TRUSS_TOPOLOGY = ((1, 1), (2, 1), (2, 1))
#: Optimizer density 1 is this truss relative density (top of the truss design range).
TRUSS_DENSITY_SCALE = 0.1
#: Truss relative densities of the table.
TRUSS_DENSITIES = (0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1)

#: Isotropic spinodoid of the ``spinodoid`` law (cone half-angles in degrees).
SPINODOID_THETA = (0.0, 0.0, 90.0)
SPINODOID_DENSITIES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SPINODOID_RESOLUTION = 64
SPINODOID_SEEDS = (0, 1, 2)

CUBIC_NAMES = ("C11", "C12", "C44")

#: Isotropic bases (2, 6, 6) in Voigt form, C = 3 k J + 2 mu K: ``3 J`` has ones in the normal
#: block; ``2 K = diag(2, 2, 2, 1, 1, 1) - 2 J``. Coefficients: bulk modulus k, shear modulus mu.
_ONES = np.zeros((6, 6))
_ONES[:3, :3] = 1.0
ISOTROPIC_BASIS = np.stack([_ONES, np.diag([2.0, 2.0, 2.0, 1.0, 1.0, 1.0]) - 2.0 / 3.0 * _ONES])
ISOTROPIC_NAMES = ("k", "mu")


def isotropic_projection(C: np.ndarray) -> np.ndarray:
    r"""Bulk and shear moduli ``(k, mu)`` (..., 2) of the isotropic part of Voigt stiffnesses
    (..., 6, 6) (the Voigt average over orientations, the projection in the tensor norm):

    .. math:: 9k = C_{11} + C_{22} + C_{33} + 2 (C_{12} + C_{13} + C_{23}), \quad
              15\mu = C_{11} + C_{22} + C_{33} - (C_{12} + C_{13} + C_{23})
                      + 3 (C_{44} + C_{55} + C_{66}).
    """
    C = np.asarray(C, dtype=float)
    normal = C[..., 0, 0] + C[..., 1, 1] + C[..., 2, 2]
    off = C[..., 0, 1] + C[..., 0, 2] + C[..., 1, 2]
    shear = C[..., 3, 3] + C[..., 4, 4] + C[..., 5, 5]
    return np.stack([(normal + 2.0 * off) / 9.0, (normal - off + 3.0 * shear) / 15.0], axis=-1)


@dataclass(frozen=True, eq=False)
class PolynomialLaw:
    """``D^H(rho) = sum_k c_k(s rho) D_k`` with polynomial ``c_k(t) = sum_j A[k, j] t^{e_j}``.

    basis: (m, 6, 6); names: (m,) of the coefficients; exponents: (J,) non-negative ints;
    coefficients: (m, J) ``A``; scale: ``s``, optimizer density -> tabulated density;
    density_range: optimizer densities where the table holds.
    """

    name: str
    basis: np.ndarray
    names: tuple[str, ...]
    exponents: np.ndarray
    coefficients: np.ndarray
    scale: float
    density_range: tuple[float, float]
    description: str = ""
    metadata: dict | None = None

    def constants(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``c_k`` (n, m) at optimizer densities (n,) and ``dc_k/drho`` (n, m)."""
        t = self.scale * np.atleast_1d(np.asarray(rho, dtype=float))[:, None]
        e = np.asarray(self.exponents, dtype=float)
        powers = t**e  # (n, J)
        slopes = np.where(e > 0, e * t ** np.maximum(e - 1.0, 0.0), 0.0)
        return powers @ self.coefficients.T, self.scale * slopes @ self.coefficients.T

    def law(self) -> BasisLaw:
        return BasisLaw(
            name=self.name,
            basis=self.basis,
            functions=self.constants,
            description=self.description,
            metadata=dict(self.metadata or {}),
            density_range=self.density_range,
        )


def fit_polynomial(
    density: np.ndarray, values: np.ndarray, exponents: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``A`` (m, J) of ``values[:, k] ~ sum_j A[k, j] density^e_j`` and the RMS
    residual (m,), density (n,), values (n, m)."""
    rho = np.asarray(density, dtype=float)
    y = np.asarray(values, dtype=float)
    design = rho[:, None] ** np.asarray(exponents, dtype=float)[None, :]
    A, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = design @ A - y
    return A.T, np.sqrt(np.mean(residual**2, axis=0))


# ---------------------------------------------------------------- table generation


def truss_table(
    densities: Sequence[float] = TRUSS_DENSITIES,
    topology: Sequence[tuple[int, int]] = TRUSS_TOPOLOGY,
    poisson_ratio: float = SOLID_POISSON_RATIO,
) -> dict:
    """Cubic constants of the truss over relative densities (JSON-ready, normalized by E_b)."""
    from metainv.truss.homogenize import BeamMaterial, homogenize_lattice
    from metainv.truss.lattice import periodic_lattice, strut_diameter

    lattice = periodic_lattice(topology)
    F = np.eye(3)
    rho = np.asarray(densities, dtype=float)
    diameters = np.atleast_1d(strut_diameter(lattice, F, rho))
    C = homogenize_lattice(
        lattice,
        np.broadcast_to(F, (rho.size, 3, 3)).copy(),
        diameters,
        BeamMaterial(poisson_ratio=poisson_ratio),
    )
    constants = np.stack([C[:, 0, 0], C[:, 0, 1], C[:, 3, 3]], axis=1)
    cubic = np.stack([cubic_stiffness(*c) for c in constants])
    return {
        "density": rho.tolist(),
        "strut_diameter": diameters.tolist(),
        **{name: constants[:, i].tolist() for i, name in enumerate(CUBIC_NAMES)},
        "cubic_deviation": np.abs(C - cubic).max(axis=(1, 2)).tolist(),
        "zener_ratio": (2 * constants[:, 2] / (constants[:, 0] - constants[:, 1])).tolist(),
    }


def spinodoid_table(
    densities: Sequence[float] = SPINODOID_DENSITIES,
    resolution: int = SPINODOID_RESOLUTION,
    seeds: Sequence[int] = SPINODOID_SEEDS,
    theta: Sequence[float] = SPINODOID_THETA,
    poisson_ratio: float = SOLID_POISSON_RATIO,
    progress: Callable[[], None] | None = None,
) -> dict:
    """Isotropic ``(k, mu)`` of the spinodoid over densities, mean and spread over seeds."""
    from metainv.spinodoid.design import SpinodoidDesign
    from metainv.spinodoid.homogenize import homogenize_spinodoid

    moduli = np.zeros((len(densities), len(seeds), 2))
    meshed = np.zeros((len(densities), len(seeds)))
    anisotropy = np.zeros((len(densities), len(seeds)))
    for i, rho in enumerate(densities):
        for j, seed in enumerate(seeds):
            design = SpinodoidDesign(relative_density=float(rho), theta=np.asarray(theta))
            result = homogenize_spinodoid(
                design,
                resolution=resolution,
                seed=int(seed),
                poisson_ratio=poisson_ratio,
                threshold="exact",
            )
            k, mu = isotropic_projection(result.C)
            iso = k * ISOTROPIC_BASIS[0] + mu * ISOTROPIC_BASIS[1]
            moduli[i, j] = k, mu
            meshed[i, j] = result.relative_density
            anisotropy[i, j] = np.abs(result.C - iso).max() / np.abs(iso).max()
            logger.info("spinodoid rho=%.2f seed=%d: k=%.4g mu=%.4g", rho, seed, k, mu)
            if progress is not None:
                progress()
    mean = moduli.mean(axis=1)
    return {
        "density": meshed.mean(axis=1).tolist(),
        **{name: mean[:, i].tolist() for i, name in enumerate(ISOTROPIC_NAMES)},
        **{
            f"{name}_seed_spread": (moduli[:, :, i].std(axis=1) / mean[:, i]).tolist()
            for i, name in enumerate(ISOTROPIC_NAMES)
        },
        "anisotropy": anisotropy.max(axis=1).tolist(),
    }


def _solid_isotropic(poisson_ratio: float) -> tuple[float, float]:
    return 1.0 / (3.0 * (1.0 - 2.0 * poisson_ratio)), 1.0 / (2.0 * (1.0 + poisson_ratio))


@dataclass(frozen=True)
class TableSpec:
    """How one law is tabulated, fitted and turned into a law."""

    description: str
    names: tuple[str, ...]
    basis: np.ndarray
    exponents: tuple[int, ...]
    scale: float
    density_range: tuple[float, float]
    build: Callable[[TableOptions, Callable[[], None]], tuple[dict, dict]]
    steps: Callable[[TableOptions], int]
    metadata: dict


@dataclass(frozen=True)
class TableOptions:
    """Options of a table build: voxels per cell edge and field realizations (spinodoid),
    the solid's Poisson ratio."""

    resolution: int = SPINODOID_RESOLUTION
    seeds: int = len(SPINODOID_SEEDS)
    poisson: float = SOLID_POISSON_RATIO


def _build_truss(args: TableOptions, progress: Callable[[], None]) -> tuple[dict, dict]:
    table = truss_table(poisson_ratio=args.poisson)
    progress()
    options = {"topology": [list(pair) for pair in TRUSS_TOPOLOGY], "beam": "Timoshenko"}
    return table, options


def _build_spinodoid(args: TableOptions, progress: Callable[[], None]) -> tuple[dict, dict]:
    table = spinodoid_table(
        resolution=args.resolution,
        seeds=range(args.seeds),
        poisson_ratio=args.poisson,
        progress=progress,
    )
    k_s, mu_s = _solid_isotropic(args.poisson)
    for key, value in (("density", 1.0), ("k", k_s), ("mu", mu_s)):
        table[key].append(value)
    options = {
        "theta_deg": list(SPINODOID_THETA),
        "resolution": args.resolution,
        "seeds": args.seeds,
        "boundary": "affine",
        "threshold": "exact",
        "void": "removed",
    }
    return table, options


#: Law name -> its table recipe.
TABLES: dict[str, TableSpec] = {
    "truss": TableSpec(
        description=(
            "simple-cubic + octet truss (Timoshenko beams), cubic constants; optimizer density"
            " rho = truss relative density / 0.1"
        ),
        names=CUBIC_NAMES,
        basis=CUBIC_BASIS,
        exponents=(1, 2, 3),
        scale=TRUSS_DENSITY_SCALE,
        density_range=(0.0, 1.0),
        build=_build_truss,
        steps=lambda args: 1,
        metadata={"part": "truss", "density_scale": TRUSS_DENSITY_SCALE},
    ),
    "spinodoid": TableSpec(
        description="isotropic solid spinodoid (voxel FE, affine BCs), isotropic k and mu",
        names=ISOTROPIC_NAMES,
        basis=ISOTROPIC_BASIS,
        exponents=(0, 1, 2, 3),
        scale=1.0,
        density_range=(0.3, 1.0),
        build=_build_spinodoid,
        steps=lambda args: len(SPINODOID_DENSITIES) * args.seeds,
        metadata={"part": "spinodoid", "theta": list(SPINODOID_THETA)},
    ),
}


def data_path(name: str) -> Path:
    """Path of the shipped table of a law (may not exist)."""
    return Path(str(resources.files(DATA_PACKAGE).joinpath("data", f"{name}.json")))


def load_table(name: str, path: Path | None = None) -> dict:
    """The JSON table of a law (shipped file unless ``path`` is given)."""
    path = data_path(name) if path is None else Path(path)
    if not path.is_file():
        raise MetainvError(
            f"no {name} law table at {path}; regenerate it with: metainv laws table {name}"
        )
    return json.loads(path.read_text())


def table_law(name: str, path: Path | None = None) -> BasisLaw:
    """The law of a shipped table (``truss`` or ``spinodoid``)."""
    spec = TABLES[name]
    data = load_table(name, path)
    fit = data["fit"]
    return PolynomialLaw(
        name=name,
        basis=spec.basis,
        names=spec.names,
        exponents=np.array(fit["exponents"]),
        coefficients=np.array([fit["coefficients"][key] for key in spec.names]),
        scale=float(data["density_scale"]),
        density_range=tuple(data["density_range"]),
        description=spec.description,
        metadata={**spec.metadata, "poisson_ratio": data["poisson_ratio"]},
    ).law()


def _factory(name: str) -> Callable[[], BasisLaw]:
    def factory() -> BasisLaw:
        return table_law(name)

    return factory


def exponential_fit_law(fit: ExponentialFit, name: str) -> BasisLaw:
    """A fitted exponential law (SI Eq. 1) as a material law on the cubic bases."""
    return BasisLaw(
        name=name,
        basis=CUBIC_BASIS,
        functions=fit.constants,
        description=f"{fit.variant} {fit.surface}, exponential law of SI Eq. 1 (own fit)",
        metadata={"surface": fit.surface, "variant": fit.variant, "part": "tpms"},
        density_range=fit.density_range,
    )


def gyroid_law(variant: str = "sheet") -> BasisLaw:
    """Material law of the gyroid (SI Eq. 1, shipped fit); registered as ``gyroid`` (sheet)."""
    name = "gyroid" if variant == "sheet" else f"gyroid-{variant}"
    return exponential_fit_law(exponential_fit("gyroid", variant), name)


def _gyroid_factory(variant: str) -> Callable[[], BasisLaw]:
    def factory() -> BasisLaw:
        return gyroid_law(variant)

    return factory


def register_table_laws() -> None:
    """Register ``gyroid`` (sheet), ``gyroid-network``, ``truss`` and ``spinodoid`` (lazy: a
    table is read when its law is asked for)."""
    register_law("gyroid", _gyroid_factory("sheet"), replace=True)
    register_law("gyroid-network", _gyroid_factory("network"), replace=True)
    for name in TABLES:
        register_law(name, _factory(name), replace=True)


register_table_laws()


def law_table_data(
    law: str,
    options: TableOptions = TableOptions(),
    progress: Callable[[], None] | None = None,
    command: str = "",
) -> dict:
    """Tabulate the law ``law`` (``truss`` or ``spinodoid``) by FE and fit its polynomial:
    the JSON document of ``src/metainv/topopt/data/<law>.json``; ``progress`` is called after
    each of :func:`law_table_steps` steps."""
    if law not in TABLES:
        raise MetainvError(f"unknown law table {law!r} (expected one of: {', '.join(TABLES)})")
    if options.resolution < 4 or options.seeds < 1:
        raise MetainvError("--resolution must be >= 4 and --seeds >= 1")
    spec = TABLES[law]
    table, build_options = spec.build(options, progress or (lambda: None))
    values = np.stack([table[key] for key in spec.names], axis=1)
    coefficients, rms = fit_polynomial(table["density"], values, spec.exponents)
    scale = np.abs(values).max(axis=0)
    return {
        "description": spec.description,
        "command": command,
        "law": law,
        "options": build_options,
        "poisson_ratio": options.poisson,
        "youngs_modulus": 1.0,
        "density_scale": spec.scale,
        "density_range": list(spec.density_range),
        "table": table,
        "fit": {
            "form": "c(t) = sum_j A_j t^e_j, t = density_scale * rho",
            "exponents": list(spec.exponents),
            "coefficients": {key: coefficients[i].tolist() for i, key in enumerate(spec.names)},
            "rms": {key: float(rms[i]) for i, key in enumerate(spec.names)},
            "relative_rms": {key: float(rms[i] / scale[i]) for i, key in enumerate(spec.names)},
        },
    }


def law_table_steps(law: str, options: TableOptions = TableOptions()) -> int:
    """Number of progress steps of :func:`law_table_data`."""
    return TABLES[law].steps(options)
