"""The design-family protocol: what a family (truss, spinodoid, tpms, ...) is, and its registry.

A family is one frozen :class:`Family` value of pure functions (jax-md style), registered once
with :func:`register_family`. Everything that handles families (the CLI, data generation,
inverse design, grading, the public API) looks the family up with :func:`get_family` and calls
its functions; nothing dispatches on a family-name string. Adding a family is one new
subpackage that builds a :class:`Family` and one :func:`register_family` call (the built-in
ones are registered by :mod:`metainv.families`).

Units: stiffness matrices are 6x6 Voigt (order 11, 22, 33, 23, 13, 12, engineering shear
strains) in units of the base material's Young's modulus ``E_b`` unless a :class:`Material`
with another ``youngs_modulus`` is given; lengths of a design are in cell units.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import DesignError, MetainvError
from metainv.files import prepare_output_folder, read_json, write_text_atomic

#: Operations whose family-specific keyword options are declared in :attr:`Family.options`.
OPERATIONS = ("homogenize", "export", "generate", "design", "design_batch", "grade")


@dataclass(frozen=True)
class Material:
    """Isotropic base material: Young's modulus ``E_b`` (any unit; the output stiffness is in
    the same unit, 1.0 gives ``C / E_b``) and Poisson ratio ``nu_b`` (dimensionless)."""

    youngs_modulus: float = 1.0
    poisson_ratio: float = 0.3

    def __post_init__(self) -> None:
        if not (np.isfinite(self.youngs_modulus) and self.youngs_modulus > 0):
            raise MetainvError(
                f"youngs_modulus must be a positive number, got {self.youngs_modulus}"
            )
        if not (-1.0 < self.poisson_ratio < 0.5):
            raise MetainvError(f"poisson_ratio must lie in (-1, 0.5), got {self.poisson_ratio}")


@dataclass(frozen=True)
class Homogenized:
    """Effective stiffness of one design.

    C: (6, 6) Voigt stiffness in the unit of :attr:`Material.youngs_modulus`.
    relative_density: solid volume fraction of the unit cell (dimensionless).
    details: family-specific scalars (truss: ``strut_diameter``, ``nodes``, ``struts``;
        voxel families: ``resolution``), JSON-ready.
    """

    C: np.ndarray
    relative_density: float
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"C": 6x6 list, "relative_density", **details}`` (the ``homogenize --json`` form)."""
        return {
            "C": [[float(c) for c in row] for row in np.asarray(self.C)],
            "relative_density": float(self.relative_density),
            **dict(self.details),
        }


@dataclass(frozen=True)
class Candidate:
    """One designed microstructure for a target.

    design: the family's design value.
    C_forward: (6, 6) stiffness predicted by the family's forward model (``C / E_b``), or None.
    C_fe: (6, 6) stiffness verified by finite elements (``C / E_b``), or None when unverified.
    nmse_forward, nmse_fe: NMSE (paper Eq. 8) of those against the target, or None.
    extras: family-specific JSON-ready entries of the candidate (e.g. ``connectivity``).
    """

    design: Any
    C_forward: np.ndarray | None
    C_fe: np.ndarray | None
    nmse_forward: float | None
    nmse_fe: float | None
    extras: Mapping[str, Any] = field(default_factory=dict)


def candidate_from(result: Any, **extras: Any) -> Candidate:
    """A :class:`Candidate` from any object with the attributes ``design``, ``C_forward``,
    ``C_fe``, ``nmse_forward`` and ``nmse_fe`` (a family's own design-job record), with
    ``extras`` (JSON-ready) added."""
    return Candidate(
        design=result.design,
        C_forward=result.C_forward,
        C_fe=result.C_fe,
        nmse_forward=result.nmse_forward,
        nmse_fe=result.nmse_fe,
        extras=extras,
    )


