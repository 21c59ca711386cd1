"""The truss family (Bastek et al. 2022) as a :class:`metainv.family.Family` value.

Designs are :class:`metainv.truss.design.TrussDesign`; homogenization is the periodic
Timoshenko-beam FE of :mod:`metainv.truss.homogenize`; meshes come from
:mod:`metainv.truss.export`; inverse design is the learned pipeline of the shipped model;
grading is :mod:`metainv.grading`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from metainv.truss.design import (
    RELATIVE_DENSITY_RANGE,
    TrussDesign,
    design_from_dict,
    design_to_dict,
    sample_designs,
)

if TYPE_CHECKING:
    from metainv.targets import TargetTable

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
    size: float | None = None,
) -> None:
    """A ``cells`` block of the lattice: a watertight STL (struts as ``segments``-sided
    cylinders with joint spheres) or the node/strut graph as JSON (by ``fmt`` or suffix);
    ``size``: output length of one design length unit (reference cell edge), default 1."""
    from metainv.truss.export import export_design

    export_design(design, path, tuple(cells), fmt=fmt, segments=segments, scale=size or 1.0)


def truss_features(design: TrussDesign, pore: bool = True) -> Features:
    """Strut diameter, smallest clear gap between struts that share no node (the pore) and
    strut angles above the x1-x2 plane of one periodic cell, per unit cell size (the largest
    bounding-box edge of ``F [0, 1]^3``; :mod:`metainv.manufacturing`); ``pore=False``
    skips the pore (None)."""
    from metainv.manufacturing import cell_bounding_box, periodic_strut_gap, strut_angles
    from metainv.truss.design import deformation_gradient
    from metainv.truss.lattice import periodic_lattice, strut_diameter, strut_vectors

    lattice = periodic_lattice(design.topology)
    F = deformation_gradient(design)
    extent = cell_bounding_box(F)
    scale = float(extent.max())
    diameter = float(strut_diameter(lattice, F, design.relative_density))
    gap = None
    if pore:
        gap = periodic_strut_gap(lattice.nodes, lattice.struts, lattice.offsets, F, diameter)
    return Features(
        design_cell_size=scale,
        cell_extent=tuple(float(e) for e in extent / scale),  # type: ignore[arg-type]
        strut_diameter=diameter / scale,
        min_pore=None if gap is None else gap / scale,
        strut_angles_deg=strut_angles(strut_vectors(lattice, F)),
        method="periodic lattice: uniform strut diameter, clear gap between struts",
    )


def truss_generation_parameters() -> dict[str, Any]:
    """Ranges and base material of truss data sets (stored in the data manifest)."""
    from metainv.truss.dataset import generation_parameters

    return generation_parameters()


def truss_shard(rows: int, rng: np.random.Generator, params: Any) -> dict[str, np.ndarray]:
    """``rows`` uniformly sampled designs with their FE labels (stage-1 and final C)."""
    from metainv.truss.dataset import generate_shard

    return generate_shard(rows, rng, params)


_DESIGN_OPTIONS = frozenset(
    {
        "model",
        "samples",
        "tau",
        "top",
        "refine",
        "verify",
        "seed",
        "library_neighbours",
        "printable",
    }
)
_BATCH_OPTIONS = frozenset(
    {"model", "samples", "verify", "seed", "polish_steps", "library_neighbours", "strict"}
)
#: The STL block each design candidate gets: cells per axis and polygon sides per strut.
DESIGN_STL_OPTIONS = {"cells": (2, 2, 2), "segments": 10}


def _positive(options: dict[str, Any], *names: str) -> None:
    for name in names:
        value = options.get(name)
        if value is not None and not value > 0:
            option = "--" + name.replace("_", "-")
            raise DesignError(f"{option} must be positive, got {value}")
    for name in ("polish_steps", "library_neighbours"):
        value = options.get(name)
        if value is not None and value < 0:
            option = "--" + name.replace("_", "-")
            raise DesignError(f"{option} must be >= 0, got {value}")


def design_truss(
    target: np.ndarray,
    *,
    on_step: Callable[[str], None] | None = None,
    model: str | Path | None = None,
    verify: bool = True,
    **options: Any,
) -> DesignResult:
    """Truss lattices for one normalized target (6, 6) with the shipped (or ``model``) networks:
    ``samples`` draws at Gumbel temperature ``tau`` plus ``library_neighbours`` library designs,
    the best distinct lattices (a pool of ``top`` + 3) verified by beam FE and (``refine``)
    refined by FE gradients, the ``top`` best kept
    (:func:`metainv.truss.learn.inverse.design_for_target`); candidates best FE NMSE first.
    ``verify=False`` runs no FE: the ``top`` best distinct lattices by the forward model, with
    ``C_fe`` and ``nmse_fe`` None."""
    from dataclasses import replace

    from metainv.truss.learn.artifacts import load_models
    from metainv.truss.learn.inverse import DesignSettings, check_target, design_for_target

    _positive(options, "samples", "tau", "top")
    check_target(np.asarray(target, dtype=float), RELATIVE_DENSITY_RANGE[1])  # before any work
    models = load_models(model)
    settings = replace(DesignSettings(), verify=verify, **options)
    candidates = design_for_target(models, np.asarray(target, dtype=float), settings, on_step)
    return DesignResult(
        family=NAME,
        target=np.asarray(target, dtype=float),
        candidates=tuple(
            candidate_from(c, nmse_fe_before_refinement=c.nmse_fe_before_refinement)
            for c in candidates
        ),
    )


def design_truss_batch(
    table: TargetTable,
    out: str | Path,
    *,
    model: str | Path | None = None,
    samples: int | None = None,
    verify: bool | None = None,
    seed: int = 0,
    polish_steps: int = 0,
    library_neighbours: int | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """One design per row of ``table`` (:class:`metainv.targets.TargetTable`), decoded by the
    inverse model (plus ``library_neighbours`` library designs and ``polish_steps`` polish
    steps through the forward model), no FE (``samples=1, verify=False`` must be given).

    Every row first gets the checks of a single target (admissibility, too stiff, too soft:
    :func:`metainv.truss.learn.inverse.target_problem`); a bad row is skipped (``strict``: the
    batch is refused, listing every bad line). Writes ``out/designs.parquet``: one row per
    target row, ``line`` (its line in the file), ``status`` (``ok`` or ``skipped: reason``),
    the design columns of :func:`metainv.truss.design.designs_table_columns` (null when
    skipped). Returns ``{"designs", "skipped" (the "line N: reason" messages), "seconds",
    "median_nmse_forward", "file"}``."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    from metainv.files import write_bytes_atomic
    from metainv.truss.design import designs_table_columns
    from metainv.truss.learn.artifacts import load_models
    from metainv.truss.learn.inverse import design_batch, target_problem

    if samples != 1 or verify is not False:  # explicit: no draws and no FE per target
        raise DesignError("a file of many targets runs in batch mode: pass --samples 1 --no-verify")
    _positive({"polish_steps": polish_steps, "library_neighbours": library_neighbours})
    table = table.checked(target_problem, strict)
    good = table.good
    models = load_models(model)
    start = time.perf_counter()
    designs, _, errors = design_batch(
        models,
        np.asarray(table.stiffness[good], dtype=float),
        seed=seed,
        polish_steps=polish_steps,
        library_neighbours=library_neighbours or 0,
    )
    seconds = time.perf_counter() - start
    missing = np.ones(len(table), dtype=bool)
    missing[good] = False
    columns: dict[str, Any] = {
        "line": pa.array(np.asarray(table.lines, dtype=np.int64)),
        "status": pa.array(table.statuses()),
    }
    for name, values in designs_table_columns(designs, errors).items():
        full = np.zeros(len(table), dtype=np.asarray(values).dtype)
        full[good] = values
        columns[name] = pa.array(full, mask=missing)
    path = Path(out) / "designs.parquet"
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    write_bytes_atomic(path, sink.getvalue().to_pybytes())
    return {
        "designs": len(designs),
        "skipped": table.messages(),
        "seconds": seconds,
        "median_nmse_forward": float(np.median(errors)),
        "file": str(path),
    }


