"""Voxel FE solvers on the same fields: today's AMG-preconditioned block CG ("amg", assembled
BSR matrix) against the matrix-free geometric multigrid ("gmg"); six load cases.

Usage::

    python benchmarks/voxel_solver.py                          # 48^3, 64^3, 96^3, affine
    python benchmarks/voxel_solver.py --resolutions 64 --boundary affine periodic
    OMP_NUM_THREADS=2 python benchmarks/voxel_solver.py        # two BLAS threads

Fields: spinodoid solids (Kumar et al. 2020), the isotropic rho = 0.5 one of
``benchmarks/voxel.py`` ("iso0.5", theta = (90, 90, 90)) and a thin columnar rho = 0.3 one
("col0.3", theta = (30, 30, 0)), seed 0, void removed (the spinodoid
default) unless ``--ersatz`` (E_void = 1e-6 E_s). For each field and resolution, both solvers
run at the default CG tolerance (1e-3 on the energy form of C) and the script prints wall and
CPU seconds (``time.process_time``: all threads of the process, so it is the cost in core
seconds and is far less sensitive than wall time to other jobs on a shared machine), the peak
of Python-tracked memory during the call (``tracemalloc``: numpy arrays included; not the
process RSS), CG iterations (largest over the six load cases), and the difference of C. The
last lines are the ratios amg / gmg and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
    os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])

import numpy as np
from rich.console import Console
from rich.table import Table

from metainv.spinodoid import SpinodoidDesign, solid_mask
from metainv.voxel import homogenize_voxels_detailed

FIELDS = {
    "iso0.5": SpinodoidDesign(0.5, [90, 90, 90], seed=0),
    "col0.3": SpinodoidDesign(0.3, [30, 30, 0], seed=0),
}
SOLVERS = ("amg", "gmg")


def run_one(solid: np.ndarray, boundary: str, void: float | None, solver: str) -> dict:
    """One homogenization with wall, CPU and traced-peak memory."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    result = homogenize_voxels_detailed(
        solid, boundary=boundary, void_modulus_ratio=void, solver=solver
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_mib": peak / 2**20,
        "iterations": max(result.stats.iterations),
        "unknowns": result.n_unknowns,
        "C": result.C,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[48, 64, 96])
    parser.add_argument("--boundary", nargs="+", default=["affine"])
    parser.add_argument("--fields", nargs="+", default=list(FIELDS), choices=list(FIELDS))
    parser.add_argument("--ersatz", action="store_true", help="ersatz void 1e-6 instead")
    args = parser.parse_args()
    void = 1e-6 if args.ersatz else None
    console = Console(width=160)
    load_before = os.getloadavg()
    rows = []
    for n in args.resolutions:
        for field in args.fields:
            solid = solid_mask(FIELDS[field], n)
            for boundary in args.boundary:
                runs = {s: run_one(solid, boundary, void, s) for s in SOLVERS}
                old, new = runs["amg"]["C"], runs["gmg"]["C"]
                row = {
                    "n": n,
                    "field": field,
                    "boundary": boundary,
                    "unknowns": runs["amg"]["unknowns"],
                    "dC": float(np.abs(new - old).max() / np.abs(old).max()),
                    **{
                        f"{s}_{k}": v
                        for s, run in runs.items()
                        for k, v in run.items()
                        if k not in ("C", "unknowns")
                    },
                }
                rows.append(row)
                console.print(
                    f"  {n}^3 {field} {boundary}: amg {row['amg_cpu_s']:.1f} s CPU, "
                    f"gmg {row['gmg_cpu_s']:.1f} s CPU",
                    style="dim",
                )
    threads = os.environ.get("OMP_NUM_THREADS")
    table = Table(
        title=f"Voxel solvers, six load cases, void {'ersatz 1e-6' if void else 'removed'},"
        f" OMP_NUM_THREADS={threads}"
    )
    columns = ["n", "field", "BC", "unknowns"]
    for s in SOLVERS:
        columns += [f"{s} wall", f"{s} CPU", f"{s} MiB", "its"]
    columns += ["CPU x", "wall x", "mem x", "dC"]
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        cells = [f"{row['n']}^3", row["field"], row["boundary"], f"{row['unknowns']:,}"]
        for s in SOLVERS:
            cells += [
                f"{row[f'{s}_wall_s']:.2f}",
                f"{row[f'{s}_cpu_s']:.2f}",
                f"{row[f'{s}_peak_mib']:.0f}",
                str(row[f"{s}_iterations"]),
            ]
        cells += [
            f"{row['amg_cpu_s'] / row['gmg_cpu_s']:.2f}",
            f"{row['amg_wall_s'] / row['gmg_wall_s']:.2f}",
            f"{row['amg_peak_mib'] / row['gmg_peak_mib']:.2f}",
            f"{row['dC']:.1e}",
        ]
        table.add_row(*cells)
    console.print(table)
    load_after = os.getloadavg()
    console.print(
        "seconds; x: ratios amg / gmg (above 1: gmg is faster or smaller); dC: max |C_gmg -"
        " C_amg| / max |C_amg|; load average before "
        f"{load_before[0]:.1f}, after {load_after[0]:.1f} (machine has {os.cpu_count()} cores)"
    )
    summary = {
        "benchmark": "voxel_solver",
        "threads": threads,
        "void": "ersatz 1e-6" if void else "removed",
        "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
        "rows": rows,
    }
    json.dump(summary, sys.stdout, default=float)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