@dataclass(frozen=True)
class DesignResult:
    """The result of inverse design: the target and its candidates, best first.

    family: registered family name; target: (6, 6) normalized target ``C / E_b``;
    candidates: best first; extras: family-specific JSON-ready entries of the document
    (e.g. ``frame_fit``, ``fe``); files: per candidate, the files written by :meth:`write`
    (kind -> file name), filled in by the writer.
    """

    family: str
    target: np.ndarray
    candidates: tuple[Candidate, ...]
    extras: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``designs.json`` document: one schema for every family."""
        family = get_family(self.family)
        candidates = []
        for candidate in self.candidates:
            entry = {
                "design": family.to_dict(candidate.design),
                "C_forward": _matrix_or_none(candidate.C_forward),
                "C_fe": _matrix_or_none(candidate.C_fe),
                "nmse_forward": _float_or_none(candidate.nmse_forward),
                "nmse_fe": _float_or_none(candidate.nmse_fe),
                **dict(candidate.extras),
            }
            candidates.append(entry)
        document: dict[str, Any] = {
            "family": self.family,
            "target": np.asarray(self.target).tolist(),
            "candidates": candidates,
            **dict(self.extras),
        }
        if self.provenance:
            document["provenance"] = dict(self.provenance)
        return document

    def write(self, folder: str | Path, files: bool = True) -> dict[str, Any]:
        """Write ``folder/designs.json`` (atomically, first) and, with ``files``, each
        candidate's mesh and elastic-surface PNG through the family's writer; a failing file is
        recorded in the document (``errors``) and never loses the others. Returns the document."""
        return get_family(self.family).write_design(self, Path(folder), files)


def candidate_summary(
    candidate: Candidate, relative_density: float | None = None
) -> dict[str, str]:
    """Table columns of a candidate: relative density (when known), NMSE of the forward model
    and of FE ("-" when not computed)."""
    if relative_density is None:
        relative_density = getattr(candidate.design, "relative_density", None)
    columns = {} if relative_density is None else {"rho": f"{float(relative_density):.4f}"}
    for name, value in (("NMSE forward", candidate.nmse_forward), ("NMSE FE", candidate.nmse_fe)):
        columns[name] = "-" if value is None else f"{float(value):.4f}"
    return columns


def _matrix_or_none(matrix: np.ndarray | None) -> list[list[float]] | None:
    return None if matrix is None else np.asarray(matrix, dtype=float).tolist()


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Family:
    """A design family as a value of pure functions.

    name: the ``family`` key of its design files.
    description: one line for help texts.
    from_dict: ``(mapping) -> design``, validating with specific :class:`DesignError` messages.
    to_dict: ``(design) -> dict`` (JSON-ready; includes ``"family": name``).
    homogenize: ``(design, material, **options) -> Homogenized``.
    sample: ``(n, rng) -> list of n designs`` drawn from the family's design space.
    export_mesh: ``(design, path, cells=(n1, n2, n3), **options) -> None``: a watertight mesh
        (STL) of a finite block, or another format the family supports by ``path``'s suffix.
    generation_parameters: ``(**options) -> params`` (JSON-ready) of data generation, or None.
    generate_shard: ``(rows, rng, params) -> columns`` (name -> 1-D array) of labelled rows.
    design: ``(target, **options) -> DesignResult`` for a normalized (6, 6) target, or None.
    design_batch: ``(table, out, **options) -> summary``: one fast design per good row of
        ``table`` (a :class:`metainv.targets.TargetTable`; each row checked as a single target,
        bad rows skipped, or all refused with ``strict``) written into the folder ``out`` (a
        table of designs with a ``status`` per row), or None. The summary's ``skipped`` lists
        the ``"line N: reason"`` of the rows skipped.
    summarize: ``(candidate) -> {column: text}``: what a table of candidates shows for one
        candidate; default :func:`candidate_summary` (relative density and NMSEs).
    write_design: ``(result, folder, files) -> document``; default :func:`write_design_files`.
    grade: ``(controls, box, zeta, out, **options) -> summary`` (graded part), or None.
    features: ``(design, pore=True) -> metainv.manufacturing.Features``: the smallest
        features of one periodic cell per unit cell size (strut diameter, wall, pore, strut
        angles) and the cell size in design units, for physical units and printability
        (``pore=False`` may skip the pore when it is the slow one); or None.
    options: operation (one of :data:`OPERATIONS`) -> names of the keyword options it takes.
    design_type: the class of its designs (lets :func:`family_of` find the family of a design).
    shard_size: default rows per shard of data generation.
    """

    name: str
    description: str
    from_dict: Callable[[Mapping[str, Any]], Any]
    to_dict: Callable[[Any], dict[str, Any]]
    homogenize: Callable[..., Homogenized]
    sample: Callable[[int, np.random.Generator], list[Any]]
    export_mesh: Callable[..., None] | None = None
    generation_parameters: Callable[..., dict[str, Any]] | None = None
    generate_shard: Callable[..., dict[str, np.ndarray]] | None = None
    design: Callable[..., DesignResult] | None = None
    design_batch: Callable[..., dict[str, Any]] | None = None
    summarize: Callable[[Candidate], dict[str, str]] = field(
        default=lambda candidate: candidate_summary(candidate)
    )
    write_design: Callable[[DesignResult, Path, bool], dict[str, Any]] = field(
        default=lambda result, folder, files: write_design_files(result, folder, files)
    )
    grade: Callable[..., dict[str, Any]] | None = None
    features: Callable[[Any], Any] | None = None
    options: Mapping[str, frozenset[str]] = field(default_factory=dict)
    design_type: type | None = None
    shard_size: int = 1000

    def accepts(self, operation: str, given: Mapping[str, Any]) -> dict[str, Any]:
        """The options of ``given`` that are set (not None); a :class:`DesignError` naming the
        first one this family's ``operation`` does not take."""
        taken = self.options.get(operation, frozenset())
        chosen = {key: value for key, value in given.items() if value is not None}
        for key in sorted(chosen):
            if key not in taken:
                option = "--" + key.replace("_", "-")
                raise DesignError(f"{option} does not apply to the {self.name} family")
        return chosen

    def require(self, operation: str) -> Callable[..., Any]:
        """The function of ``operation`` (an error naming the family when it has none)."""
        attribute = {"export": "export_mesh", "generate": "generate_shard"}.get(
            operation, operation
        )
        function = getattr(self, attribute)
        if function is None:
            raise MetainvError(f"the {self.name} family does not support {operation}")
        return function


