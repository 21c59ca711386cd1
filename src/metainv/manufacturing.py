"""Physical units and printability: cell sizes in millimetres, a table of additive processes,
the smallest features of a design, and whether it prints at a cell size.

Cell size. ``--cell-size L`` is the physical size of one periodic cell: the largest edge of the
axis-aligned bounding box of one cell (for truss lattices the parallelepiped ``F [0, 1]^3``
spanned by the lattice vectors, so a stretched or rotated cell still fits in an ``L`` cube and
touches two of its faces; for spinodoids and TPMS the cubic cell, of edge ``L``). A block of
``N1 x N2 x N3`` cells of a design with an unstretched cubic cell is then ``N L`` long per axis
(plus a strut radius on every side for trusses, whose boundary struts are whole); STLs are
written in millimetres.

Features (:class:`Features`) are lengths per unit cell size, given by each family's
``features`` function (the family registry, :mod:`metainv.family`): the strut diameter
(trusses), the minimum wall (level-set families: the solid's local thickness that only
:data:`THIN_FRACTION` of the solid volume falls below), the minimum pore (trusses: the smallest
clear gap between two struts that share no node; level-set families: the local thickness of the
void, same rule) and the strut angles above the build plate (the plane x1-x2, build direction
x3). All scale with ``L``, so the smallest printable cell size of a process is the largest ratio
of a process minimum to its feature (:func:`smallest_cell_size`), exactly the threshold of
:func:`check_print`. Struts below the process's self-supporting angle are reported (their
share), not refused: short overhanging struts in a lattice often print, with rougher down-skin.

The process table (``metainv/data/processes.json``) lists assumed typical values with their
source; calibrate them for your machine.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import DesignError, MetainvError

#: Length units accepted in a cell size, in millimetres.
MM_PER_UNIT = {"m": 1000.0, "cm": 10.0, "mm": 1.0, "um": 1e-3, "µm": 1e-3, "in": 25.4}
#: What a cell size means (recorded in designs.json).
CELL_SIZE_DEFINITION = (
    "largest edge (mm) of the axis-aligned bounding box of one periodic cell "
    "(truss: the parallelepiped of the lattice vectors; spinodoid, tpms: the cubic cell)"
)
#: Share of a phase's volume allowed to be thinner than its reported minimum wall or pore.
THIN_FRACTION = 0.05
#: Voxels per cell edge of the level-set feature measurement.
FEATURE_RESOLUTION = 40

_LENGTH = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµ]*)\s*$")


def parse_length(value: str | float, what: str = "--cell-size") -> float:
    """A positive length in millimetres from ``"5mm"``, ``"0.5 mm"``, ``"5e-3m"``, ``"200um"``
    or a bare number (millimetres); a :class:`MetainvError` naming ``what`` otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number, unit = float(value), "mm"
    else:
        match = _LENGTH.match(str(value))
        if match is None:
            raise MetainvError(
                f"invalid {what} {value!r}: expected a positive length such as 5mm, 0.5 mm or "
                f"5e-3m (a bare number is in mm; units: {', '.join(MM_PER_UNIT)})"
            )
        number, unit = float(match.group(1)), (match.group(2) or "mm")
    factor = MM_PER_UNIT.get(unit.lower() if unit != "µm" else unit)
    if factor is None:
        raise MetainvError(
            f"unknown length unit {unit!r} in {what} {value!r}; expected one of "
            f"{', '.join(MM_PER_UNIT)} (a bare number is in mm)"
        )
    length = number * factor
    if not (math.isfinite(length) and length > 0):
        raise MetainvError(f"{what} must be a positive length, got {value!r}")
    return length


