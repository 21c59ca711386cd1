"""Stiffness maps: the apparent stiffness of cubic windows across a larger scan.

Windows of ``window^3`` voxels start every ``stride`` voxels along each axis (those that fit
inside the segmented region); window ``w`` is homogenized by :func:`metainv.scan.homogenize_scan`
and its result written atomically to ``OUT/windows/window-<w>.json`` together with the settings
it was computed with. Re-running the same command skips every window whose file holds the same
settings (an interrupted map resumes; a changed setting recomputes), so the result does not
depend on interruptions. Windows run in this process or in parallel (worker processes or a
dask cluster) through :func:`metainv.data.shards.run_tasks`, each single-threaded, so the
numbers do not depend on the backend either. The assembled map is written as

* ``map.npz``: ``centres`` (m, 3) in voxels of the region, ``C`` (m, 6, 6) in the tissue
  modulus' unit, ``bv_tv`` (m,), ``grid`` (3,) windows per axis, ``origins`` (m, 3);
* ``map.vtu``: one hexahedron per window (edge ``stride``, centred on the window), cell data
  ``C11`` ... ``C66`` (21 constants), ``bv_tv`` and the directional Young's moduli ``E1, E2, E3``
  (ParaView), coordinates in voxels times ``voxel_size``;
* ``map.json``: the settings, the scan record and per window its origin, centre, ``C21`` and
  BV/TV.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metainv.data.shards import run_tasks, single_threaded
from metainv.errors import MetainvError
from metainv.files import read_json, temporary_path, write_bytes_atomic, write_text_atomic
from metainv.resources import check_memory
from metainv.scan.homogenize import check_boundaries, estimate_homogenization, homogenize_scan
from metainv.tensors import C21_NAMES, c21_from_matrix, matrix_from_c21
from metainv.voxel import keep_held_voxels

WINDOW_PATTERN = "window-{index:05d}.json"
MAP_FILES = ("map.npz", "map.vtu", "map.json")


def window_origins(shape: Sequence[int], window: int, stride: int) -> tuple[np.ndarray, tuple]:
    """Origins (m, 3) of the windows that fit in ``shape`` and the windows per axis (3,)."""
    if window < 1 or stride < 1:
        raise MetainvError(f"--window and --stride must be positive, got {window}, {stride}")
    counts = []
    for axis, n in enumerate(shape):
        if n < window:
            raise MetainvError(
                f"the region is {n} voxels along axis {axis}, smaller than --window {window}"
            )
        counts.append((n - window) // stride + 1)
    grids = np.meshgrid(*[np.arange(c) * stride for c in counts], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1), tuple(counts)


@dataclass(frozen=True)
class WindowTask:
    """One window of a map: its index, the ``cube`` of voxels (bool), the settings and the
    file to write (picklable, for worker processes)."""

    index: int
    origin: tuple[int, int, int]
    cube: np.ndarray
    settings: dict[str, Any]
    voxel_size: float
    path: str


def run_window(task: WindowTask) -> dict[str, Any]:
    """Homogenize one window single-threaded and write its file atomically; returns the entry."""
    settings, window = task.settings, task.settings["window"]
    periodic = settings["boundary"] == "periodic"
    removed = settings["void_modulus_ratio"] is None and settings["boundary"] != "static"
    held = keep_held_voxels(task.cube, periodic).any() if removed else task.cube.any()
    with single_threaded():
        if held:
            result = homogenize_scan(
                task.cube,
                settings["tissue_modulus"],
                settings["poisson_ratio"],
                [settings["boundary"]],
                settings["void_modulus_ratio"],
                task.voxel_size,
                check_resources=False,
            )
            c21, bv = c21_from_matrix(result.C).tolist(), result.bv_tv
        else:
            c21, bv = [0.0] * 21, float(task.cube.mean())  # no bone the BCs hold: C = 0
    entry = {
        "index": task.index,
        "settings": settings,
        "origin": [int(o) for o in task.origin],
        "centre": [float(o) + window / 2 for o in task.origin],
        "C21": c21,
        "bv_tv": bv,
    }
    write_text_atomic(task.path, json.dumps(entry, indent=1) + "\n")
    return entry


def stiffness_map(
    solid: np.ndarray,
    out: str | Path,
    window: int,
    stride: int,
    tissue_modulus: float = 1.0,
    poisson_ratio: float = 0.3,
    boundary: str = "affine",
    void_modulus_ratio: float | None = None,
    voxel_size: float = 1.0,
    record: dict[str, Any] | None = None,
    on_window: Callable[[int, int, bool], None] | None = None,
    workers: int = 1,
    backend: str = "local",
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Homogenize every window of ``solid`` (any box shape, bool) into ``out`` (module
    docstring); returns the map summary (also written as ``map.json``).

    ``on_window(index, total, reused)`` is called after each window; ``record``: the scan's
    provenance (file, SHA-256, segmentation, ...), kept in ``map.json`` and in each window file.
    ``workers``, ``backend`` (``local`` or ``dask``), ``scheduler``: run the windows in parallel
    through :func:`metainv.data.shards.run_tasks` (each window single-threaded, so the result
    does not depend on them).
    """
    solid = np.asarray(solid)
    if solid.ndim != 3 or solid.dtype != bool:
        raise MetainvError(f"expected a 3-D boolean image, got {solid.shape} {solid.dtype}")
    (boundary,) = check_boundaries([boundary])
    origins, counts = window_origins(solid.shape, window, stride)
    memory, seconds = estimate_homogenization(window, [boundary])
    check_memory(
        memory,
        f"a stiffness map with {window}^3 windows",
        "use smaller windows or coarsen the scan (--coarsen 2)",
        seconds * len(origins),
    )
    out = Path(out)
    folder = out / "windows"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "window": int(window),
        "stride": int(stride),
        "tissue_modulus": float(tissue_modulus),
        "poisson_ratio": float(poisson_ratio),
        "boundary": boundary,
        "void_modulus_ratio": None if void_modulus_ratio is None else float(void_modulus_ratio),
        "region_shape": list(solid.shape),
        "scan_sha256": (record or {}).get("sha256"),
        "segmentation": (record or {}).get("segmentation"),
        "threshold": (record or {}).get("threshold"),
        "coarsen": (record or {}).get("coarsen"),
    }
    done: dict[int, dict[str, Any]] = {}
    tasks = []
    for index, origin in enumerate(origins):
        path = folder / WINDOW_PATTERN.format(index=index)
        entry = _reuse(path, settings, origin)
        if entry is not None:
            done[index] = entry
            if on_window is not None:
                on_window(index, len(origins), True)
            continue
        x, y, z = (int(o) for o in origin)
        cube = np.ascontiguousarray(solid[x : x + window, y : y + window, z : z + window])
        tasks.append(WindowTask(index, (x, y, z), cube, settings, float(voxel_size), str(path)))
    for entry in run_tasks(run_window, tasks, workers, backend, scheduler):
        done[entry["index"]] = entry
        if on_window is not None:
            on_window(entry["index"], len(origins), False)
    entries = [done[index] for index in range(len(origins))]
    return _write_map(out, entries, counts, settings, voxel_size, record)


