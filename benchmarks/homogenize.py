"""Throughput of the truss homogenizer over designs sampled uniformly from the design space.

Usage::

    python benchmarks/homogenize.py [--n 4000] [--seed 0] [--threads 1]

Runs single-threaded by default so that the number is lattices per second per core. Prints a
table of time per lattice by topology size and one JSON line with the totals. The first call of
each topology builds and caches its periodic lattice and assembly plan; that one-off cost is
timed separately (it is paid once per topology, of which there are 560).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from metainv.truss.design import deformation_gradient, sample_designs
from metainv.truss.homogenize import _plan_for, homogenize_lattice
from metainv.truss.lattice import canonical_topology, periodic_lattice, strut_diameter

PAPER_RATE_PER_CORE = 5.4  # 3M lattices in 15.5 h on 10 cores (spec section 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="number of sampled designs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (cores) to use")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # LAPACK (the Cholesky factorizations) on as many threads
    console = Console()

    designs = sample_designs(args.n, np.random.default_rng(args.seed))
    groups: dict[tuple, list[int]] = {}
    for position, design in enumerate(designs):
        groups.setdefault(canonical_topology(design.topology), []).append(position)

    start = time.perf_counter()
    lattices = {topology: periodic_lattice(topology) for topology in groups}
    # warm the assembly plans with one tiny solve per topology
    for lattice in lattices.values():
        homogenize_lattice(lattice, np.eye(3), 0.01)
    setup_seconds = time.perf_counter() - start

    per_group = []
    start = time.perf_counter()
    for topology, positions in groups.items():
        lattice = lattices[topology]
        F = np.stack([deformation_gradient(designs[p]) for p in positions])
        rho = np.array([designs[p].relative_density for p in positions])
        tick = time.perf_counter()
        homogenize_lattice(lattice, F, strut_diameter(lattice, F, rho))
        per_group.append((_plan_for(lattice).size, len(positions), time.perf_counter() - tick))
    total_seconds = time.perf_counter() - start
    rate = args.n / total_seconds / args.threads

    table = Table(
        title=f"time per lattice by solved system size ({args.n} designs, {len(groups)} topologies)"
    )
    for column in ("dofs", "topologies", "lattices", "ms / lattice"):
        table.add_column(column, justify="right")
    dofs = np.array([g[0] for g in per_group])
    edges = [0, 60, 120, 240, 480, 960, 10**9]
    for lo, hi in itertools.pairwise(edges):
        rows = [g for g, d in zip(per_group, dofs, strict=True) if lo <= d < hi]
        if rows:
            count = sum(r[1] for r in rows)
            seconds = sum(r[2] for r in rows)
            label = f"{lo}-{hi - 1}" if hi < 10**9 else f">={lo}"
            table.add_row(label, str(len(rows)), str(count), f"{1e3 * seconds / count:.3f}")
    console.print(table)
    summary = {
        "benchmark": "homogenize",
        "designs": args.n,
        "topologies": len(groups),
        "threads": args.threads,
        "seconds": round(total_seconds, 3),
        "setup_seconds_once_per_topology": round(setup_seconds, 3),
        "lattices_per_second_per_core": round(rate, 1),
        "ratio_to_paper": round(rate / PAPER_RATE_PER_CORE, 1),
        "median_dofs": int(np.median(dofs)),
        "max_dofs": int(dofs.max()),
    }
    console.print(
        f"[bold]{rate:.0f} lattices/s/core[/bold] "
        f"({rate / PAPER_RATE_PER_CORE:.0f}x the paper's {PAPER_RATE_PER_CORE}/s/core)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
