"""The public Python API of metainv (re-exported by :mod:`metainv`): targets, homogenization,
inverse design, export, grading and topology optimization, for every registered family.

Stiffness is a 6x6 Voigt matrix (order 11, 22, 33, 23, 13, 12, engineering shear strains);
designs and results are the values of :mod:`metainv.family`. Example::

    import metainv

    target = metainv.load_target("bone3", unit="GPa", base_modulus="114GPa")
    report = metainv.check_stiffness(target.stiffness)
    result = metainv.design(target, family="truss", samples=2000, top=3)
    best = result.candidates[0]
    C_again = metainv.homogenize(best.design).C   # equals best.C_fe
    result.write("designs/bone3")                 # designs.json, STL and PNG per candidate
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from metainv import families as _builtin  # noqa: F401  (registers the built-in families)
from metainv.errors import MetainvError
from metainv.family import (
    DesignResult,
    Family,
    Homogenized,
    Material,
    design_from_document,
    family_of,
    get_family,
    load_design,
    read_json,
)
from metainv.files import check_output_file, prepare_output_folder, write_text_atomic
from metainv.manufacturing import (
    CELL_SIZE_DEFINITION,
    PrintCheck,
    PrintConstraint,
    Process,
    check_features,
    get_process,
    parse_length,
    stl_extents,
)
from metainv.resources import check_samples
from metainv.targets import Target, read_target
from metainv.tensors import StiffnessReport
from metainv.tensors import check_stiffness as _check_stiffness

#: Files a graded part may write (glob patterns): removed by ``force``, other files are kept.
GRADE_OUTPUT_FILES = ("graded*.*", "local_check.*", "summary.json")

DesignLike = Any  # a family's design value, a design/designs.json dict, or a path to one


def load_target(
    source: str | Path, unit: str | None = None, base_modulus: str | float | None = None
) -> Target:
    """Read a target stiffness: a built-in name (``bone3``), a JSON or CSV/text file.

    unit: ``Pa``, ``kPa``, ``MPa``, ``GPa`` or ``normalized``; base_modulus: the printed
    material's Young's modulus (``"114GPa"`` or a number in ``unit``). ``Target.stiffness`` is
    the (6, 6) stiffness normalized by that modulus."""
    return read_target(str(source), unit=unit, base_modulus=base_modulus)


def read_stiffness(
    source: str | Path,
    unit: str | None = None,
    base_modulus: str | float | None = None,
    candidate: int | None = None,
) -> Target:
    """A stiffness from anything metainv reads or writes: a target (built-in name, JSON, CSV),
    a design file (homogenized by its family), a ``designs.json`` (its ``candidate``-th entry,
    default the best: the FE stiffness, else the forward model's) or the output of
    ``metainv homogenize --json``. metainv's own outputs are normalized (``C / E_b``)."""
    document = _metainv_document(source)
    if document is None:
        if candidate is not None:
            raise MetainvError("--candidate applies to a designs.json, not to a target file")
        return read_target(str(source), unit=unit, base_modulus=base_modulus)
    name = Path(source).stem
    if "candidates" in document:
        family, value = design_from_document(document, candidate)
        entry = document["candidates"][(candidate or 1) - 1]
        stored = entry.get("C_fe") or entry.get("C_forward")
        C = _as_matrix(stored) if stored is not None else family.homogenize(value, Material()).C
        name = f"{name} #{candidate or 1}"
    elif "C" in document:
        C = _as_matrix(document["C"])
    else:
        C = homogenize(document).C
    return Target(name=name, stiffness=C, unit="normalized", base_modulus_pa=None)


def _metainv_document(source: str | Path) -> dict[str, Any] | None:
    """The parsed JSON of ``source`` when it is a design, a designs.json or a homogenize
    output (None for anything else, which is read as a target)."""
    path = Path(source)
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        return None
    if "family" in data or "candidates" in data:
        return data
    if "C" in data and "relative_density" in data:
        return data
    return None


def check_stiffness(C: Any, **options: Any) -> StiffnessReport:
    """Admissibility of a (6, 6) stiffness: finite, symmetric, positive definite, strongly
    elliptic and (with ``max_density``) below the Voigt bound; see
    :func:`metainv.tensors.check_stiffness` for the options."""
    return _check_stiffness(_as_matrix(C), **options)


def as_design(design: DesignLike, candidate: int | None = None) -> tuple[Family, Any]:
    """``(family, design)`` of a design value, a design or designs.json mapping, or a path to
    such a file (``candidate``: 1-based entry of a designs.json, default the best)."""
    if isinstance(design, (str, Path)):
        return load_design(design, candidate)
    if isinstance(design, Mapping):
        return design_from_document(design, candidate)
    return family_of(design), design


def homogenize(
    design: DesignLike,
    material: Material | None = None,
    candidate: int | None = None,
    **options: Any,
) -> Homogenized:
    """Effective stiffness of a design by its family's FE (truss: Timoshenko beams; spinodoid,
    tpms: voxel FE, options ``resolution``, spinodoid ``threshold``). ``C`` is (6, 6) in the
    unit of ``material.youngs_modulus`` (default 1: ``C / E_b``). For a ``designs.json``
    (``candidate``: 1-based entry, default the best) the FE settings it was verified with
    (its ``fe`` entry) are the defaults, so the result reproduces its ``C_fe``."""
    family, value = as_design(design, candidate)
    defaults = _verification_settings(design, family)
    given = {key: value for key, value in options.items() if value is not None}
    extra = family.accepts("homogenize", {**defaults, **given})
    return family.homogenize(value, material or Material(), **extra)


def _verification_settings(design: DesignLike, family: Family) -> dict[str, Any]:
    """The ``fe`` settings of a designs.json (those the family's homogenize takes), else {}."""
    document = design
    if isinstance(design, (str, Path)):
        document = _metainv_document(design)
    if not isinstance(document, Mapping) or not isinstance(document.get("fe"), Mapping):
        return {}
    taken = family.options.get("homogenize", frozenset())
    return {key: value for key, value in document["fe"].items() if key in taken}


def export(
    design: DesignLike,
    path: str | Path,
    cells: Sequence[int] = (1, 1, 1),
    cell_size: str | float | None = None,
    **options: Any,
) -> Path:
    """Write a ``cells`` block of a design as a watertight STL (or the family's other formats
    by suffix, e.g. truss ``.json`` graph, spinodoid ``.png``). ``cell_size``: the physical
    size of one cell (``"5mm"``, ``"0.5 mm"``, ``"5e-3m"`` or a number of mm; the largest
    bounding-box edge of one periodic cell, :mod:`metainv.manufacturing`): the file is then in
    millimetres. Without it, lengths are in design units (reference cell edge 1). Returns
    ``path``."""
    family, value = as_design(design)
    if cell_size is not None:
        if options.get("size") is not None:
            raise MetainvError("give either a cell size or a size, not both")
        options = {**options, "size": _scale_of(family, value, parse_length(cell_size))}
    extra = family.accepts("export", options)
    exporter = family.require("export")
    check_output_file(path)  # a folder or an uncreatable parent is refused before any work
    exporter(value, Path(path), cells=tuple(cells), **extra)
    return Path(path)


def _scale_of(family: Family, design: Any, cell_size_mm: float) -> float:
    """Output length (mm) of one design length unit at a cell size (mm)."""
    if family.features is None:
        raise MetainvError(f"the {family.name} family does not support a cell size")
    return cell_size_mm / family.features(design).design_cell_size


def check_print(
    design: DesignLike,
    cell_size: str | float | None = None,
    process: str | Process | None = None,
    candidate: int | None = None,
) -> PrintCheck:
    """Does a design print at ``cell_size`` (``"5mm"``, a number of mm) with ``process`` (a
    name of :func:`metainv.manufacturing.load_processes`, e.g. ``lpbf-ti64``)? Its features
    in mm (strut diameter, minimum wall and pore), the failures, the smallest printable cell
    size and the share of struts below the self-supporting angle."""
    family, value = as_design(design, candidate)
    if family.features is None:
        raise MetainvError(f"the {family.name} family does not report feature sizes")
    size = None if cell_size is None else parse_length(cell_size)
    chosen = None if process is None else get_process(process)
    return check_features(family.features(value), size, chosen)


def export_part(
    design: DesignLike,
    path: str | Path,
    cells: Sequence[int] = (1, 1, 1),
    cell_size: str | float | None = None,
    process: str | Process | None = None,
    strict: bool = False,
    candidate: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`export` with a print report: ``{"file", "family", "cells", "cell_size_mm",
    "bounding_box_mm" (measured on the written STL; design units without a cell size),
    features in mm, "process", "printable", "failures", "smallest_cell_size_mm",
    "overhang_share"}``. ``process`` needs ``cell_size``; with ``strict`` an unprintable
    design is refused (nothing written), else the report says it."""
    family, value = as_design(design, candidate)
    if process is not None and cell_size is None:
        raise MetainvError("a process is checked at a cell size: give --cell-size too")
    if strict and process is None:
        raise MetainvError("--strict refuses parts a process cannot print: give --process too")
    check = None
    if cell_size is not None:
        check = check_print(value, cell_size, process)
        if strict and check.printable is False:
            raise MetainvError(
                f"not printable with {check.process.label} at cell size "  # type: ignore[union-attr]
                f"{check.cell_size_mm:g} mm ({'; '.join(check.failures)}); the smallest "
                f"printable cell size is {check.smallest_cell_size_mm:.3g} mm"
            )
    written = export(value, path, cells, cell_size=cell_size, **options)
    report: dict[str, Any] = {"file": str(written), "family": family.name, "cells": list(cells)}
    if written.suffix.lower() == ".stl" or str(options.get("fmt") or "").lower() == "stl":
        report["bounding_box_mm" if cell_size is not None else "bounding_box"] = [
            float(x) for x in stl_extents(written)
        ]
    if check is not None:
        report.update(check.to_dict())
    return report


def design(
    target: Target | Any,
    family: str = "truss",
    on_step: Callable[[str], None] | None = None,
    cell_size: str | float | None = None,
    process: str | Process | None = None,
    **options: Any,
) -> DesignResult:
    """Inverse design: microstructures of ``family`` whose stiffness matches ``target`` (a
    :class:`metainv.targets.Target` or a normalized (6, 6) ``C / E_b``), verified by FE.

    Options depend on the family (truss: ``samples``, ``tau``, ``top``, ``refine``, ``verify``,
    ``seed``, ``library_neighbours``, ``model``; spinodoid: ``top``, ``verify``, ``seed``,
    ``model``; tpms: ``top``, ``verify``, ``resolution``).

    ``cell_size`` (``"5mm"``): every candidate's features in mm (its ``print`` entry) and STLs
    in mm; with ``process`` (e.g. ``lpbf-ti64``) only printable candidates are kept: a family
    that takes the ``printable`` option (truss) keeps unprintable designs out of its pool
    before FE, the others' unprintable candidates are dropped after; none printable is an
    error naming the smallest cell size that works. ``process`` alone records each
    candidate's smallest printable cell size."""
    chosen = get_family(family)
    size = None if cell_size is None else parse_length(cell_size)
    chosen_process = None if process is None else get_process(process)
    if (size is not None or chosen_process is not None) and chosen.features is None:
        raise MetainvError(f"the {chosen.name} family does not report feature sizes")
    constraint = None
    if size is not None and chosen_process is not None:
        constraint = PrintConstraint(chosen_process, size, chosen.features)  # type: ignore[arg-type]
        if "printable" in chosen.options.get("design", frozenset()):
            options = {**options, "printable": constraint}
    extra = chosen.accepts("design", options)
    if extra.get("samples") is not None:
        check_samples(extra["samples"])
    stiffness = target.stiffness if isinstance(target, Target) else _as_matrix(target)
    provenance = _provenance(target)
    result = chosen.require("design")(stiffness, on_step=on_step, **extra)
    if size is not None or chosen_process is not None:
        result = _with_print_checks(result, chosen, size, chosen_process, constraint)
    if provenance and not result.provenance:
        result = replace(result, provenance=provenance)
    return result


def _with_print_checks(
    result: DesignResult,
    family: Family,
    size: float | None,
    process: Process | None,
    constraint: PrintConstraint | None,
) -> DesignResult:
    """Each candidate with its ``print`` entry; unprintable ones dropped under a constraint."""
    kept = []
    checked = []
    for candidate in result.candidates:
        check = check_features(family.features(candidate.design), size, process)  # type: ignore[misc]
        checked.append(candidate.design)
        if constraint is not None and not check.printable:
            continue
        kept.append(replace(candidate, extras={**candidate.extras, "print": check.to_dict()}))
    if constraint is not None and not kept:
        raise constraint.refusal(checked)
    summary: dict[str, Any] = {
        "cell_size_mm": size,
        "cell_size_definition": CELL_SIZE_DEFINITION,
        "process": None if process is None else process.to_dict(),
    }
    if constraint is not None:
        summary["unprintable_dropped"] = len(result.candidates) - len(kept)
    return replace(result, candidates=tuple(kept), extras={**result.extras, "print": summary})


def grade(
    controls: Sequence[tuple[Sequence[float], DesignLike]],
    out: str | Path,
    box: Sequence[float] | None = None,
    zeta: float = 0.5,
    family: str | None = None,
    body: str | Path | None = None,
    on_step: Callable[[str], None] | None = None,
    force: bool = False,
    cell_size: str | float | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A functionally graded part between designs at control points (cell units), written to
    ``out``. With ``cell_size`` (a length such as ``"5mm"``; a bare number is in mm) one cell
    unit, the unit of the control points and the box, is that long: the STL is written in mm
    and the summary records ``"length_unit": "mm"``, ``"cell_size_mm"`` and the STL's bounds and
    volume in mm. Each control is ``((x, y, z), design)`` with the design a value of the family or a
    design file / designs.json path (read by the family's grader); ``family`` defaults to the
    family of the first control design. A non-empty ``out`` is refused unless ``force``, which
    removes only the files of :data:`GRADE_OUTPUT_FILES` there. Returns the summary (with the
    ``files`` written)."""
    if not controls:
        raise MetainvError("grading needs at least one control point and its design")
    points = [tuple(float(x) for x in point) for point, _ in controls]
    if family:
        chosen = get_family(family)
    else:
        chosen = as_design(controls[0][1])[0]
    extra = chosen.accepts("grade", options)
    grader = chosen.require("grade")
    # refused before any work: a file, an uncreatable folder, a folder with other results
    scale_mm = None if cell_size is None else parse_length(cell_size)
    prepare_output_folder(out, own=GRADE_OUTPUT_FILES, force=force)
    summary = grader(
        [(point, value) for point, (_, value) in zip(points, controls, strict=True)],
        None if box is None else tuple(float(b) for b in box),
        float(zeta),
        Path(out),
        body=None if body is None else Path(body),
        on_step=on_step,
        **extra,
    )
    return summary if scale_mm is None else scale_part(summary, Path(out), scale_mm)


def scale_part(summary: dict[str, Any], out: Path, cell_size_mm: float) -> dict[str, Any]:
    """Rescale the STL files a grader wrote into ``out`` (listed in ``summary["files"]``) from
    cell units to mm, ``x_mm = cell_size_mm * x``, and record the scale, the bounds and the
    volume in mm in the summary (rewritten atomically when the grader wrote one)."""
    import trimesh

    from metainv.mesh import is_watertight_stl, scaled_mesh, write_stl

    files = summary.get("files", {})
    stl_name = files.get("stl")
    if stl_name:
        mesh = trimesh.load_mesh(out / stl_name, file_type="stl")
        mesh = scaled_mesh(mesh, cell_size_mm)
        write_stl(mesh, out / stl_name)
        report = summary.setdefault("stl", {})
        report |= {"bounds": mesh.bounds.tolist(), "volume": float(mesh.volume)}
        report["watertight"] = bool(report.get("watertight", True)) and is_watertight_stl(mesh)
    summary["length_unit"] = "mm"
    summary["cell_size_mm"] = float(cell_size_mm)
    if files.get("summary"):
        write_text_atomic(out / files["summary"], json.dumps(summary, indent=2) + "\n")
    return summary


def optimize_topology(
    out: str | Path,
    problem: str = "cantilever",
    nel: Sequence[int] = (60, 20, 4),
    material: str = "gyroid",
    period: float = 2.0,
    voxels_per_element: int = 6,
    callback: Callable[[Any], None] | None = None,
    force: bool = False,
    element_size: str | float | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Graded-lattice topology optimization (compliance, volume bound) of a benchmark
    ``problem`` on ``nel`` unit hexahedra with the material law ``material`` (gyroid,
    isotruss, truss, spinodoid, solid, ...); ``settings`` are the fields of
    :class:`metainv.topopt.Settings` (``volume_fraction``, ``penalty``, ``max_iter``,
    ``optimizer``, ``solver``, ``density_range``, ...). Writes the density (VTU, PNG, NPY),
    history (CSV, PNG), the de-homogenized ``part.stl`` and ``summary.json`` into ``out`` (a
    non-empty ``out`` is refused unless ``force``) and returns the summary. With
    ``element_size`` (a length such as ``"2mm"``; a bare number is in mm) one element is that
    long and ``part.stl`` is in mm (``summary["part"]`` records the unit and its bounds)."""
    from metainv.topopt import Settings
    from metainv.topopt.output import run_topology_optimization
    from metainv.topopt.parts import PartOptions

    return run_topology_optimization(
        Path(out),
        problem,
        tuple(int(n) for n in nel),
        material,
        Settings(**settings),
        PartOptions(
            period=period,
            voxels_per_element=voxels_per_element,
            element_size_mm=None if element_size is None else parse_length(element_size),
        ),
        callback=callback,
        force=force,
    )


def _as_matrix(C: Any) -> np.ndarray:
    matrix = np.asarray(C, dtype=float)
    if matrix.shape != (6, 6):
        raise MetainvError(f"a stiffness must be a 6x6 matrix, got shape {matrix.shape}")
    return matrix


def _provenance(target: Any) -> dict[str, Any]:
    if not isinstance(target, Target):
        return {}
    return {
        key: value
        for key, value in {
            "target": target.name,
            "unit": target.unit,
            "base_modulus_pa": target.base_modulus_pa,
            "base_material": target.base_material,
            "source": target.source,
            "scan": target.scan,
        }.items()
        if value is not None
    }
