"""Functionally graded truss lattice of 10 x 4 x 4 cells: time of every step.

Usage::

    python benchmarks/grading.py [--segments 8] [--repeats 3] [--no-stl]

Two examples, control points at both ends of the box along x1, zeta = 0.5:

* ``octet-cubic``: the octet (``examples/designs/octet.json``) to simple cubic
  (``examples/designs/simple_cubic.json``), unit cells, box 10 x 4 x 4 = 160 cells;
* ``bone``: the README example, bone3 to the tilted bone target
  (``examples/grading/*_design.json``), same box (affinely stretched and rotated cells).

Prints the best of ``--repeats`` runs of each lattice step (superposed cell, FE projection
functions, cell centres, placing and merging), the local check (21 sampled cells homogenized),
the watertight STL (one run: it dominates) and the whole ``write_graded_outputs`` pipeline, then
one JSON line. Runs with one BLAS thread (set before numpy loads).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

from rich.console import Console
from rich.table import Table

from metainv.grading import (
    GradingProblem,
    assemble_lattice,
    box_body,
    find_cell_centres,
    load_control_design,
    local_check,
    solve_projection_functions,
    superposed_cell,
    write_graded_outputs,
    write_stl,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "octet-cubic": ("examples/designs/octet.json", "examples/designs/simple_cubic.json"),
    "bone": ("examples/grading/bone3_design.json", "examples/grading/bone_tilted_design.json"),
}
BOX = (10.0, 4.0, 4.0)


def problem_for(name: str) -> GradingProblem:
    first, second = EXAMPLES[name]
    return GradingProblem(
        points=[[0.0, 2.0, 2.0], [BOX[0], 2.0, 2.0]],
        designs=[load_control_design(ROOT / first), load_control_design(ROOT / second)],
        zeta=0.5,
        body=box_body(BOX),
    )


def best_of(function, repeats: int):
    """(best seconds, last result) of ``repeats`` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def run(name: str, repeats: int, segments: int, stl: bool) -> dict:
    problem = problem_for(name)
    record: dict = {"example": name}
    record["superpose_s"], cell = best_of(lambda: superposed_cell(problem.designs), repeats)
    record["fe_s"], field = best_of(lambda: solve_projection_functions(problem), repeats)
    record["centres_s"], centres = best_of(
        lambda: find_cell_centres(field, problem.body, problem.basis), repeats
    )
    record["assemble_s"], lattice = best_of(
        lambda: assemble_lattice(problem, cell, centres), repeats
    )
    record["lattice_s"] = sum(record[k] for k in ("superpose_s", "fe_s", "centres_s", "assemble_s"))
    record |= {"cells": len(centres), "nodes": lattice.n_nodes, "struts": lattice.n_struts}
    record["grid_unknowns"] = field.grid.n_nodes
    record["check_s"], check = best_of(lambda: local_check(problem), 1)
    record["check_max_nmse"] = float(check.nmse.max())
    with tempfile.TemporaryDirectory() as folder:
        if stl:
            start = time.perf_counter()
            info = write_stl(lattice, Path(folder) / "lattice.stl", segments=segments)
            record["stl_s"] = time.perf_counter() - start
            record |= {"triangles": info["triangles"], "watertight": info["watertight"]}
        start = time.perf_counter()
        write_graded_outputs(problem, folder, segments=segments, stl=stl)
        record["all_outputs_s"] = time.perf_counter() - start
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-stl", dest="stl", action="store_false")
    args = parser.parse_args()
    console = Console()
    records = [run(name, args.repeats, args.segments, args.stl) for name in EXAMPLES]
    table = Table(title="graded lattice, box 10 x 4 x 4 cells, zeta 0.5 (seconds, best of runs)")
    keys = ["cells", "nodes", "struts", "superpose_s", "fe_s", "centres_s", "assemble_s"]
    keys += ["lattice_s", "check_s", "stl_s", "all_outputs_s", "watertight"]
    table.add_column("")
    for record in records:
        table.add_column(record["example"], justify="right")
    for key in keys:
        values = [record.get(key, "-") for record in records]
        table.add_row(key, *(f"{v:.2f}" if isinstance(v, float) else str(v) for v in values))
    console.print(table)
    print(json.dumps(records))


if __name__ == "__main__":
    main()
