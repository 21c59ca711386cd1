"""Our spinodoid homogenization against the published data set of Kumar et al. (2020).

Usage::

    python benchmarks/spinodoid_published.py                      # 50 rows, 3 realizations, 32^3
    python benchmarks/spinodoid_published.py --rows 60 --seed 1 --resolution 48 --out runs/pub.json
    python benchmarks/spinodoid_published.py --convergence --rows 3 --resolutions 24 32 48 64 96

Comparison (default): ``--rows`` random rows of ``../shared/data/kumar2020_spinodoids.csv``
(the authors' data.csv: one random field realization per row, their FE, affine BCs), each
homogenized by :func:`metainv.spinodoid.homogenize_spinodoid` with the library defaults
(``--threshold`` ensemble: the Eq. 3 level) for ``--realizations`` field realizations
(seeds 0, 1, ...). Reported:

* the relative difference ``ours / published - 1`` of the mean of our realizations, by
  relative-density bin, for C11, C33, C44 and pooled over the equivalent constants
  (``Cii``: C11, C22, C33; ``Gii``: C44, C55, C66): mean (the systematic bias) with its
  standard error, and the median;
* NMSE (paper Eq. 8, 36 Voigt entries) of the published row against our mean;
* the realization scatter: NMSE of each of our realizations against the mean of the others
  (leave one out), the noise a single published realization carries against our mean.

Convergence (``--convergence``): the first ``--rows`` chosen rows, one fixed field (seed 0)
each, homogenized at every ``--resolutions`` value, next to the published constants.

Runs single-threaded (BLAS). ``--out`` keeps every finished row in a JSON file (written
atomically) and resumes from it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

if __name__ == "__main__":
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

import numpy as np
from rich.console import Console
from rich.table import Table

from metainv.files import read_json, write_text_atomic
from metainv.spinodoid import THRESHOLDS, SpinodoidDesign, homogenize_spinodoid
from metainv.spinodoid.published import read_published
from metainv.tensors import nmse

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kumar2020_spinodoids.csv"
BINS = (0.3, 0.45, 0.6, 0.75, 0.9001)
REPORTED = {
    "C11": [(0, 0)],
    "C33": [(2, 2)],
    "C44": [(3, 3)],
    "Cii": [(0, 0), (1, 1), (2, 2)],
    "Gii": [(3, 3), (4, 4), (5, 5)],
}


def our_stiffness(
    rho: float, theta: np.ndarray, resolution: int, seed: int, threshold: str = "ensemble"
) -> np.ndarray:
    """C / E_s (6, 6) of one realization with the library defaults (affine BCs, E_s = 1)."""
    design = SpinodoidDesign(float(rho), [float(t) for t in theta], seed=seed)
    return homogenize_spinodoid(design, resolution=resolution, seed=seed, threshold=threshold).C


def compare(args: argparse.Namespace, console: Console) -> dict:
    rho, theta, C_pub = read_published(args.data)
    rows = np.random.default_rng(args.seed).choice(rho.size, size=args.rows, replace=False)
    key = f"n{args.resolution}-r{args.realizations}-{args.threshold}"
    done: dict = {}
    if args.out is not None and args.out.exists():
        done = read_json(args.out).get(key, {})
    start = time.perf_counter()
    for count, row in enumerate(rows):
        if str(row) in done:
            continue
        Cs = [
            our_stiffness(rho[row], theta[row], args.resolution, s, args.threshold)
            for s in range(args.realizations)
        ]
        done[str(row)] = [C.tolist() for C in Cs]
        if args.out is not None:
            stored = read_json(args.out) if args.out.exists() else {}
            stored[key] = done
            write_text_atomic(args.out, json.dumps(stored))
        console.print(
            f"  {count + 1}/{len(rows)} row {row} rho {rho[row]:.3f}"
            f" theta {np.round(theta[row], 1)} ({time.perf_counter() - start:.0f} s)",
            style="dim",
        )
    ours = np.array([np.mean(done[str(r)], axis=0) for r in rows])  # (m, 6, 6)
    each = np.array([done[str(r)] for r in rows])  # (m, R, 6, 6)
    pub = C_pub[rows]
    error = nmse(pub, ours)
    R = args.realizations
    scatter = np.array(
        [nmse(each[:, k], (each.sum(axis=1) - each[:, k]) / (R - 1)) for k in range(R)]
    )  # (R, m)
    bins = np.digitize(rho[rows], BINS) - 1
    summary: dict = {
        "rows": len(rows),
        "resolution": args.resolution,
        "realizations": R,
        "threshold": args.threshold,
    }
    table = Table(
        title=f"ours / published - 1, {len(rows)} rows,"
        f" mean of {R} realizations at {args.resolution}^3"
    )
    table.add_column("rho bin")
    table.add_column("rows", justify="right")
    for name in REPORTED:
        table.add_column(f"{name} mean +- se", justify="right")
        table.add_column(f"{name} median", justify="right")
    for b in range(len(BINS) - 1):
        mask = bins == b
        label = f"[{BINS[b]:.2f}, {min(BINS[b + 1], 0.9):.2f})"
        cells = [label, str(int(mask.sum()))]
        entry: dict = {"rows": int(mask.sum())}
        for name, indices in REPORTED.items():
            rel = np.concatenate([ours[mask][:, i, j] / pub[mask][:, i, j] - 1 for i, j in indices])
            if rel.size == 0:
                cells += ["-", "-"]
                continue
            mean, median = float(rel.mean()), float(np.median(rel))
            se = float(rel.std(ddof=1) / np.sqrt(rel.size)) if rel.size > 1 else float("nan")
            entry[name] = {"mean": mean, "se": se, "median": median}
            cells += [f"{100 * mean:+.1f} +- {100 * se:.1f} %", f"{100 * median:+.1f} %"]
        summary[label] = entry
        table.add_row(*cells)
    console.print(table)
    summary["nmse_median"] = float(np.median(error))
    summary["nmse_worst"] = float(np.max(error))
    summary["scatter_nmse_median"] = float(np.median(scatter))
    console.print(
        f"NMSE published vs our mean: median {summary['nmse_median']:.4f}, worst "
        f"{summary['nmse_worst']:.4f}; realization scatter (one of ours vs the mean of the "
        f"others): median {summary['scatter_nmse_median']:.4f}"
    )
    return summary


def convergence(args: argparse.Namespace, console: Console) -> dict:
    rho, theta, C_pub = read_published(args.data)
    rows = np.random.default_rng(args.seed).choice(rho.size, size=args.rows, replace=False)
    result: dict = {}
    for row in rows:
        table = Table(
            title=f"row {row}: rho {rho[row]:.3f}, theta {np.round(theta[row], 1)}, seed 0"
        )
        for column in ("n^3", "C11", "C22", "C33", "C44", "C55", "C66", "mean |ours/pub - 1|"):
            table.add_column(column, justify="right")
        diag = [(i, i) for i in range(6)]
        pub = np.array([C_pub[row][i, j] for i, j in diag])
        table.add_row("published", *[f"{v:.4f}" for v in pub], "")
        result[str(row)] = {}
        for n in args.resolutions:
            C = our_stiffness(rho[row], theta[row], n, 0)
            values = np.array([C[i, j] for i, j in diag])
            off = float(np.mean(np.abs(values / pub - 1)))
            result[str(row)][n] = values.tolist()
            table.add_row(f"{n}^3", *[f"{v:.4f}" for v in values], f"{100 * off:.1f} %")
        console.print(table)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50, help="random rows of the published set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the row choice")
    parser.add_argument(
        "--realizations", type=int, default=3, help="our field realizations per row"
    )
    parser.add_argument("--resolution", type=int, default=32, help="voxels per cell edge")
    parser.add_argument(
        "--threshold", choices=THRESHOLDS, default="ensemble", help="level rule (field.py)"
    )
    parser.add_argument("--data", type=Path, default=DATA, help="the published data.csv")
    parser.add_argument("--out", type=Path, default=None, help="JSON file of results (resumes)")
    parser.add_argument("--convergence", action="store_true", help="resolution study instead")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[24, 32, 48, 64, 96])
    args = parser.parse_args()
    console = Console(width=200)
    if args.convergence:
        result = convergence(args, console)
    else:
        if args.realizations < 2:
            parser.error("--realizations must be at least 2 (the scatter needs two)")
        result = compare(args, console)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
