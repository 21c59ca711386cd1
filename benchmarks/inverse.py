"""Inverse-design speed: 30,000 batch inverse designs (one draw each, no FE) and one full
``design`` job on bone3 (10,000 candidates, 5 verified and FE-refined designs).

Usage::

    python benchmarks/inverse.py [--model DIR] [--batch 30000] [--skip-design]
                                 [--polish-steps 100] [--library-neighbours 1]

``--polish-steps N`` also times the batch polish through the forward model
(``metainv design FILE --polish-steps N``); ``--library-neighbours K`` (default 1, 0 skips it)
times the batch pipeline with K designs of the model's rotation-aware library per target
(``metainv design FILE --library-neighbours K``), polished by the same N steps.

Prints a table and a JSON line. The paper: 30,000 inverse predictions in about 60 s on a CPU.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from metainv.targets import load_target
from metainv.tensors import random_rotations, rotate_stiffness
from metainv.truss.learn.artifacts import load_models
from metainv.truss.learn.inverse import DesignSettings, design_batch, design_for_target

PAPER_SECONDS_30K = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: shipped)")
    parser.add_argument("--batch", type=int, default=30_000)
    parser.add_argument("--skip-design", action="store_true")
    parser.add_argument("--polish-steps", type=int, default=0)
    parser.add_argument("--library-neighbours", type=int, default=1)
    args = parser.parse_args()
    models = load_models(args.model)
    bone3 = load_target("bone3")
    rotations = random_rotations(args.batch, np.random.default_rng(0))
    targets = rotate_stiffness(np.broadcast_to(bone3, (args.batch, 6, 6)), rotations)

    design_batch(models, targets[:100])  # warm-up
    start = time.perf_counter()
    designs, _, errors = design_batch(models, targets, tau=1.0)
    batch_seconds = time.perf_counter() - start

    summary = {
        "benchmark": "inverse",
        "threads": torch.get_num_threads(),
        "batch_designs": len(designs),
        "batch_seconds": round(batch_seconds, 3),
        "batch_designs_per_second": round(args.batch / batch_seconds, 1),
        "speedup_vs_paper": round(PAPER_SECONDS_30K / batch_seconds, 1),
        "batch_median_forward_nmse": float(np.median(errors)),
    }
    if args.polish_steps:
        start = time.perf_counter()
        _, _, polished = design_batch(models, targets, tau=1.0, polish_steps=args.polish_steps)
        polish_seconds = time.perf_counter() - start
        summary["polish_steps"] = args.polish_steps
        summary["polish_seconds"] = round(polish_seconds, 2)
        summary["polish_designs_per_second"] = round(args.batch / polish_seconds, 1)
        summary["polish_median_forward_nmse"] = float(np.median(polished))
    if args.library_neighbours and models.library is not None:
        start = time.perf_counter()
        _, _, piped = design_batch(
            models,
            targets,
            tau=1.0,
            polish_steps=args.polish_steps,
            library_neighbours=args.library_neighbours,
        )
        library_seconds = time.perf_counter() - start
        summary["library_rows"] = len(models.library)
        summary["library_neighbours"] = args.library_neighbours
        summary["library_seconds"] = round(library_seconds, 2)
        summary["library_designs_per_second"] = round(args.batch / library_seconds, 1)
        summary["library_median_forward_nmse"] = float(np.median(piped))
    if not args.skip_design:
        start = time.perf_counter()
        candidates = design_for_target(models, bone3, DesignSettings())
        summary["design_bone3_seconds"] = round(time.perf_counter() - start, 2)
        summary["design_bone3_best_nmse_fe"] = candidates[0].nmse_fe
        summary["design_bone3_distinct_topologies"] = len(
            {tuple(sorted(c.design.topology)) for c in candidates}
        )
    table = Table(title="inverse design speed")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, str(value))
    Console().print(table)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
