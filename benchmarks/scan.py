"""Scan homogenization and stiffness maps: wall and CPU time, peak memory.

Usage::

    python benchmarks/scan.py                          # 100^3 scan, 6 load cases (affine)
    python benchmarks/scan.py --map                    # + 200^3 map, 100^3 windows, stride 50
    python benchmarks/scan.py --map --max-windows 3    # the first 3 of 27 windows, extrapolated
    python benchmarks/scan.py --map --workers 2        # the map's windows in 2 processes

The scan is the deterministic demo image (:func:`metainv.scan.demo.demo_scan`, Otsu
segmentation, BV/TV about 0.3), affine BCs, marrow removed (the scan default), single-threaded
BLAS.
Prints a table and one JSON line; wall and CPU seconds both (a shared machine inflates wall
time), peak resident memory of the process (``ru_maxrss``) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

if __name__ == "__main__":
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

from rich.console import Console
from rich.table import Table

from metainv.scan import homogenize_scan, segment
from metainv.scan.demo import demo_scan
from metainv.scan.maps import stiffness_map, window_origins


def peak_mib() -> float:
    """Peak resident memory of this process or of its largest worker process (MiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024.0


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="edge of the homogenized scan")
    parser.add_argument("--map", action="store_true", help="also the stiffness map")
    parser.add_argument("--map-size", type=int, default=200)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--stride", type=int, default=50)
    parser.add_argument("--max-windows", type=int, default=None, help="stop after this many")
    parser.add_argument("--workers", type=int, default=1, help="map windows in N processes")
    args = parser.parse_args(argv)

    rows, record = [], {"load_average": os.getloadavg()[0]}
    solid = segment(demo_scan(args.size, seed=0)).solid
    result, wall, cpu = timed(lambda: homogenize_scan(solid, 1.0, 0.3, ["affine"]))
    record["homogenize"] = {
        "size": args.size,
        "wall_s": wall,
        "cpu_s": cpu,
        "unknowns": result.solves["affine"]["unknowns"],
        "cg_iterations": result.solves["affine"]["cg_iterations"],
        "peak_mib": peak_mib(),
        "bv_tv": result.bv_tv,
        "voxels_per_s": args.size**3 / wall,
    }
    rows.append((f"{args.size}^3 scan, 6 load cases", wall, cpu, peak_mib(), "target < 60 s wall"))
    print(json.dumps({"homogenize": record["homogenize"]}), flush=True)
    if args.map:
        big = segment(demo_scan(args.map_size, seed=1)).solid
        origins, _counts = window_origins(big.shape, args.window, args.stride)
        total = len(origins)
        done = []
        out = tempfile.mkdtemp(prefix="metainv-scan-map-")

        class Stop(Exception):
            pass

        def on_window(index: int, total: int, reused: bool) -> None:
            done.append(index)
            print(json.dumps({"window": index, "wall_s": time.perf_counter() - start}), flush=True)
            if args.max_windows is not None and len(done) >= args.max_windows:
                raise Stop

        def run():
            try:
                stiffness_map(
                    big, out, args.window, args.stride, on_window=on_window, workers=args.workers
                )
            except Stop:
                pass

        start = time.perf_counter()
        _, wall, cpu = timed(run)
        per_window = wall / max(len(done), 1)
        record["map"] = {
            "size": args.map_size,
            "window": args.window,
            "stride": args.stride,
            "windows": total,
            "windows_done": len(done),
            "workers": args.workers,
            "wall_s": wall,
            "cpu_s": cpu,
            "wall_s_per_window": per_window,
            "wall_s_all_windows_estimated": per_window * total,
            "peak_mib": peak_mib(),
            "out": out,
        }
        note = f"{len(done)}/{total} windows" + (
            f", all {total}: ~{per_window * total:.0f} s" if len(done) < total else ""
        )
        rows.append(
            (f"{args.map_size}^3 map, {args.window}^3 windows", wall, cpu, peak_mib(), note)
        )

    table = Table(title=f"scan benchmark (load average {record['load_average']:.1f})")
    for column in ("case", "wall s", "CPU s", "peak MiB", "note"):
        table.add_column(column)
    for case, wall, cpu, peak, note in rows:
        table.add_row(case, f"{wall:.1f}", f"{cpu:.1f}", f"{peak:.0f}", note)
    Console().print(table)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
