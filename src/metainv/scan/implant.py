"""A graded implant from a stiffness map: one design per window, graded between them.

Each window's stiffness (``map.json`` of :func:`metainv.scan.maps.stiffness_map`, in the tissue
modulus' unit) is normalized by the printed material's Young's modulus ``E_b`` and designed by
:func:`metainv.api.design` (family ``truss`` by default, best candidate kept; written to
``OUT/designs/window-<w>/designs.json`` with the window and scan as provenance, and reused
when re-run with the same settings). The window centres become the control points of
:func:`metainv.api.grade` (cell units: voxels / ``cell_size``), over the box of the mapped
region, which writes the graded lattice, its watertight STL and the local check of the
stiffness along the part into ``OUT/part``.

Neighbouring windows may get designs whose cells cannot be blended (e.g. truss cells rotated far
from each other: the grader refuses a degenerate interpolated basis) or blend into a lattice past
the grader's quality gates. Each window therefore keeps ``top`` candidates (default 3), and the
combinations of candidates are graded best-ranked first (by the sum of their ranks; at most
:data:`MAX_GRADINGS`, skipping any that repeat a pair of candidates the grader named as not
blending) until one passes; the chosen candidate of each window is written as ``choice.json``
beside its designs.json.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metainv.api import design, grade
from metainv.errors import MetainvError
from metainv.files import read_json, write_text_atomic
from metainv.grading import DissimilarControlsError, GradingQualityError
from metainv.targets import NORMALIZED, PASCALS_PER_UNIT, Target, modulus_in_pascal
from metainv.tensors import matrix_from_c21

DESIGN_FOLDER = "designs"
PART_FOLDER = "part"
#: The grader's message for two controls whose bases do not blend (metainv.grading).


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


#: Gradings tried at most (combinations of the windows' candidates, best-ranked first).
MAX_GRADINGS = 9


def candidate_choices(counts: Sequence[int], limit: int) -> Iterator[tuple[int, ...]]:
    """Up to ``limit`` choices of one candidate index per window (``counts[w]`` candidates in
    window ``w``), by increasing sum of the ranks (ties: lexicographic), starting at all zeros."""
    start = (0,) * len(counts)
    heap, seen = [(0, start)], {start}
    for _ in range(limit):
        if not heap:
            return
        _, choice = heapq.heappop(heap)
        yield choice
        for w, count in enumerate(counts):
            if choice[w] + 1 < count:
                following = (*choice[:w], choice[w] + 1, *choice[w + 1 :])
                if following not in seen:
                    seen.add(following)
                    heapq.heappush(heap, (sum(following), following))


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
        raise MetainvError(f"--cell-voxels must be positive, got {cell_size}")
    out = Path(out)
    options = {"top": 3, **(design_options or {})}
    folders, centres = [], []
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
        folders.append(folder)
        centres.append([c / cell for c in window["centre"]])
    box = [n / cell for n in settings["region_shape"]]
    documents = [read_json(folder / "designs.json") for folder in folders]
    counts = [len(document["candidates"]) for document in documents]
    refused: set[tuple[int, int, int, int]] = set()  # (i, k_i, j, k_j) pairs that do not blend
    last_error: MetainvError | None = None
    gate_error: GradingQualityError | None = None  # reported first: the nearest miss kind
    for choice in candidate_choices(counts, MAX_GRADINGS):
        if any((i, choice[i], j, choice[j]) in refused for i, _, j, _ in refused):
            continue
        controls = []
        for folder, document, k, centre in zip(folders, documents, choice, centres, strict=True):
            path = folder / "choice.json"
            write_text_atomic(path, json.dumps(document["candidates"][k]["design"], indent=1))
            controls.append((centre, path))
        step(f"grading candidates {', '.join(str(k + 1) for k in choice)} of the windows")
        try:
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
            break
        except DissimilarControlsError as error:
            i, j = error.pair
            refused.add((i, choice[i], j, choice[j]))
            last_error = error
        except GradingQualityError as error:
            last_error = gate_error = error
        step(f"refused: {last_error}")
    else:
        raise MetainvError(
            f"no combination of the windows' candidates (tried up to {MAX_GRADINGS}) grades "
            f"into a lattice that passes; e.g. {gate_error or last_error}"
        )
    result["designs"] = [str(folder / "designs.json") for folder in folders]
    result["candidates_chosen"] = [k + 1 for k in choice]
    result["cell_size_voxels"] = cell
    return result