_REGISTRY: dict[str, Family] = {}


def _registry() -> dict[str, Family]:
    """The registry, with the built-in families registered (imported on first use, so that
    ``import metainv`` stays light)."""
    if "metainv.families" not in sys.modules:
        importlib.import_module("metainv.families")
    return _REGISTRY


def register_family(family: Family, replace: bool = False) -> Family:
    """Register ``family`` under its name (an error for a taken name unless ``replace``)."""
    if not isinstance(family, Family):
        raise TypeError(f"expected a metainv.family.Family, got {type(family).__name__}")
    if family.name in _REGISTRY and not replace and _REGISTRY[family.name] is not family:
        raise MetainvError(f"design family {family.name!r} is already registered")
    _REGISTRY[family.name] = family
    return family


def unregister_family(name: str) -> None:
    """Remove a registered family (for plug-ins and tests)."""
    _REGISTRY.pop(name, None)


def family_names() -> list[str]:
    """Names of the registered families, in registration order."""
    return list(_registry())


def get_family(name: str) -> Family:
    """The family registered as ``name`` (a one-line error listing the known ones otherwise)."""
    if not isinstance(name, str) or name not in _registry():
        raise DesignError(
            f"unknown family {name!r} (expected one of: {', '.join(_registry()) or 'none'})"
        )
    return _registry()[name]


def family_of(design: Any) -> Family:
    """The registered family whose ``design_type`` ``design`` is an instance of."""
    for family in _registry().values():
        if family.design_type is not None and isinstance(design, family.design_type):
            return family
    raise DesignError(
        f"{type(design).__name__} is not a design of a registered family "
        f"({', '.join(_registry()) or 'none'})"
    )


