"""The body to fill with a graded lattice: an axis-aligned box or a closed triangle surface.

Coordinates are in cell units (the edge of the reference unit cube). A box ``L1 x L2 x L3`` spans
``[0, L1] x [0, L2] x [0, L3]``; a surface body is read from an STL file in the same units and
must be watertight. Points are inside a surface by their generalized winding number (exact for a
closed surface, no spatial index needed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metainv.errors import MetainvError

__all__ = ["Body", "box_body", "stl_body"]

logger = logging.getLogger(__name__)

#: Point-triangle pairs evaluated at once by the winding-number test (memory bound).
_WINDING_CHUNK = 2_000_000


@dataclass(frozen=True, eq=False)
class Body:
    """A closed region of space, in cell units.

    lower, upper: (3,) corners of the axis-aligned bounding box
    triangles: (t, 3, 3) vertices of a closed, outward-oriented surface, or ``None`` for the box
        ``[lower, upper]`` itself
    name: label for reports (``"box"`` or the STL file name)
    """

    lower: np.ndarray
    upper: np.ndarray
    triangles: np.ndarray | None = None
    name: str = "box"

    @property
    def is_box(self) -> bool:
        return self.triangles is None

    @property
    def size(self) -> np.ndarray:
        """(3,) edge lengths of the bounding box."""
        return self.upper - self.lower

    def contains(self, points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """(n,) bool: which points (n, 3) lie in the closed body.

        A box accepts points up to ``tol`` times its diagonal outside its faces; a surface body
        uses the winding number (> 1/2 inside) inside the slightly enlarged bounding box.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        slack = tol * float(np.linalg.norm(self.size))
        inside = np.all((points >= self.lower - slack) & (points <= self.upper + slack), axis=1)
        if self.triangles is None or not inside.any():
            return inside
        inside[inside] = winding_numbers(points[inside], self.triangles) > 0.5
        return inside


def box_body(size: Sequence[float]) -> Body:
    """The box ``[0, L1] x [0, L2] x [0, L3]`` (cell units); every edge must be positive."""
    lengths = np.asarray(size, dtype=np.float64).reshape(-1)
    if lengths.shape != (3,) or not np.all(np.isfinite(lengths)) or np.any(lengths <= 0):
        raise MetainvError(f"the box needs three positive edge lengths, got {list(size)}")
    return Body(lower=np.zeros(3), upper=lengths)


def stl_body(path: str | Path) -> Body:
    """A body bounded by the closed triangle surface in an STL (or other trimesh) file.

    Raises:
        MetainvError: unreadable file, no triangles, or a surface that is not watertight.
    """
    import trimesh

    path = Path(path)
    if not path.exists():
        raise MetainvError(f"body file not found: {path}")
    try:
        mesh = trimesh.load(path, force="mesh")
    except Exception as error:  # trimesh raises many types for malformed files
        raise MetainvError(f"cannot read the body surface {path}: {error}") from None
    if len(mesh.faces) == 0:
        raise MetainvError(f"the body surface {path} has no triangles")
    if not mesh.is_watertight:
        raise MetainvError(f"the body surface {path} is not closed (not watertight)")
    if mesh.volume < 0:
        mesh.invert()
    triangles = np.asarray(mesh.triangles, dtype=np.float64)
    logger.info("body %s: %d triangles, volume %.4g", path.name, len(triangles), mesh.volume)
    return Body(
        lower=triangles.reshape(-1, 3).min(0),
        upper=triangles.reshape(-1, 3).max(0),
        triangles=triangles,
        name=path.name,
    )


def winding_numbers(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    r"""Generalized winding numbers (n,) of points (n, 3) w.r.t. a closed surface (t, 3, 3).

    Sum of the signed solid angles of the triangles (Van Oosterom and Strackee 1983) over
    ``4 pi``: 1 inside an outward-oriented closed surface, 0 outside.

    .. math:: \tan\frac{\Omega}{2} = \frac{a \cdot (b \times c)}
              {|a||b||c| + (a \cdot b)|c| + (b \cdot c)|a| + (c \cdot a)|b|}
    """
    out = np.empty(len(points))
    step = max(1, _WINDING_CHUNK // max(1, len(triangles)))
    for lo in range(0, len(points), step):
        rel = triangles[None, :, :, :] - points[lo : lo + step, None, None, :]
        a, b, c = rel[:, :, 0], rel[:, :, 1], rel[:, :, 2]
        la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (a, b, c))
        triple = np.einsum("ptk,ptk->pt", a, np.cross(b, c))
        denominator = (
            la * lb * lc
            + np.einsum("ptk,ptk->pt", a, b) * lc
            + np.einsum("ptk,ptk->pt", b, c) * la
            + np.einsum("ptk,ptk->pt", c, a) * lb
        )
        out[lo : lo + step] = np.arctan2(triple, denominator).sum(1) / (2 * np.pi)
    return out
