"""Graded-lattice topology optimization of the 3-D cantilever (60 x 20 x 4 elements) to convergence.

Usage::

    python benchmarks/topopt.py [--nel 60 20 4] [--material gyroid] [--solver mgcg]
                                [--optimizer oc] [--penalty 1] [--volfrac 0.3] [--max-iter 300]
                                [--density-range RHO_MIN RHO_MAX] [--compare-solvers]

Prints each iteration's compliance, grey level, design change and linear-solve time, then the
totals and one JSON line. ``--compare-solvers`` first times one analysis of a graded design with
every registered solver (sparse LU, geometric-multigrid CG, algebraic-multigrid CG), best of
three cold starts. Runs with one
BLAS thread (set before numpy loads): multi-threaded BLAS only adds contention on small vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

if __name__ == "__main__":
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

import numpy as np
from rich.console import Console

from metainv.topopt import (
    SOLVERS,
    IterationRecord,
    Settings,
    analyze,
    build_model,
    density_filter,
    get_law,
    make_problem,
    make_solver,
    optimize,
)


def compare_solvers(
    problem, law, console: Console, repeats: int = 3, budget_seconds: float = 60.0
) -> dict:
    """Best-of-``repeats`` seconds of one cold analysis (assembly, solve, sensitivities) per
    solver, on the same filtered random design."""
    model = build_model(problem, law)
    rng = np.random.default_rng(0)
    flt = density_filter(problem.grid, 1.5)
    rho = flt.apply((rng.uniform(size=problem.grid.n_elements) < 0.3).astype(float))
    times, compliances = {}, {}
    for name in SOLVERS:
        runs = []
        for _ in range(repeats):  # a fresh solver each time: no warm start
            solve = make_solver(name, model.plan)
            start = time.perf_counter()
            analysis = analyze(model, rho, 1.0, 1e-9, solve)
            runs.append(time.perf_counter() - start)
        times[name] = min(runs)
        compliances[name] = analysis.compliance
        console.print(
            f"solver {name:8s} {times[name]:7.3f} s (best of {repeats})"
            f"  C = {analysis.compliance:.10g}"
        )
        if times[name] > budget_seconds:
            console.print(f"  ({name} is over {budget_seconds:.0f} s: not a candidate)")
    return {"seconds": times, "compliance": compliances}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="cantilever")
    parser.add_argument("--nel", type=int, nargs=3, default=[60, 20, 4])
    parser.add_argument("--material", default="gyroid")
    parser.add_argument("--solver", default="mgcg", choices=list(SOLVERS))
    parser.add_argument("--optimizer", default="oc", choices=["oc", "mma"])
    parser.add_argument("--penalty", type=float, default=1.0)
    parser.add_argument("--volfrac", type=float, default=0.3)
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument(
        "--density-range", type=float, nargs=2, default=None, metavar=("RHO_MIN", "RHO_MAX")
    )
    parser.add_argument("--compare-solvers", action="store_true")
    args = parser.parse_args()
    console = Console(soft_wrap=True)
    problem = make_problem(args.problem, tuple(args.nel))
    law = get_law(args.material)
    comparison = compare_solvers(problem, law, console) if args.compare_solvers else None

    settings = Settings(
        volume_fraction=args.volfrac,
        penalty=args.penalty,
        max_iter=args.max_iter,
        optimizer=args.optimizer,
        solver=args.solver,
        density_range=None if args.density_range is None else tuple(args.density_range),
    )

    def report(record: IterationRecord) -> None:
        console.print(
            f"it {record.iteration:4d}  C {record.compliance:12.6g}"
            f"  vol {record.volume_fraction:.4f}"
            f"  grey {record.grey_level:.4f}  change {record.change:.4f}"
            f"  solve {record.solve_seconds:6.3f} s  analysis {record.analysis_seconds:6.3f} s"
            f"  iteration {record.seconds:6.3f} s"
        )

    start = time.perf_counter()
    result = optimize(problem, law, settings, callback=report)
    total = time.perf_counter() - start
    solve_times = np.array([record.solve_seconds for record in result.history])
    console.print(
        f"{result.iterations} iterations ({'converged' if result.converged else 'not converged'}),"
        f" solve {solve_times.mean():.3f} s mean / {np.median(solve_times):.3f} s median"
        f" per iteration, total {total:.1f} s"
    )
    line = {
        "benchmark": "topopt",
        "problem": args.problem,
        "nel": args.nel,
        "material": args.material,
        "solver": args.solver,
        "optimizer": args.optimizer,
        "penalty": args.penalty,
        "iterations": result.iterations,
        "converged": result.converged,
        "compliance": result.compliance,
        "grey_level": result.grey_level,
        "density_range": list(result.density_range),
        "mean_solve_seconds": float(solve_times.mean()),
        "total_seconds": total,
    }
    if comparison is not None:
        line["solver_comparison"] = comparison
    sys.stdout.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
