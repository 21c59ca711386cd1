"""Control points, their designs and the body: the input of a graded lattice (SI Sec. 5).

A control design is read from a truss design JSON (:func:`metainv.truss.design.design_from_dict`)
or from the ``designs.json`` written by ``metainv design`` (its best candidate: the lowest
``nmse_fe``, else the first).

Matched bases: a lattice has many bases. A cell whose strut graph is invariant under a signed
permutation ``M`` of the reference cube axes (a symmetry of the cube about its centre) is the
same periodic structure with the basis ``A M^-1`` (node ``x_nu + A (X - 1/2)`` is
``x_nu + A M^-1 (X' - 1/2)`` with ``X' = M (X - 1/2) + 1/2`` again a node of the cell). Before
blending (SI Eq. 15), every control basis after the first is replaced by the equivalent basis
closest (Frobenius norm) to the basis of the nearest control point already matched; only the
symmetries of the cell's own graph are searched, so the cell content is unchanged.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import DesignError, MetainvError
from metainv.grading._body import Body
from metainv.grading._rbf import interpolate_bases, rbf_weights
from metainv.truss.design import TrussDesign, deformation_gradient, design_from_dict

__all__ = [
    "GradingProblem",
    "graph_symmetries",
    "load_control_design",
    "matched_basis_changes",
    "parse_point",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class GradingProblem:
    """Control points with a truss design each, the RBF parameter and the body.

    points: (k, 3) control-point positions ``x_i`` (cell units), inside the body
    designs: k truss designs; their affine maps ``F_i = R2 V R1 U`` are the bases ``A_i``
    zeta: RBF width parameter > 0 (1 / cell^2, SI Eq. 14)
    body: the region to fill (:class:`~metainv.grading.Body`)
    names: k labels for reports (default ``control 1``, ...)
    match_bases: replace each control basis by its best-matched equivalent basis (module
        docstring); ``False`` blends the bases ``F_i`` as given
    basis_changes: (k, 3, 3) the signed permutations ``M_i`` chosen (identity when not matched);
        computed, not given
    """

    points: np.ndarray
    designs: tuple[TrussDesign, ...]
    zeta: float
    body: Body
    names: tuple[str, ...] = ()
    match_bases: bool = True
    basis_changes: np.ndarray | None = None

    def __post_init__(self) -> None:
        points = np.array(self.points, dtype=np.float64)
        designs = tuple(self.designs)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
            raise MetainvError(f"control points must be (k, 3) with k >= 1, got {points.shape}")
        if len(designs) != len(points):
            raise MetainvError(f"{len(points)} control points but {len(designs)} designs")
        if not all(isinstance(d, TrussDesign) for d in designs):
            raise DesignError("every control design must be a TrussDesign")
        zeta = _check_zeta(self.zeta)
        names = tuple(self.names) or tuple(f"control {i + 1}" for i in range(len(points)))
        _check_inside(points, self.body, names)
        raw = np.stack([deformation_gradient(d) for d in designs])
        changes = (
            matched_basis_changes(raw, designs, points)
            if self.match_bases
            else np.broadcast_to(np.eye(3), raw.shape).copy()
        )
        _check_blends(np.einsum("kij,klj->kil", raw, changes), names, self.match_bases)
        points.setflags(write=False)
        changes.setflags(write=False)
        object.__setattr__(self, "basis_changes", changes)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "designs", designs)
        object.__setattr__(self, "zeta", zeta)
        object.__setattr__(self, "names", names)

    @property
    def bases(self) -> np.ndarray:
        """(k, 3, 3) control bases ``A_i = F_i M_i^-1`` (columns: lattice vectors, cell units;
        ``M_i`` the matched basis changes, orthogonal, so ``M_i^-1 = M_i^T``)."""
        raw = np.stack([deformation_gradient(d) for d in self.designs])
        return np.einsum("kij,klj->kil", raw, self.basis_changes)

    @property
    def cell_size(self) -> float:
        """Typical cell edge: the cube root of the smallest control-cell volume (cell units)."""
        return float(np.abs(np.linalg.det(self.bases)).min() ** (1 / 3))

    def weights(self, x: np.ndarray) -> np.ndarray:
        """(n, k) RBF weights ``N(x, x_i)`` at points (n, 3) (SI Eq. 14)."""
        return rbf_weights(x, self.points, self.zeta)

    def basis(self, x: np.ndarray) -> np.ndarray:
        """(n, 3, 3) interpolated bases ``A(x)`` at points (n, 3) (SI Eq. 15)."""
        return interpolate_bases(self.weights(x), self.bases)


def _check_zeta(zeta: Any) -> float:
    if isinstance(zeta, bool) or not isinstance(zeta, (int, float, np.number)):
        raise MetainvError(f"zeta must be a positive number, got {zeta!r}")
    value = float(zeta)
    if not (math.isfinite(value) and value > 0):
        raise MetainvError(f"zeta must be positive (it sets the transition width), got {value}")
    return value


def _check_inside(points: np.ndarray, body: Body, names: Sequence[str]) -> None:
    inside = body.contains(points)
    if not inside.all():
        i = int(np.argmin(inside))
        raise MetainvError(
            f"{names[i]} at ({', '.join(f'{c:g}' for c in points[i])}) lies outside the body "
            f"({body.name}: bounds {body.lower.tolist()} to {body.upper.tolist()}, cell units)"
        )


#: Blended bases with ``det A`` below this fraction of the smaller control ``det`` are rejected.
MIN_DET_FRACTION = 0.05


def _cube_symmetries() -> np.ndarray:
    """(48, 3, 3) signed permutation matrices (the symmetries of the cube), identity first."""
    matrices = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            M = np.zeros((3, 3))
            M[np.arange(3), perm] = signs
            matrices.append(M)
    return np.stack(matrices)


def _strut_keys(nodes: np.ndarray, struts: np.ndarray) -> set[tuple[tuple[float, ...], ...]]:
    """Struts as unordered pairs of rounded end positions."""
    ends = (np.round(nodes[struts], 6) + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0
    return {tuple(sorted((tuple(a), tuple(b)))) for a, b in ends}


def graph_symmetries(design: TrussDesign) -> np.ndarray:
    """(s, 3, 3) the signed permutations ``M`` that map the design's reference cell graph
    (compound graph in the unit cube) onto itself about the cube centre; identity first."""
    from metainv.truss.compound import compound_graph

    graph = compound_graph(design.topology)
    nodes = np.asarray(graph.nodes, dtype=np.float64)
    struts = np.asarray(graph.struts, dtype=np.int64)
    keys = _strut_keys(nodes, struts)
    symmetric = [
        M for M in _cube_symmetries() if _strut_keys((nodes - 0.5) @ M.T + 0.5, struts) == keys
    ]
    return np.stack(symmetric)


def matched_basis_changes(
    bases: np.ndarray, designs: Sequence[TrussDesign], points: np.ndarray
) -> np.ndarray:
    """(k, 3, 3) basis changes ``M_i`` (module docstring): control 1 keeps its basis; each
    further control (in order) takes the graph symmetry ``M`` minimizing
    ``|F_i M^-1 - A_j|_F`` against the matched basis ``A_j`` of the nearest earlier control."""
    changes = np.broadcast_to(np.eye(3), bases.shape).copy()
    matched = bases.copy()
    for i in range(1, len(bases)):
        j = int(np.argmin(np.linalg.norm(points[:i] - points[i], axis=1)))
        candidates = graph_symmetries(designs[i])
        equivalent = np.einsum("ij,slj->sil", bases[i], candidates)  # F_i M^T = F_i M^-1
        best = int(np.argmin(np.linalg.norm(equivalent - matched[j], axis=(1, 2))))
        changes[i], matched[i] = candidates[best], equivalent[best]
        if best:
            logger.info("control %d: matched basis change %s", i + 1, candidates[best].tolist())
    return changes


class DissimilarControlsError(MetainvError):
    """Two control designs whose blended basis degenerates; ``pair`` holds their zero-based
    indices ``(i, j)``, ``i < j``, so a caller can replace one of them."""

    def __init__(self, pair: tuple[int, int], message: str) -> None:
        super().__init__(message)
        self.pair = pair


def _check_blends(bases: Sequence[np.ndarray], names: Sequence[str], matched: bool) -> None:
    """Reject control pairs whose blend ``(1 - w) A_i + w A_j`` (SI Eq. 15 on the transition
    between two control points) degenerates for some weight ``w`` in [0, 1]."""
    w = np.linspace(0.0, 1.0, 201)
    for i in range(len(bases)):
        for j in range(i + 1, len(bases)):
            det = np.linalg.det((1 - w[:, None, None]) * bases[i] + w[:, None, None] * bases[j])
            floor = MIN_DET_FRACTION * min(
                abs(np.linalg.det(bases[i])), abs(np.linalg.det(bases[j]))
            )
            if det.min() < floor:
                raise DissimilarControlsError(
                    (i, j),
                    f"the lattice basis interpolated between {names[i]} and {names[j]} "
                    f"degenerates (det A = {det.min():.3g} at weight {w[np.argmin(det)]:.2f}): "
                    "the two cells are too dissimilar (e.g. rotated far from each other) for "
                    "SI Eq. 15"
                    + (" even in their best-matched equivalent bases" if matched else "")
                    + "; choose closer designs (rotate one closer to the other)",
                )


def parse_point(text: str) -> np.ndarray:
    """A point ``"x,y,z"`` (comma-separated, cell units) as a (3,) array."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise MetainvError(f"a point must be three comma-separated numbers, got {text!r}") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise MetainvError(f"a point must be three comma-separated finite numbers, got {text!r}")
    return np.array(values)


def load_control_design(path: str | Path) -> TrussDesign:
    """A truss design from a design JSON or from a ``designs.json`` of ``metainv design``.

    ``designs.json`` (``{"target": ..., "candidates": [{"design": ..., "nmse_fe": ...}]}``)
    gives its best candidate (lowest ``nmse_fe``; the first one if no candidate has it).

    Raises:
        DesignError: invalid design content; the message names the file and the key.
        OSError / json.JSONDecodeError: unreadable file or malformed JSON.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    try:
        return design_from_dict(_design_entry(data))
    except DesignError as error:
        raise DesignError(f"{path}: {error}") from None


def _design_entry(data: Any) -> Mapping[str, Any]:
    if not (isinstance(data, Mapping) and "candidates" in data):
        return data
    candidates = data["candidates"]
    if not isinstance(candidates, list) or not candidates:
        raise DesignError("designs.json has no candidates")
    scored = [c for c in candidates if isinstance(c, Mapping) and "nmse_fe" in c]
    best = min(scored, key=lambda c: float(c["nmse_fe"])) if scored else candidates[0]
    if not isinstance(best, Mapping) or "design" not in best:
        raise DesignError("a candidate of designs.json has no 'design' key")
    return best["design"]