def _reuse(path: Path, settings: dict[str, Any], origin: np.ndarray) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        entry = read_json(path)
    except (MetainvError, OSError):
        return None  # a damaged file is recomputed
    if (
        not isinstance(entry, dict)
        or entry.get("settings") != settings
        or entry.get("origin") != [int(o) for o in origin]
        or len(entry.get("C21", [])) != 21
    ):
        return None
    return entry


def _write_map(
    out: Path,
    entries: list[dict[str, Any]],
    counts: tuple,
    settings: dict[str, Any],
    voxel_size: float,
    record: dict[str, Any] | None,
) -> dict[str, Any]:
    import meshio

    C = np.stack([matrix_from_c21(np.asarray(e["C21"], dtype=float)) for e in entries])
    centres = np.asarray([e["centre"] for e in entries], dtype=float)
    origins = np.asarray([e["origin"] for e in entries], dtype=np.int64)
    bv = np.asarray([e["bv_tv"] for e in entries], dtype=float)
    buffer = io.BytesIO()
    np.savez(buffer, centres=centres, C=C, bv_tv=bv, grid=np.asarray(counts), origins=origins)
    write_bytes_atomic(out / "map.npz", buffer.getvalue())

    half = settings["stride"] / 2.0
    corners = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]]
    )
    points = (centres[:, None, :] - half + 2 * half * corners[None]).reshape(-1, 3) * voxel_size
    cells = np.arange(len(entries) * 8).reshape(-1, 8)
    cell_data: dict[str, list[np.ndarray]] = {
        name: [C[:, i, j].copy()]
        for name, (i, j) in zip(C21_NAMES, zip(*np.triu_indices(6), strict=True), strict=True)
    }
    cell_data["bv_tv"] = [bv]
    compliance = np.linalg.pinv(C)
    for axis in range(3):
        diagonal = compliance[:, axis, axis]
        safe = np.where(diagonal > 0, diagonal, 1.0)
        cell_data[f"E{axis + 1}"] = [np.where(diagonal > 0, 1.0 / safe, 0.0)]
    mesh = meshio.Mesh(points, [("hexahedron", cells)], cell_data=cell_data)
    temporary = temporary_path(out / "map.vtu")
    try:
        meshio.write(temporary, mesh, file_format="vtu")
        os.replace(temporary, out / "map.vtu")
    finally:
        temporary.unlink(missing_ok=True)

    summary = {
        "settings": settings,
        "scan": record or {},
        "grid": list(counts),
        "voxel_size": voxel_size,
        "unit_note": "C in the unit of the tissue modulus; centres in voxels of the region",
        "windows": [
            {"origin": e["origin"], "centre": e["centre"], "C21": e["C21"], "bv_tv": e["bv_tv"]}
            for e in entries
        ],
        "files": list(MAP_FILES),
    }
    write_text_atomic(out / "map.json", json.dumps(summary, indent=1) + "\n")
    return summary
