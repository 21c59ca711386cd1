"""The truss family (Bastek et al. 2022) as a :class:`metainv.family.Family` value.

Designs are :class:`metainv.truss.design.TrussDesign`; homogenization is the periodic
Timoshenko-beam FE of :mod:`metainv.truss.homogenize`; meshes come from
:mod:`metainv.truss.export`; inverse design is the learned pipeline of the shipped model;
grading is :mod:`metainv.grading`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import DesignError
from metainv.family import Family, Homogenized, Material
from metainv.truss.design import TrussDesign, design_from_dict, design_to_dict, sample_designs

NAME = "truss"


def homogenize_truss(design: TrussDesign, material: Material = Material()) -> Homogenized:
    """Effective stiffness of a truss design by periodic beam FE: ``C`` (6, 6) in the unit of
    ``material.youngs_modulus``; details: strut diameter (cell units), node and strut counts."""
    from metainv.truss.homogenize import BeamMaterial, homogenize

    beam = BeamMaterial(
        youngs_modulus=material.youngs_modulus, poisson_ratio=material.poisson_ratio
    )
    result = homogenize(design, beam)
    return Homogenized(
        C=np.asarray(result.C, dtype=float),
        relative_density=float(result.relative_density),
        details={
            "strut_diameter": float(result.strut_diameter),
            "nodes": int(result.n_nodes),
            "struts": int(result.n_struts),
        },
    )


def export_truss(
    design: TrussDesign,
    path: str | Path,
    cells: Sequence[int] = (1, 1, 1),
    fmt: str | None = None,
    segments: int = 16,
) -> None:
    """A ``cells`` block of the lattice: a watertight STL (struts as ``segments``-sided
    cylinders with joint spheres) or the node/strut graph as JSON (by ``fmt`` or suffix)."""
    from metainv.truss.export import export_design

    export_design(design, path, tuple(cells), fmt=fmt, segments=segments)


def truss_generation_parameters() -> dict[str, Any]:
    """Ranges and base material of truss data sets (stored in the data manifest)."""
    from metainv.truss.dataset import generation_parameters

    return generation_parameters()


def truss_shard(rows: int, rng: np.random.Generator, params: Any) -> dict[str, np.ndarray]:
    """``rows`` uniformly sampled designs with their FE labels (stage-1 and final C)."""
    from metainv.truss.dataset import generate_shard

    return generate_shard(rows, rng, params)


_GRADE_OPTIONS = frozenset({"elements_per_cell", "segments", "stl", "check"})


def grade_truss(
    controls: Sequence[tuple[tuple[float, float, float], Any]],
    box: tuple[float, float, float] | None,
    zeta: float,
    out: Path,
    *,
    body: Path | None = None,
    on_step: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """A functionally graded truss lattice (SI Sec. 5) between the control designs.

    controls: ``((x, y, z), design file or TrussDesign)`` pairs (cell units); box: edges of
    ``[0, LX] x [0, LY] x [0, LZ]`` or None with ``body`` (a closed STL surface); zeta: RBF
    parameter (SI Eq. 15). Writes the lattice files into ``out``; returns the summary."""
    from metainv.grading import (
        GradingProblem,
        box_body,
        load_control_design,
        stl_body,
        write_graded_outputs,
    )

    unknown = sorted(set(options) - _GRADE_OPTIONS)
    if unknown:
        raise DesignError(f"option {unknown[0]!r} does not apply to truss grading")
    designs = [d if isinstance(d, TrussDesign) else load_control_design(d) for _, d in controls]
    names = [
        f"control {i + 1} ({d.name if isinstance(d, Path) else 'design'})"
        for i, (_, d) in enumerate(controls)
    ]
    problem = GradingProblem(
        points=[point for point, _ in controls],
        designs=designs,
        zeta=zeta,
        body=stl_body(body) if body is not None else box_body(box or ()),
        names=names,
    )
    return write_graded_outputs(problem, out, on_step=on_step, **options)


TRUSS = Family(
    name=NAME,
    description="truss lattices: 7 cells tessellated, superimposed, stretched and rotated",
    from_dict=design_from_dict,
    to_dict=design_to_dict,
    homogenize=homogenize_truss,
    sample=sample_designs,
    export_mesh=export_truss,
    generation_parameters=truss_generation_parameters,
    generate_shard=truss_shard,
    grade=grade_truss,
    design_type=TrussDesign,
    shard_size=10000,
    options={
        "export": frozenset({"fmt", "segments"}),
        "grade": _GRADE_OPTIONS,
    },
)