def write_truss_designs(result: DesignResult, folder: Path, files: bool = True) -> dict[str, Any]:
    """designs.json, then per candidate a 2x2x2-cell STL (10-sided struts) and a PNG."""
    return write_design_files(result, folder, files, mesh_options=DESIGN_STL_OPTIONS)


def summarize_truss(candidate: Candidate) -> dict[str, str]:
    """Table columns: topology ``(S,t)`` per superimposed lattice, rho and the NMSEs."""
    topology = " ".join(f"{s},{t}" for s, t in candidate.design.topology)
    return {"topology (S,t)": topology, **candidate_summary(candidate)}


_GRADE_OPTIONS = frozenset(
    {
        "elements_per_cell",
        "segments",
        "stl",
        "check",
        "ignore_gates",
        "match_bases",
        "min_relative_diameter",
    }
)


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
    match_bases = bool(options.pop("match_bases", True))
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
        match_bases=match_bases,
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
    design=design_truss,
    design_batch=design_truss_batch,
    write_design=write_truss_designs,
    summarize=summarize_truss,
    grade=grade_truss,
    features=truss_features,
    design_type=TrussDesign,
    shard_size=10000,
    options={
        "export": frozenset({"fmt", "segments", "size"}),
        "design": _DESIGN_OPTIONS,
        "design_batch": _BATCH_OPTIONS,
        "grade": _GRADE_OPTIONS,
    },
)