# -- the process table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """An additive process's limits (lengths in mm, angle in degrees from the build plate).

    name: key (``lpbf-ti64``); label: display name; min_strut_mm: thinnest strut diameter;
    min_wall_mm: thinnest wall; min_pore_mm: smallest opening (the powder or resin must get out);
    self_supporting_angle_deg: struts at least this steep above the plate need no support;
    source: where the numbers come from (or the assumption made).
    """

    name: str
    label: str
    min_strut_mm: float
    min_wall_mm: float
    min_pore_mm: float
    self_supporting_angle_deg: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "name": self.name,
            "label": self.label,
            "min_strut_mm": self.min_strut_mm,
            "min_wall_mm": self.min_wall_mm,
            "min_pore_mm": self.min_pore_mm,
            "self_supporting_angle_deg": self.self_supporting_angle_deg,
            "source": self.source,
        }


def load_processes() -> dict[str, Process]:
    """The shipped process table (``metainv/data/processes.json``), name -> :class:`Process`."""
    text = resources.files("metainv.data").joinpath("processes.json").read_text(encoding="utf-8")
    table = json.loads(text)["processes"]
    return {name: Process(name=name, **entry) for name, entry in table.items()}


def get_process(name: str | Process) -> Process:
    """The process ``name`` of the table (a one-line error listing the known ones otherwise)."""
    if isinstance(name, Process):
        return name
    processes = load_processes()
    key = str(name).strip().lower()
    if key not in processes:
        raise MetainvError(
            f"unknown process {name!r} (expected one of: {', '.join(processes)}; "
            "see `metainv process list`)"
        )
    return processes[key]


# -- features ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """The smallest features of one periodic cell of a design, per unit cell size.

    design_cell_size: the cell size in the design's own length unit (truss: the largest edge of
        the bounding box of ``F [0, 1]^3``; level-set families: 1): an export at cell size
        ``L`` scales the design's coordinates by ``L / design_cell_size``.
    cell_extent: (3,) bounding-box edges of one cell per unit cell size (largest = 1).
    strut_diameter: strut diameter per unit cell size (trusses) or None.
    min_wall: minimum wall per unit cell size (level-set families) or None.
    min_pore: minimum pore per unit cell size, or None when there is none.
    strut_angles_deg: (m,) angle of each strut of the periodic cell above the build plate
        (x1-x2 plane), in [0, 90], or None (no struts).
    method: how the features were measured (one line).
    """

    design_cell_size: float
    cell_extent: tuple[float, float, float]
    strut_diameter: float | None = None
    min_wall: float | None = None
    min_pore: float | None = None
    strut_angles_deg: np.ndarray | None = field(default=None, compare=False)
    method: str = ""

    def limits(self, process: Process) -> list[tuple[str, float, float]]:
        """``(name, feature per unit cell size, process minimum in mm)`` of every criterion."""
        rows = []
        for name, value, minimum in (
            ("strut diameter", self.strut_diameter, process.min_strut_mm),
            ("wall", self.min_wall, process.min_wall_mm),
            ("pore", self.min_pore, process.min_pore_mm),
        ):
            if value is not None:
                rows.append((name, float(value), float(minimum)))
        return rows


def smallest_cell_size(features: Features, process: Process) -> float:
    """The smallest cell size (mm) at which every feature reaches the process minimum: the
    largest ``minimum / feature`` (features scale with the cell size); ``inf`` for a feature
    of size 0."""
    sizes = [
        minimum / value if value > 0 else math.inf for _, value, minimum in features.limits(process)
    ]
    return max(sizes, default=0.0)


@dataclass(frozen=True)
class PrintCheck:
    """Whether a design prints at a cell size with a process (lengths in mm).

    process: the process (or None: features only); cell_size_mm: the cell size checked;
    features_mm: feature name -> length in mm; failures: ``"strut diameter 0.12 mm < 0.4 mm"``
    per feature below its minimum; smallest_cell_size_mm: the threshold (None without a
    process); overhang_share: share of the cell's struts below the self-supporting angle
    (None without struts or process); min_strut_angle_deg: the flattest strut's angle.
    """

    process: Process | None
    cell_size_mm: float | None
    features_mm: Mapping[str, float]
    failures: tuple[str, ...]
    smallest_cell_size_mm: float | None
    overhang_share: float | None
    min_strut_angle_deg: float | None

    @property
    def printable(self) -> bool | None:
        """True or False with a process and a cell size, else None."""
        if self.process is None or self.cell_size_mm is None:
            return None
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``print`` entry of a candidate, ``export --json``)."""
        data: dict[str, Any] = {
            "cell_size_mm": self.cell_size_mm,
            **{f"{name}_mm": value for name, value in self.features_mm.items()},
        }
        if self.min_strut_angle_deg is not None:
            data["min_strut_angle_deg"] = self.min_strut_angle_deg
        if self.process is not None:
            data["process"] = self.process.name
            data["printable"] = self.printable
            data["failures"] = list(self.failures)
            data["smallest_cell_size_mm"] = self.smallest_cell_size_mm
            if self.overhang_share is not None:
                data["overhang_share"] = self.overhang_share
                data["self_supporting_angle_deg"] = self.process.self_supporting_angle_deg
        return data


