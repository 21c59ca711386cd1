"""The TPMS family (gyroid, Schwarz P, diamond; sheet and network) as a
:class:`metainv.family.Family` value.

Homogenization is periodic voxel FE of one cell (:func:`metainv.tpms.law.homogenize_tpms`);
meshes are marching cubes of the level set (:func:`metainv.tpms.graded.graded_mesh` on a block
of uniform density); inverse design is a lookup in the shipped homogenization table (cubic
constants ``C11, C12, C44`` against density, interpolated linearly) verified by voxel FE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import DesignError
from metainv.family import (
    Candidate,
    DesignResult,
    Family,
    Homogenized,
    Material,
    candidate_summary,
)
from metainv.manufacturing import Features
from metainv.resources import check_fe_resolution, check_mesh_resolution
from metainv.tensors import nmse
from metainv.tpms.design import (
    FAMILY,
    TpmsDesign,
    design_from_dict,
    design_to_dict,
    sample_designs,
)

#: Voxels per cell edge of homogenization (the shipped table's resolution).
DEFAULT_RESOLUTION = 24
#: Samples per cell edge of an exported mesh.
EXPORT_RESOLUTION = 32


def homogenize_design(
    design: TpmsDesign, material: Material = Material(), resolution: int | None = None
) -> Homogenized:
    """Effective stiffness by periodic voxel FE on ``resolution``^3 voxels (default 24): ``C``
    (6, 6) in the unit of ``material.youngs_modulus``; ``relative_density`` is the voxel volume
    fraction actually meshed; details: ``resolution``."""
    from metainv.tpms.law import homogenize_tpms

    n = check_fe_resolution(DEFAULT_RESOLUTION if resolution is None else resolution)
    C, fraction = homogenize_tpms(
        design.surface,
        design.relative_density,
        n=n,
        variant=design.variant,
        poisson_ratio=material.poisson_ratio,
    )
    return Homogenized(
        C=material.youngs_modulus * np.asarray(C, dtype=float),
        relative_density=fraction,
        details={"resolution": n},
    )


def export_design(
    design: TpmsDesign,
    path: str | Path,
    cells: Sequence[int] = (1, 1, 1),
    fmt: str | None = None,
    resolution: int | None = None,
    size: float | None = None,
) -> None:
    """A ``cells`` block as a closed STL (marching cubes at ``resolution`` samples per cell
    edge, default 32; cell edge ``size``, default 1)."""
    from metainv.mesh import write_stl
    from metainv.tpms.graded import graded_mesh

    name = (fmt or Path(path).suffix.lstrip(".")).lower()
    if name != "stl":
        raise DesignError(f"unknown export format {name!r} for TPMS (expected: stl)")
    shape = tuple(int(c) for c in cells)
    if any(c < 1 or c > 20 for c in shape):
        raise DesignError(f"--cells must be between 1 and 20 per axis, got {shape}")
    if resolution is not None:
        check_mesh_resolution(resolution, int(np.prod(shape)))
    mesh = graded_mesh(
        np.full(shape, design.relative_density),
        surface=design.surface,
        variant=design.variant,
        period=1.0,
        voxels_per_element=EXPORT_RESOLUTION if resolution is None else int(resolution),
    )
    if size is not None:
        mesh.apply_scale(float(size))
    write_stl(mesh, path)


def tpms_features(design: TpmsDesign, pore: bool = True) -> Features:
    """Minimum wall and pore of one cell (edge = cell size 1) from a periodic voxel grid of
    :data:`metainv.manufacturing.FEATURE_RESOLUTION` per edge (local thickness that 5 % of
    the phase falls below, rounded down by up to a voxel; :mod:`metainv.manufacturing`); ``pore`` is
    accepted for the family protocol (both are measured together)."""
    from metainv.manufacturing import FEATURE_RESOLUTION, voxel_features
    from metainv.tpms.graded import graded_field

    n = FEATURE_RESOLUTION
    field = graded_field(
        np.full((1, 1, 1), design.relative_density),
        surface=design.surface,
        variant=design.variant,
        period=1.0,
        voxels_per_element=n,
    )
    wall, pore = voxel_features(field < 0, 1.0 / n, periodic=True)
    return Features(
        design_cell_size=1.0,
        cell_extent=(1.0, 1.0, 1.0),
        min_wall=wall,
        min_pore=pore,
        method=f"local thickness on a periodic {n}^3 voxel grid (5 % of a phase thinner)",
    )


def tpms_generation_parameters(resolution: int | None = None) -> dict[str, Any]:
    """Generation parameters (manifest): voxel resolution and the sampling law."""
    n = DEFAULT_RESOLUTION if resolution is None else int(resolution)
    if n < 8:
        raise DesignError(f"--resolution must be >= 8, got {n}")
    return {
        "schema_version": 1,
        "resolution": n,
        "law": "surface and variant uniform, relative density U[0.1, 0.6]",
        "base_material": {"youngs_modulus": 1.0, "poisson_ratio": 0.3},
    }


def tpms_shard(rows: int, rng: np.random.Generator, params: Mapping) -> dict[str, np.ndarray]:
    """``rows`` sampled designs with their voxel-FE stiffness (21 constants, ``C / E_b``)."""
    designs = sample_designs(rows, rng)
    material = Material(poisson_ratio=float(params["base_material"]["poisson_ratio"]))
    stiffness = np.array(
        [homogenize_design(d, material, params["resolution"]).C for d in designs]
    ).reshape(rows, 6, 6)
    upper = np.triu_indices(6)
    columns: dict[str, np.ndarray] = {
        "surface": np.array([d.surface for d in designs]),
        "variant": np.array([d.variant for d in designs]),
        "relative_density": np.array([d.relative_density for d in designs]),
    }
    for i, j in zip(*upper, strict=True):
        columns[f"C{i + 1}{j + 1}"] = stiffness[:, i, j]
    return columns


def _table_stiffness(variant_data: Mapping[str, Any], densities: np.ndarray) -> np.ndarray:
    """Cubic stiffness (n, 6, 6) interpolated linearly in the homogenization table."""
    from metainv.tpms.law import CUBIC_BASIS, CUBIC_NAMES

    rho = np.asarray(variant_data["voxel_density"], dtype=float)
    constants = np.stack(
        [np.interp(densities, rho, np.asarray(variant_data[name])) for name in CUBIC_NAMES], -1
    )
    return np.einsum("nk,kij->nij", constants, CUBIC_BASIS)


def design_tpms(
    target: np.ndarray,
    top: int = 5,
    verify: bool = True,
    resolution: int | None = None,
    on_step: Any = None,
    **_: Any,
) -> DesignResult:
    """TPMS cells for a normalized target ``C / E_b`` (6, 6): every variant of the shipped
    table at 1001 densities, ranked by NMSE, the ``top`` best at least 0.02 apart in density
    (or of another variant) verified by voxel FE and ranked by it."""
    from metainv.tpms.law import load_fit_data

    if top < 1:
        raise DesignError(f"--top must be >= 1, got {top}")
    target = np.asarray(target, dtype=float)
    data = load_fit_data("gyroid")
    densities = np.linspace(0.1, 0.9, 1001)
    pool: list[tuple[float, TpmsDesign, np.ndarray]] = []
    for variant, variant_data in data["variants"].items():
        table = _table_stiffness(variant_data, densities)
        errors = np.array([float(nmse(target, c)) for c in table])
        for index in np.argsort(errors):
            chosen = TpmsDesign(data["surface"], variant, float(densities[index]))
            if all(
                p.variant != variant or abs(p.relative_density - chosen.relative_density) >= 0.02
                for _, p, _ in pool
            ):
                pool.append((float(errors[index]), chosen, table[index]))
            if sum(p.variant == variant for _, p, _ in pool) >= top:
                break
    pool.sort(key=lambda item: item[0])
    candidates = []
    for error, chosen, table_C in pool[:top]:
        C_fe = nmse_fe = None
        if verify:
            if on_step is not None:
                on_step(f"FE: {chosen.variant} {chosen.surface} rho {chosen.relative_density:.3f}")
            C_fe = homogenize_design(chosen, Material(), resolution).C
            nmse_fe = float(nmse(target, C_fe))
        candidates.append(Candidate(chosen, table_C, C_fe, error, nmse_fe))
    if verify:
        candidates.sort(key=lambda c: c.nmse_fe)
    return DesignResult(
        family=FAMILY,
        target=target,
        candidates=tuple(candidates),
        extras={"method": "homogenization-table lookup (gyroid), verified by voxel FE"},
    )


def summarize_tpms(candidate: Candidate) -> dict[str, str]:
    """Table columns: surface and variant, rho and the NMSEs."""
    design = candidate.design
    return {"cell": f"{design.surface} {design.variant}", **candidate_summary(candidate)}


TPMS = Family(
    name=FAMILY,
    description="triply periodic minimal surfaces (gyroid, Schwarz P, diamond; sheet, network)",
    from_dict=design_from_dict,
    to_dict=design_to_dict,
    homogenize=homogenize_design,
    sample=sample_designs,
    export_mesh=export_design,
    generation_parameters=tpms_generation_parameters,
    generate_shard=tpms_shard,
    design=design_tpms,
    summarize=summarize_tpms,
    features=tpms_features,
    design_type=TpmsDesign,
    shard_size=100,
    options={
        "homogenize": frozenset({"resolution"}),
        "export": frozenset({"fmt", "resolution", "size"}),
        "generate": frozenset({"resolution"}),
        "design": frozenset({"top", "verify", "resolution"}),
    },
)