def iter_families() -> Iterator[Family]:
    """The registered families, in registration order."""
    return iter(list(_registry().values()))


# -- design documents -------------------------------------------------------------------------


def design_from_document(data: Any, candidate: int | None = None) -> tuple[Family, Any]:
    """``(family, design)`` from any document metainv writes or reads that holds a design: a
    design object (``{"family": ...}``) or a ``designs.json`` of ``design`` (its
    ``candidate``-th entry, 1-based; default the best, i.e. the first)."""
    if not isinstance(data, Mapping):
        raise DesignError(f"a design must be a JSON object, got {type(data).__name__}")
    if "candidates" in data:
        entries = data["candidates"]
        if not isinstance(entries, list) or not entries:
            raise DesignError("this designs.json lists no candidates")
        index = 1 if candidate is None else candidate
        if not 1 <= index <= len(entries):
            raise DesignError(
                f"--candidate {index} is out of range: this designs.json has "
                f"{len(entries)} candidate(s) (1..{len(entries)})"
            )
        entry = entries[index - 1]
        if not isinstance(entry, Mapping) or not isinstance(entry.get("design"), Mapping):
            raise DesignError(f"candidate {index} of this designs.json has no design object")
        data = entry["design"]
    elif candidate is not None:
        raise DesignError("--candidate applies to a designs.json, not to a single design file")
    if "family" not in data:
        raise DesignError(f"missing key 'family' in design (one of: {', '.join(family_names())})")
    family = get_family(data["family"])
    return family, family.from_dict(data)


def load_design(path: str | Path, candidate: int | None = None) -> tuple[Family, Any]:
    """Read a design file or a ``designs.json`` (see :func:`design_from_document`); an invalid
    design's error names the file."""
    document = read_json(path)
    try:
        return design_from_document(document, candidate)
    except DesignError as error:
        if str(path) in str(error):
            raise
        raise DesignError(f"{path}: {error}") from None


#: The files ``metainv design`` writes into its output folder (glob patterns): what ``--force``
#: removes from a folder of an earlier run, and nothing else.
DESIGN_OUTPUT_FILES = (
    "designs.json",
    "designs.parquet",
    "candidate_[0-9][0-9].*",
    "candidate_[0-9][0-9]_*.*",
    "candidate_[0-9][0-9][0-9]*",
    ".designs.json.*.tmp",
    ".designs.parquet.*.tmp",
    ".candidate_*.tmp",
)


def prepare_design_folder(folder: str | Path, force: bool = False) -> Path:
    """Check and create the output folder of a design before any work: refused when it is a
    file, cannot be created, or is not empty (unless ``force``, which removes only the files
    of :data:`DESIGN_OUTPUT_FILES`), so results of two runs are never mixed."""
    return prepare_output_folder(folder, own=DESIGN_OUTPUT_FILES, force=force)


