"""A graded implant from a stiffness map: one design per window, graded between them.

Each window's stiffness (``map.json`` of :func:`metainv.scan.maps.stiffness_map`, in the tissue
modulus' unit) is normalized by the printed material's Young's modulus ``E_b`` and designed by
:func:`metainv.api.design` (family ``truss`` by default, best candidate kept; written to
``OUT/designs/window-<w>/designs.json`` with the window and scan as provenance, and reused
when re-run with the same settings). The window centres become the control points of
:func:`metainv.api.grade` (cell units: voxels / ``cell_size``), over the box of the mapped
region, which writes the graded lattice, its watertight STL and the local check of the
stiffness along the part into ``OUT/part``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from metainv.api import design, grade
from metainv.errors import MetainvError
from metainv.files import read_json
from metainv.targets import NORMALIZED, PASCALS_PER_UNIT, Target, modulus_in_pascal
from metainv.tensors import matrix_from_c21

DESIGN_FOLDER = "designs"
PART_FOLDER = "part"


def window_targets(summary: dict[str, Any], base_modulus: str | float | None) -> list[Target]:
    """The windows of a map summary as targets normalized by the printed material's modulus."""
    unit = (summary.get("scan") or {}).get("unit", NORMALIZED)
    if unit == NORMALIZED:
        if base_modulus is not None:
            raise MetainvError(
                "the map is normalized by the tissue modulus (a bare --tissue-modulus): "
                "drop --base-modulus, or map with --tissue-modulus 10GPa"
            )
        factor, base_pa = 1.0, None
    else:
        if base_modulus is None:
            raise MetainvError(
                f"the map is in {unit}: pass --base-modulus, the printed material's Young's "
                "modulus (e.g. --base-modulus 114GPa)"
            )
        base_pa = modulus_in_pascal(base_modulus, default_unit=unit)
        factor = PASCALS_PER_UNIT[unit] / base_pa
    scan = summary.get("scan") or {}
    provenance = {k: scan[k] for k in ("file", "sha256", "segmentation", "coarsen") if k in scan}
    targets = []
    for index, window in enumerate(summary["windows"]):
        C = matrix_from_c21(np.asarray(window["C21"], dtype=float)) * factor
        targets.append(
            Target(
                name=f"window-{index:05d}",
                stiffness=C,
                unit=unit,
                base_modulus_pa=base_pa,
                description=f"scan window at {window['origin']} (voxels)",
                scan={**provenance, "window_origin": window["origin"], "bv_tv": window["bv_tv"]},
            )
        )
    return targets


def graded_implant(
    map_folder: str | Path,
    out: str | Path,
    base_modulus: str | float | None = None,
    family: str = "truss",
    cell_size: float | None = None,
    zeta: float = 0.5,
    force: bool = False,
    on_step: Callable[[str], None] | None = None,
    design_options: dict[str, Any] | None = None,
    grade_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Designs per window and the graded part between them (module docstring).

    cell_size: lattice cell edge in map voxels (default the map's stride). Returns the
    grading summary with ``designs`` (the designs.json per window) added.
    """
    step = on_step or (lambda message: None)
    summary = read_json(Path(map_folder) / "map.json")
    if not isinstance(summary, dict) or "windows" not in summary:
        raise MetainvError(f"{map_folder}: no map.json of `metainv scan map` found")
    settings = summary["settings"]
    cell = float(cell_size or settings["stride"])
    if not cell > 0:
        raise MetainvError(f"--cell-size must be positive, got {cell_size}")
    out = Path(out)
    options = {"top": 1, **(design_options or {})}
    controls, files = [], []
    for target, window in zip(
        window_targets(summary, base_modulus), summary["windows"], strict=True
    ):
        folder = out / DESIGN_FOLDER / target.name
        path = folder / "designs.json"
        previous = read_json(path) if path.is_file() else None
        if not (
            isinstance(previous, dict)
            and previous.get("family") == family
            and np.allclose(previous.get("target"), target.stiffness, rtol=1e-12, atol=0)
        ):
            step(f"designing {target.name}")
            design(target, family=family, **options).write(folder, files=False)
        files.append(str(path))
        controls.append(([c / cell for c in window["centre"]], path))
    box = [n / cell for n in settings["region_shape"]]
    step("grading")
    result = grade(
        controls,
        out / PART_FOLDER,
        box=box,
        zeta=zeta,
        family=family,
        on_step=on_step,
        force=force,
        **(grade_options or {}),
    )
    result["designs"] = files
    result["cell_size_voxels"] = cell
    return result
