"""End-to-end throughput of truss data generation (sampling, two FE solves per row, Parquet).

Usage::

    nice -n 19 python benchmarks/generate.py [--n 4000] [--shard-size 2000] [--workers 1 2]
                                             [--backend local] [--seed 0]

Each configuration runs :func:`metainv.data.generate_dataset` in a fresh child process into a
fresh temporary folder, so the numbers include process start-up, imports and the one-off build
of each topology's lattice and assembly plan in every worker, as a real run pays them. Peak
memory is ``getrusage`` of that child (the coordinating process) and the peak resident size
(VmHWM) of each of its worker processes. Prints a table, then one JSON line with the time that
3 million rows would take at the measured rate. The load average is printed with it: on a
shared machine the rates are lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PAPER_HOURS_3M = 15.5  # 3M lattices on 10 CPU cores, in-house C++ (spec section 5)
TARGET_ROWS = 3_000_000


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kB on Linux


class WorkerMemory:
    """Peak resident memory (VmHWM) of every descendant process, polled from /proc.

    ``getrusage(RUSAGE_CHILDREN)`` alone would report the size of this process for any child
    it forks (e.g. ``git`` for the code version), so worker peaks are read per process.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(interval,), daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for pid in _descendants(os.getpid()):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        mb = int(line.split()[1]) / 1024
                        self.peaks[pid] = max(self.peaks.get(pid, 0.0), mb)

    def largest(self) -> float:
        return max(self.peaks.values(), default=0.0)

    def total(self) -> float:
        return sum(self.peaks.values())


def _descendants(root: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def run_one(n: int, shard_size: int, workers: int, backend: str, seed: int) -> dict:
    """Generate once in this process; the measurements as a dict."""
    from metainv.data import GenerationSpec, generate_dataset, generation_parameters

    spec = GenerationSpec("truss", n, shard_size, seed, generation_parameters("truss"))
    with tempfile.TemporaryDirectory(prefix="metainv-bench-") as folder:
        with WorkerMemory() as memory:
            start = time.perf_counter()
            generate_dataset(spec, folder, workers=workers, backend=backend)
            seconds = time.perf_counter() - start
    return {
        "workers": workers,
        "backend": backend,
        "rows": n,
        "shard_size": shard_size,
        "seconds": round(seconds, 2),
        "rows_per_s": round(n / seconds, 2),
        "peak_rss_mb_main": round(_peak_mb(resource.RUSAGE_SELF), 1),
        "peak_rss_mb_largest_worker": round(memory.largest(), 1),
        "peak_rss_mb_all_workers": round(memory.total(), 1),
        "hours_for_3M": round(TARGET_ROWS / (n / seconds) / 3600, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="rows per configuration")
    parser.add_argument("--shard-size", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backend", default="local", help="local | dask")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_one(args.n, args.shard_size, args.workers[0], args.backend, args.seed)
        print(json.dumps(result))
        return

    from rich.console import Console
    from rich.table import Table

    load_before = os.getloadavg()
    results = []
    for workers in args.workers:
        command = [sys.executable, __file__, "--child", "--n", str(args.n)]
        command += ["--shard-size", str(args.shard_size), "--workers", str(workers)]
        command += ["--backend", args.backend, "--seed", str(args.seed)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    load_after = os.getloadavg()

    table = Table(title=f"truss generation, {args.n} rows, shards of {args.shard_size}")
    columns = ("workers", "seconds", "rows/s", "peak MB main", "peak MB per worker", "3M rows")
    for column in columns:
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            str(r["workers"]),
            f"{r['seconds']:.1f}",
            f"{r['rows_per_s']:.1f}",
            f"{r['peak_rss_mb_main']:.0f}",
            f"{r['peak_rss_mb_largest_worker']:.0f}" if r["workers"] > 1 else "-",
            f"{r['hours_for_3M']:.1f} h",
        )
    console = Console()
    console.print(table)
    console.print(
        f"cores: {os.cpu_count()}, load average before/after: "
        f"{load_before[0]:.1f}/{load_after[0]:.1f} (shared machine: rates are lower bounds); "
        f"paper: 3M rows in {PAPER_HOURS_3M} h on 10 cores"
    )
    summary = {
        "benchmark": "generate",
        "backend": args.backend,
        "cores": os.cpu_count(),
        "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
        "results": results,
        "hours_for_3M": {str(r["workers"]): r["hours_for_3M"] for r in results},
        "paper_hours_for_3M_on_10_cores": PAPER_HOURS_3M,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