def check_features(
    features: Features, cell_size_mm: float | None, process: Process | None
) -> PrintCheck:
    """The pure check of :class:`Features` at a cell size (mm) for a process (either may be
    None: then only what can be said is filled in)."""
    features_mm: dict[str, float] = {}
    failures: list[str] = []
    if cell_size_mm is not None:
        for key in ("strut_diameter", "min_wall", "min_pore"):
            value = getattr(features, key)
            if value is not None:
                features_mm[key] = float(value) * cell_size_mm
        if process is not None:
            for name, value, minimum in features.limits(process):
                if value * cell_size_mm < minimum:
                    failures.append(f"{name} {value * cell_size_mm:.3g} mm < {minimum:g} mm")
    angles = features.strut_angles_deg
    share = minimum_angle = None
    if angles is not None and len(angles):
        minimum_angle = float(np.min(angles))
        if process is not None:
            share = float(np.mean(np.asarray(angles) < process.self_supporting_angle_deg - 1e-9))
    return PrintCheck(
        process=process,
        cell_size_mm=cell_size_mm,
        features_mm=features_mm,
        failures=tuple(failures),
        smallest_cell_size_mm=None if process is None else smallest_cell_size(features, process),
        overhang_share=share,
        min_strut_angle_deg=minimum_angle,
    )


def design_features(design: Any, pore: bool = True) -> Features:
    """The :class:`Features` of a design by its family's ``features`` function (``pore=False``
    may skip the pore)."""
    from metainv.family import family_of

    family = family_of(design)
    if family.features is None:
        raise MetainvError(f"the {family.name} family does not report feature sizes")
    return family.features(design, pore=pore)


def check_print(
    design: Any, cell_size: str | float | None = None, process: str | Process | None = None
) -> PrintCheck:
    """Does ``design`` print at ``cell_size`` (``"5mm"`` or mm) with ``process`` (a name of
    the table)? Features in mm, failures, the smallest printable cell size and the share of
    struts below the self-supporting angle (:class:`PrintCheck`)."""
    size = None if cell_size is None else parse_length(cell_size)
    chosen = None if process is None else get_process(process)
    return check_features(design_features(design), size, chosen)


# -- a printability constraint on design candidates --------------------------------------------


@dataclass(frozen=True)
class PrintConstraint:
    """A design option: keep only the designs that print at ``cell_size_mm`` with ``process``.

    Calling it on a design answers True or False (the features without the pore first:
    ``features(design, pore=False)``, then all of them);
    :meth:`refusal` is the error when no candidate prints, naming the smallest cell size at
    which one of them would."""

    process: Process
    cell_size_mm: float
    features: Callable[..., Features] = field(default=design_features, repr=False)

    def __call__(self, design: Any) -> bool:
        # the cheap features first (no pore: the slow one), then all of them
        cheap = check_features(self.features(design, pore=False), self.cell_size_mm, self.process)
        if not cheap.printable:
            return False
        check = check_features(self.features(design), self.cell_size_mm, self.process)
        return bool(check.printable)

    def refusal(self, designs: Iterable[Any], limit: int = 50) -> MetainvError:
        """The error when none of ``designs`` prints (the first ``limit`` are measured)."""
        sizes = [
            smallest_cell_size(self.features(design), self.process)
            for _, design in zip(range(limit), designs, strict=False)
        ]
        best = min(sizes, default=math.inf)
        hint = (
            f"; the smallest cell size at which one of the {len(sizes)} best-ranked candidates "
            f"prints is {best:.3g} mm (give --cell-size {_ceil3(best)}mm or more)"
            if math.isfinite(best)
            else ""
        )
        return DesignError(
            f"no candidate prints at cell size {self.cell_size_mm:g} mm with "
            f"{self.process.label} (min strut {self.process.min_strut_mm:g} mm, wall "
            f"{self.process.min_wall_mm:g} mm, pore {self.process.min_pore_mm:g} mm){hint}"
        )


