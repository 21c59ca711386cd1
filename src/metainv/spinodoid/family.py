"""The spinodoid family (Kumar et al. 2020) as a :class:`metainv.family.Family` value.

Designs are :class:`metainv.spinodoid.design.SpinodoidDesign`; homogenization is voxel FE with
affine boundary conditions (:mod:`metainv.spinodoid.homogenize`); meshes are marching cubes of
the random field (:mod:`metainv.spinodoid.export`); grading blends level-shifted fields
(:mod:`metainv.spinodoid.graded`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    candidate_from,
    candidate_summary,
    write_design_files,
)
from metainv.manufacturing import Features
from metainv.resources import check_fe_resolution, check_mesh_resolution
from metainv.spinodoid.design import SpinodoidDesign, design_from_dict, design_to_dict

NAME = "spinodoid"


def homogenize_design(
    design: SpinodoidDesign,
    material: Material = Material(),
    resolution: int | None = None,
    threshold: str | None = None,
) -> Homogenized:
    """Effective stiffness by voxel FE on a ``resolution``^3 grid (default 64) with the level
    rule ``threshold`` (``ensemble``, paper Eq. 3, the default; or ``exact``, the data's and
    design verification's rule): ``C`` (6, 6) in the unit of ``material.youngs_modulus``;
    ``relative_density`` is the measured solid fraction of the voxel grid; details:
    ``resolution``, ``threshold``."""
    from metainv.spinodoid.homogenize import DEFAULT_RESOLUTION, homogenize_spinodoid

    resolution = check_fe_resolution(DEFAULT_RESOLUTION if resolution is None else resolution)
    threshold = "ensemble" if threshold is None else threshold
    if threshold not in ("ensemble", "exact"):
        raise DesignError(f"--threshold must be 'ensemble' or 'exact', got {threshold!r}")
    result = homogenize_spinodoid(
        design,
        resolution=DEFAULT_RESOLUTION if resolution is None else resolution,
        youngs_modulus=material.youngs_modulus,
        poisson_ratio=material.poisson_ratio,
        threshold=threshold,
    )
    return Homogenized(
        C=np.asarray(result.C, dtype=float),
        relative_density=float(result.relative_density),
        details={"resolution": int(result.resolution), "threshold": threshold},
    )


def export_design(
    design: SpinodoidDesign,
    path: str | Path,
    cells: Sequence[int] = (1, 1, 1),
    fmt: str | None = None,
    size: float | None = None,
    resolution: int | None = None,
    threshold: str | None = None,
) -> None:
    """A ``cells`` block as a watertight STL (marching cubes, cell edge ``size``, default 1) or
    a PNG preview (by ``fmt`` or suffix); ``resolution`` samples per cell edge."""
    from metainv.spinodoid.export import export_spinodoid

    extra = {} if threshold is None else {"threshold": threshold}
    if resolution is not None:
        check_mesh_resolution(resolution, int(np.prod([max(1, int(c)) for c in cells])))
    export_spinodoid(
        design,
        path,
        fmt=fmt,
        resolution=resolution,
        cells=tuple(cells),
        size=1.0 if size is None else size,
        **extra,
    )


#: Voxels per cell edge and context voxels on every side of the feature measurement.
FEATURE_RESOLUTION, FEATURE_PAD = 48, 12


def spinodoid_features(design: SpinodoidDesign, pore: bool = True) -> Features:
    """Minimum wall and pore of one cell (edge = cell size 1; level rule of Eq. 3) from a
    voxel grid of :data:`FEATURE_RESOLUTION` per edge with :data:`FEATURE_PAD` voxels of the
    same field around it (the field is not periodic): the local thickness that 5 % of a phase
    falls below, one voxel resolution (:mod:`metainv.manufacturing`); ``pore`` is accepted
    for the family protocol (both are measured together)."""
    from metainv.manufacturing import voxel_features
    from metainv.spinodoid.field import (
        field_on_grid,
        level_function,
        sample_waves,
        solid_threshold,
    )

    n, pad = FEATURE_RESOLUTION, FEATURE_PAD
    axis = (np.arange(-pad, n + pad) + 0.5) / n
    directions, phases = sample_waves(design)
    phi = field_on_grid(directions, phases, (axis, axis, axis))
    solid = level_function(design, phi, solid_threshold(design, "ensemble")) <= 0
    wall, pore = voxel_features(solid, 1.0 / n, periodic=False, pad=pad)
    return Features(
        design_cell_size=1.0,
        cell_extent=(1.0, 1.0, 1.0),
        min_wall=wall,
        min_pore=pore,
        method=f"local thickness on a {n}^3 voxel grid of the field (5 % of a phase thinner)",
    )


def sample_designs(n: int, rng: np.random.Generator) -> list[SpinodoidDesign]:
    """``n`` designs from the data-generation sampling law (rho in the published 0.3..0.9)."""
    from metainv.spinodoid.dataset import sample_parameters

    drawn = sample_parameters(n, rng)
    return [
        SpinodoidDesign(relative_density=float(rho), theta=theta, seed=int(seed))
        for rho, theta, seed in zip(
            drawn["relative_density"], drawn["theta"], drawn["seed"], strict=True
        )
    ]


def spinodoid_generation_parameters(
    resolution: int | None = None, density_range: Sequence[float] | None = None
) -> dict[str, Any]:
    """Generation parameters (manifest) at ``resolution`` voxels per edge (default 24) over
    ``density_range`` (default the published 0.3..0.9; at least 0.15)."""
    from metainv.spinodoid.dataset import DATA_RESOLUTION, generation_parameters

    resolution = DATA_RESOLUTION if resolution is None else int(resolution)
    if resolution < 4:
        raise DesignError(f"--resolution must be >= 4, got {resolution}")
    options: dict[str, Any] = {}
    if density_range is not None:
        options["density_range"] = density_range
    try:
        return generation_parameters(resolution, **options)
    except DesignError as error:
        raise DesignError(f"--density-range: {error}") from None


def spinodoid_shard(rows: int, rng: np.random.Generator, params: Any) -> dict[str, np.ndarray]:
    """``rows`` sampled designs with their voxel-FE labels."""
    from metainv.spinodoid.dataset import generate_shard

    return generate_shard(rows, rng, params)


_GRADE_OPTIONS = frozenset({"elements_per_cell", "stl"})


def grade_design_field(
    controls: Sequence[tuple[tuple[float, float, float], Any]],
    box: tuple[float, float, float] | None,
    zeta: float,
    out: Path,
    *,
    body: Path | None = None,
    on_step: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """A graded spinodoid: level-shifted fields of the control designs blended with normalized
    Gaussian weights ``exp(-zeta |x - c|^2)`` in the box (cell = RVE edge), a watertight STL, a
    PNG preview and ``graded.json``. ``elements_per_cell`` sets the sampling per RVE edge
    (default 32); ``stl=False`` skips the STL."""
    from metainv.spinodoid.graded import (
        GRADED_RESOLUTION,
        GradedControl,
        grade_spinodoid,
        load_control_design,
    )

    unknown = sorted(set(options) - _GRADE_OPTIONS)
    if unknown:
        raise DesignError(f"option {unknown[0]!r} does not apply to spinodoid grading")
    if body is not None or box is None:
        raise DesignError("spinodoid grading fills a box: give --box LX LY LZ (no --body)")
    if on_step is not None:
        on_step("blending the control fields")
    designs = [d if isinstance(d, SpinodoidDesign) else load_control_design(d) for _, d in controls]
    return grade_spinodoid(
        [
            GradedControl(point, design)
            for (point, _), design in zip(controls, designs, strict=True)
        ],
        box,
        zeta,
        out,
        resolution=options.get("elements_per_cell") or GRADED_RESOLUTION,
        stl=options.get("stl", True),
    )


_DESIGN_OPTIONS = frozenset({"model", "top", "verify", "seed"})


def design_spinodoid(
    target: np.ndarray,
    *,
    on_step: Callable[[str], None] | None = None,
    model: str | Path | None = None,
    top: int = 5,
    verify: bool = True,
    seed: int = 0,
) -> DesignResult:
    """Spinodoids for one normalized target (6, 6): i-NN designs in the fitted orthotropic
    frame, polished by the f-NN at the model's fidelity, the ``top`` best verified by voxel FE at
    the model's resolution (the converged 64^3 for the shipped model; one field each), the
    best's density and frame refined with the FE correction, connected networks first
    (:func:`metainv.spinodoid.learn.inverse.design_for_target`). Extras: ``frame_fit``, ``fe``;
    per candidate ``connectivity``."""
    from metainv.spinodoid.learn.artifacts import load_spinodoid_models
    from metainv.spinodoid.learn.inverse import SpinodoidDesignSettings, design_for_target

    if top < 1:
        raise DesignError(f"--top must be >= 1, got {top}")
    models = load_spinodoid_models(model)
    settings = SpinodoidDesignSettings(top=top, pool=top, verify=verify, seed=seed)
    target = np.asarray(target, dtype=float)
    candidates, fit = design_for_target(models, target, settings, on_step=on_step)
    extras = {
        "frame_fit": {
            "rotation": fit.rotation.tolist(),
            "angle_deg": fit.angle_deg,
            "non_orthotropic_residual": fit.residual,
            "non_orthotropic_residual_identity": fit.residual_identity,
        },
        "fe": {"resolution": models.resolution, "threshold": models.threshold},
    }
    return DesignResult(
        family=NAME,
        target=target,
        candidates=tuple(candidate_from(c, connectivity=c.connectivity) for c in candidates),
        extras=extras,
    )


def write_spinodoid_designs(
    result: DesignResult, folder: Path, files: bool = True
) -> dict[str, Any]:
    """designs.json, then per candidate an STL of one cell on the connectivity grid (48^3,
    the FE's level rule) and a PNG."""
    from metainv.spinodoid.learn.inverse import STL_RESOLUTION

    threshold = dict(result.extras.get("fe", {})).get("threshold", "exact")
    options = {"resolution": STL_RESOLUTION, "threshold": threshold}
    with np.errstate(divide="ignore", invalid="ignore"):  # trimesh: empty islands
        return write_design_files(result, folder, files, mesh_options=options)


def summarize_spinodoid(candidate: Candidate) -> dict[str, str]:
    """Table columns: rho, cone angles, rotation angle, NMSEs and connectivity."""
    design = candidate.design
    rotation = np.asarray(design.rotation_matrix)
    angle = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
    connectivity = dict(candidate.extras).get("connectivity") or {}
    network = {True: "connected", False: "pieces"}.get(connectivity.get("connected"), "-")
    return {
        "theta (deg)": ", ".join(f"{t:.1f}" for t in design.theta),
        "rotation (deg)": f"{angle:.1f}",
        **candidate_summary(candidate),
        "network": network,
    }


SPINODOID = Family(
    name=NAME,
    description="spinodoids: anisotropic Gaussian random fields, voxel FE",
    from_dict=design_from_dict,
    to_dict=design_to_dict,
    homogenize=homogenize_design,
    sample=sample_designs,
    export_mesh=export_design,
    generation_parameters=spinodoid_generation_parameters,
    generate_shard=spinodoid_shard,
    design=design_spinodoid,
    write_design=write_spinodoid_designs,
    summarize=summarize_spinodoid,
    grade=grade_design_field,
    features=spinodoid_features,
    design_type=SpinodoidDesign,
    shard_size=100,
    options={
        "homogenize": frozenset({"resolution", "threshold"}),
        "export": frozenset({"fmt", "size", "resolution", "threshold"}),
        "generate": frozenset({"resolution", "density_range"}),
        "design": _DESIGN_OPTIONS,
        "grade": _GRADE_OPTIONS,
    },
)