def write_design_files(
    result: DesignResult,
    folder: Path,
    files: bool = True,
    mesh_options: Mapping[str, Any] | None = None,
    surface: bool = True,
) -> dict[str, Any]:
    """The generic ``designs.json`` writer: the document first (atomically), then per candidate
    ``candidate_NN.stl`` (the family's ``export_mesh`` with ``mesh_options``) and
    ``candidate_NN_surface.png`` (target vs FE, or vs forward model). A file written is named
    in its candidate's entry (``"stl"``, ``"surface_png"``); a file that fails is removed and
    its reason recorded instead (``"stl_error"``, ``"surface_png_error"``: one line) without
    losing the other files; the document is rewritten (atomically) after each candidate."""
    from metainv.viz import plot_elastic_surface

    family = get_family(result.family)
    folder.mkdir(parents=True, exist_ok=True)
    document = result.to_json()
    cell_size = dict(result.extras.get("print") or {}).get("cell_size_mm")
    scale, modulus_label = plot_unit(result.provenance)
    write_text_atomic(folder / "designs.json", json.dumps(document, indent=2))
    if not files:
        return document
    for rank, (candidate, entry) in enumerate(
        zip(result.candidates, document["candidates"], strict=True), start=1
    ):
        stem = f"candidate_{rank:02d}"
        if family.export_mesh is not None:
            options = dict(mesh_options or {})
            if cell_size is not None and family.features is not None:
                # the STL in mm: one design length unit is cell_size / design_cell_size
                options["size"] = cell_size / family.features(candidate.design).design_cell_size
            _try_file(
                entry,
                "stl",
                f"{stem}.stl",
                lambda path, c=candidate, options=options: family.export_mesh(  # type: ignore[misc]
                    c.design, path, **options
                ),
                folder,
            )
        if surface:
            compare, kind, error = _surface_comparison(candidate)
            _try_file(
                entry,
                "surface_png",
                f"{stem}_surface.png",
                lambda path, rank=rank, compare=compare, kind=kind, error=error: (
                    plot_elastic_surface(
                        scale * np.asarray(result.target),
                        path,
                        compare=None if compare is None else scale * np.asarray(compare),
                        labels=("target", f"design {rank} ({kind})"),
                        title=f"candidate {rank}: {kind} NMSE {error:.4f}",
                        modulus_label=modulus_label,
                    )
                ),
                folder,
            )
        write_text_atomic(folder / "designs.json", json.dumps(document, indent=2))
    return document


def plot_unit(provenance: Mapping[str, Any]) -> tuple[float, str]:
    """``(factor, colour-bar label)`` that draws a normalized stiffness ``C / E_b`` in the
    target's own unit: the unit and ``base_modulus_pa`` of a design's provenance (a target
    given as ``--unit GPa --base-modulus 114GPa`` is drawn in GPa); ``(1, "E(d) / E_b")``
    for a normalized target."""
    return modulus_scale(provenance.get("unit"), provenance.get("base_modulus_pa"))


def modulus_scale(unit: str | None, base_modulus_pa: float | None) -> tuple[float, str]:
    """``(factor, label)`` that turns ``C / E_b`` into ``unit`` (Pa, kPa, MPa, GPa; any case)
    with ``E_b = base_modulus_pa``; ``(1, "E(d) / E_b")`` for no unit, ``normalized`` or an
    unknown ``E_b``."""
    from metainv.targets import NORMALIZED, PASCALS_PER_UNIT, canonical_unit

    if unit is None or canonical_unit(unit) == NORMALIZED or not base_modulus_pa:
        return 1.0, "E(d) / E_b"
    unit = canonical_unit(unit)
    return float(base_modulus_pa) / PASCALS_PER_UNIT[unit], f"E(d) ({unit})"


def file_errors(document: Mapping[str, Any]) -> list[str]:
    """``"candidate N: stl (reason)"`` for every file of a ``designs.json`` document that could
    not be written (its ``*_error`` entries), in candidate order."""
    found = []
    for rank, entry in enumerate(document.get("candidates", []), start=1):
        for key, reason in entry.items():
            if key.endswith("_error"):
                found.append(f"candidate {rank}: {key.removesuffix('_error')} ({reason})")
    return found


def _surface_comparison(candidate: Candidate) -> tuple[np.ndarray | None, str, float]:
    if candidate.C_fe is not None:
        return candidate.C_fe, "FE", float(candidate.nmse_fe or 0.0)
    return candidate.C_forward, "forward model", float(candidate.nmse_forward or 0.0)


def _try_file(
    entry: dict[str, Any],
    key: str,
    name: str,
    write: Callable[[Path], Any],
    folder: Path,
) -> None:
    """Write one output file; on failure remove any partial file and record the reason under
    ``key + "_error"`` (one line)."""
    path = folder / name
    try:
        write(path)
    except (MetainvError, OSError, RuntimeError, ValueError, MemoryError) as error:
        if path.is_file():
            path.unlink(missing_ok=True)
        reason = " ".join(str(error).split()) or type(error).__name__
        entry[f"{key}_error"] = f"{type(error).__name__}: {reason}"
        return
    entry[key] = name