def _ceil3(value: float) -> str:
    """``value`` rounded up to 3 significant digits (so that it passes the check)."""
    if value <= 0:
        return "0"
    exponent = math.floor(math.log10(value)) - 2
    return f"{math.ceil(value / 10.0**exponent - 1e-9) * 10.0**exponent:.6g}"


# -- geometry of features ----------------------------------------------------------------------


def segment_distances(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Shortest distances (n,) between the segments ``p0 p1`` and ``q0 q1`` (each (n, 3)),
    by the clamped closest-point parameters (Ericson, Real-Time Collision Detection, 5.1.9)."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.einsum("ij,ij->i", d1, d1)
    e = np.einsum("ij,ij->i", d2, d2)
    f = np.einsum("ij,ij->i", d2, r)
    c = np.einsum("ij,ij->i", d1, r)
    b = np.einsum("ij,ij->i", d1, d2)
    denom = a * e - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 1e-12 * a * e, np.clip((b * f - c * e) / denom, 0, 1), 0.0)
        t = (b * s + f) / e
        s = np.where(t < 0, np.clip(-c / a, 0, 1), np.where(t > 1, np.clip((b - c) / a, 0, 1), s))
        t = np.clip(t, 0, 1)
    closest = (p0 + d1 * s[:, None]) - (q0 + d2 * t[:, None])
    return np.linalg.norm(closest, axis=1)


