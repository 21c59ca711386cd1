"""Spinodoid handlers of ``metainv homogenize`` and ``metainv export`` (registered on import).

``homogenize`` prints ``C`` (6x6, in the unit of ``--youngs-modulus``), the measured
``relative_density`` of the voxel grid and its ``resolution``; the truss-only keys
``strut_diameter``, ``nodes`` and ``struts`` are omitted. ``export`` writes an STL (cell edge
``--size``, default 1) or a PNG preview.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metainv.cli._truss import Family, register_family


def _from_dict(data: Mapping[str, Any]) -> Any:
    from metainv.spinodoid.design import design_from_dict

    return design_from_dict(data)


def _homogenize(
    design: Any, youngs_modulus: float, poisson_ratio: float, resolution: int | None = None
) -> dict[str, Any]:
    from metainv.spinodoid.homogenize import DEFAULT_RESOLUTION, homogenize_spinodoid

    result = homogenize_spinodoid(
        design,
        resolution=DEFAULT_RESOLUTION if resolution is None else resolution,
        youngs_modulus=youngs_modulus,
        poisson_ratio=poisson_ratio,
    )
    return {
        "C": [[float(c) for c in row] for row in result.C],
        "relative_density": float(result.relative_density),
        "resolution": int(result.resolution),
    }


def _export(
    design: Any,
    path: Path,
    cells: tuple[int, int, int],
    fmt: str | None,
    segments: int,
    size: float | None = None,
    resolution: int | None = None,
) -> None:
    from metainv.spinodoid.export import export_spinodoid

    del segments  # struts only
    export_spinodoid(
        design,
        path,
        fmt=fmt,
        resolution=resolution,
        cells=cells,
        size=1.0 if size is None else size,
    )


register_family(
    "spinodoid",
    Family(
        from_dict=_from_dict,
        homogenize=_homogenize,
        export=_export,
        options=frozenset({"resolution", "size"}),
    ),
)