def periodic_strut_gap(
    nodes: np.ndarray,
    struts: np.ndarray,
    offsets: np.ndarray,
    F: np.ndarray,
    diameter: float,
) -> float | None:
    """The smallest clear gap (surface to surface) between two struts of a periodic lattice that
    share no node, in the unit of ``F``; pairs closer than a diameter (struts that touch or
    cross near a joint) are part of the solid, not a pore. None when no pair is apart.

    nodes (n, 3) fractional, struts (m, 2), offsets (m, 3): the strut ``k`` runs from node
    ``struts[k, 0]`` to ``struts[k, 1] + offsets[k]`` (:class:`metainv.truss.lattice.
    PeriodicLattice`); F (3, 3): lattice vectors as columns; the neighbours of the cell are
    the 26 surrounding cells."""
    nodes = np.asarray(nodes, dtype=float)
    struts = np.asarray(struts, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    F = np.asarray(F, dtype=float)
    shifts = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    start = nodes[struts[:, 0]] @ F.T
    end = (nodes[struts[:, 1]] + offsets) @ F.T
    middle, half = (start + end) / 2, np.linalg.norm(end - start, axis=1) / 2
    # bounding spheres: for the pair (a, b shifted by c), lower = |m_a - m_b - c| - h_a - h_b
    # bounds the distance below and the midpoint distance above
    centres = middle[None, :, :] + (shifts @ F.T)[:, None, :]  # (27, m, 3)
    between = np.linalg.norm(middle[:, None, None, :] - centres[None], axis=-1)  # (m, 27, m)
    lower = between - half[:, None, None] - half[None, None, :]
    apart = lower > diameter  # surely apart (a gap) unless they share a node (they cannot)
    best = float((between[apart] - diameter).min()) if apart.any() else np.inf
    a, c, b = np.nonzero(lower - diameter < best)
    c = shifts[c]
    zero = np.zeros_like(c)
    shared = (
        _same_node(struts[a, 0], zero, struts[b, 0], c)
        | _same_node(struts[a, 0], zero, struts[b, 1], c + offsets[b])
        | _same_node(struts[a, 1], offsets[a], struts[b, 0], c)
        | _same_node(struts[a, 1], offsets[a], struts[b, 1], c + offsets[b])
    )
    keep = ~shared
    a, b, c = a[keep], b[keep], c[keep]
    shift = c @ F.T
    gaps = segment_distances(start[a], end[a], start[b] + shift, end[b] + shift) - diameter
    gaps = gaps[gaps > 0]
    found = min(best, float(gaps.min()) if len(gaps) else np.inf)
    return found if np.isfinite(found) else None


def _same_node(i: np.ndarray, ci: np.ndarray, j: np.ndarray, cj: np.ndarray) -> np.ndarray:
    return (i == j) & np.all(ci == cj, axis=1)


def phase_thickness(
    mask: np.ndarray, periodic: bool = True, fraction: float = THIN_FRACTION, pad: int | None = None
) -> float:
    """The local thickness (in voxels) of the True phase of ``mask`` (n1, n2, n3) that only
    ``fraction`` of its volume falls below: the diameter ``2 r`` of the largest ball (radius
    ``r = sqrt(k) - 1/2``, centre-to-centre distances) whose morphological opening keeps
    ``1 - fraction`` of the phase (Hildebrand and
    Ruegsegger 1997's local thickness, by openings from Euclidean distance transforms;
    resolution one voxel). ``periodic``: the grid is one period (wrapped); else ``pad``
    voxels on every side are context, measured without being counted."""
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask, dtype=bool)
    if periodic:
        pad = max(2, min(mask.shape) // 2) if pad is None else pad
        grid = np.pad(mask, pad, mode="wrap")
    else:
        if pad is None:
            raise MetainvError("phase_thickness needs pad for a non-periodic grid")
        grid = mask
    inner = tuple(slice(pad, s - pad) for s in grid.shape)
    if periodic:
        inner = tuple(slice(pad, pad + s) for s in mask.shape)
    phase = grid[inner]
    total = int(phase.sum())
    if total == 0:
        return 0.0
    inside = distance_transform_edt(grid)

    def kept(k: int) -> float:
        # balls of radius sqrt(k) - 1/2 (voxel centres at distance < sqrt(k)) around the voxels
        # whose centre is at least sqrt(k) from the other phase's centres (half a voxel more
        # than the radius: the surface lies half-way between the centres)
        centres = inside >= math.sqrt(k)
        if not centres.any():
            return 0.0
        opened = distance_transform_edt(~centres) < math.sqrt(k)
        return float((opened[inner] & phase).sum()) / total

    # the largest squared distance k (an integer: EDT values are square roots of integers)
    low, high = 1, pad**2
    if kept(high) >= 1.0 - fraction:
        return 2 * math.sqrt(high) - 1
    while high - low > 1:
        middle = (low + high) // 2
        if kept(middle) >= 1.0 - fraction:
            low = middle
        else:
            high = middle
    return 2 * math.sqrt(low) - 1


def voxel_features(
    solid: np.ndarray, voxel: float, periodic: bool = True, pad: int | None = None
) -> tuple[float, float | None]:
    """``(min wall, min pore)`` of a voxel grid of the solid (:func:`phase_thickness` of the
    solid and of the void), in the unit of ``voxel`` (the voxel edge); None for no void."""
    wall = phase_thickness(solid, periodic, pad=pad) * voxel
    void = ~np.asarray(solid, dtype=bool)
    pore = phase_thickness(void, periodic, pad=pad) * voxel if void.any() else None
    return wall, pore


def cell_bounding_box(F: np.ndarray) -> np.ndarray:
    """(3,) edges of the axis-aligned bounding box of the parallelepiped ``F [0, 1]^3``."""
    return np.abs(np.asarray(F, dtype=float)).sum(axis=1)


def strut_angles(vectors: np.ndarray) -> np.ndarray:
    """Angles (m,) in degrees of strut vectors (m, 3) above the x1-x2 plane (build plate)."""
    vectors = np.asarray(vectors, dtype=float).reshape(-1, 3)
    lengths = np.linalg.norm(vectors, axis=1)
    return np.degrees(np.arcsin(np.clip(np.abs(vectors[:, 2]) / lengths, 0.0, 1.0)))


def stl_extents(path: str | Path) -> np.ndarray:
    """(3,) edges of the bounding box of the mesh in an STL file (in the file's unit)."""
    import trimesh

    mesh = trimesh.load(str(path), file_type="stl", force="mesh")
    return np.asarray(mesh.extents, dtype=float)


def process_rows(processes: Sequence[Process] | None = None) -> list[dict[str, Any]]:
    """The process table as JSON-ready rows (``metainv process list``)."""
    return [p.to_dict() for p in (processes or list(load_processes().values()))]
