"""Spinodoid inverse design for bone-like anisotropic targets, verified by FE at 64^3 (issue #17).

    python benchmarks/spinodoid_design.py --data runs/sp64-test --targets 32

Targets (full anisotropic 6x6, normalized by the base modulus):

* ``bone3`` (spec ``targets.md``, measured in GPa) at tissue moduli of 20 GPa and 15 GPa, and at
  20 GPa in two random orientations;
* synthesized: held-out spinodoids of a data set at the converged resolution (``--data``, made
  by ``metainv generate spinodoid --resolution 64``; rows no model was trained on), their full
  FE stiffness turned by a random rotation, with symmetric multiplicative noise of
  ``--noise`` (3 %) on every entry. The NMSE of the noisy target against the noise-free one is
  printed as ``floor``: what the source design itself would score against its target.

Each target runs the design job (:func:`metainv.spinodoid.learn.inverse.design_for_target`:
frame fit, i-NN, f-NN polish at the model's converged fidelity, ``--top`` candidates verified
by voxel FE at the model's resolution, one FE-corrected refinement of the best). Printed per
target: seconds, f-NN and FE NMSE of the best design, its density; then the median FE NMSE and
the seconds per target. One BLAS / torch thread per solve (``--threads``); the FE solves of
screening and verification run in ``--workers`` threads (default: one per core, as the
design job does).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from metainv.files import write_text_atomic
from metainv.spinodoid.learn.artifacts import load_spinodoid_models
from metainv.spinodoid.learn.inverse import SpinodoidDesignSettings, design_for_target
from metainv.targets import load_target
from metainv.tensors import nmse, random_rotations, rotate_stiffness

BONE_MODULI_GPA = (20.0, 15.0)


def bone_targets(rng: np.random.Generator) -> list[tuple[str, np.ndarray, float | None]]:
    """(name, C / E_s, floor) of bone3 at tissue moduli and in two random orientations."""
    out = []
    for modulus in BONE_MODULI_GPA:
        out.append((f"bone3 @ {modulus:g} GPa", load_target("bone3", "GPa", f"{modulus}GPa"), None))
    base = load_target("bone3", "GPa", "20GPa")
    for k, R in enumerate(random_rotations(2, rng)):
        out.append((f"bone3 @ 20 GPa, rotated {k + 1}", rotate_stiffness(base, R), None))
    return out


def synthetic_targets(
    data: Path, count: int, noise: float, rng: np.random.Generator
) -> list[tuple[str, np.ndarray, float | None]]:
    """(name, C / E_s, floor) of ``count`` held-out FE stiffnesses, rotated, with noise."""
    from metainv.data import read_dataset
    from metainv.tensors import matrix_from_c21

    table = read_dataset(data)
    names = [f"full_C{i + 1}{j + 1}" for i in range(6) for j in range(i, 6)]
    C = matrix_from_c21(np.stack([table[name].to_numpy() for name in names], axis=1))
    rho = table["relative_density"].to_numpy()
    rows = rng.choice(len(C), size=min(count, len(C)), replace=False)
    out = []
    for row, R in zip(rows, random_rotations(len(rows), rng), strict=True):
        clean = rotate_stiffness(C[row], R)
        factor = rng.normal(0.0, noise, size=(6, 6))
        noisy = clean * (1 + (factor + factor.T) / np.sqrt(2))
        if np.linalg.eigvalsh(noisy).min() <= 0:
            noisy = clean
        out.append((f"row {row} (rho {rho[row]:.2f})", noisy, float(nmse(noisy, clean))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="held-out 64^3 data set")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: shipped)")
    parser.add_argument("--targets", type=int, default=32, help="targets in all (>= 5)")
    parser.add_argument("--noise", type=float, default=0.03, help="relative noise of synthesized")
    parser.add_argument("--top", type=int, default=1, help="candidates verified by FE at 64^3")
    parser.add_argument("--pool", type=int, default=2, help="candidates screened by FE")
    parser.add_argument("--seeds", type=int, default=4, help="fields screened per candidate")
    parser.add_argument("--screen-resolution", type=int, default=24, help="FE grid of screening")
    parser.add_argument("--refine", type=int, default=2, help="FE-corrected refinements")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=None, help="FE threads (default: one per core)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--verbose", action="store_true", help="print every step of each job")
    args = parser.parse_args()
    if args.targets < len(BONE_MODULI_GPA) + 3:
        parser.error(f"--targets must be at least {len(BONE_MODULI_GPA) + 3}")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    console = Console()
    rng = np.random.default_rng(args.seed)
    models = load_spinodoid_models(args.model)
    targets = bone_targets(rng)
    targets += synthetic_targets(args.data, args.targets - len(targets), args.noise, rng)
    settings = SpinodoidDesignSettings(
        top=args.top,
        pool=max(args.pool, args.top),
        seeds=args.seeds,
        screen_resolution=args.screen_resolution,
        refine_steps=args.refine,
        seed=args.seed,
        workers=args.workers,
    )
    table = Table(title=f"spinodoid design, FE at {models.resolution}^3 ({models.threshold} level)")
    for column in ("target", "s", "f-NN NMSE", "FE NMSE", "floor", "rho", "theta"):
        table.add_column(column, justify="right")
    results = []
    for name, target, floor in targets:
        start = time.perf_counter()
        step = console.print if args.verbose else None
        candidates, _ = design_for_target(models, target, settings, on_step=step)
        seconds = time.perf_counter() - start
        best = candidates[0]
        results.append(
            {
                "target": name,
                "seconds": round(seconds, 2),
                "nmse_forward": best.nmse_forward,
                "nmse_fe": best.nmse_fe,
                "floor": floor,
                "relative_density": best.design.relative_density,
                "theta": best.design.theta.tolist(),
                "connected": best.connectivity["connected"],
            }
        )
        table.add_row(
            name,
            f"{seconds:.1f}",
            f"{best.nmse_forward:.4f}",
            f"{best.nmse_fe:.4f}",
            "" if floor is None else f"{floor:.4f}",
            f"{best.design.relative_density:.3f}",
            "(" + ", ".join(f"{t:.0f}" for t in best.design.theta) + ")",
        )
        console.print(f"{name}: {seconds:.1f} s, FE NMSE {best.nmse_fe:.4f}")
    console.print(table)
    errors = np.array([r["nmse_fe"] for r in results])
    seconds = np.array([r["seconds"] for r in results])
    bone = np.array([r["target"].startswith("bone3") for r in results])
    summary = {
        "targets": len(results),
        "fe_resolution": models.resolution,
        "median_nmse_fe": float(np.median(errors)),
        "median_nmse_fe_bone3": float(np.median(errors[bone])),
        "median_nmse_fe_synthesized": float(np.median(errors[~bone])),
        "median_floor_synthesized": float(np.median([r["floor"] for r in results if r["floor"]])),
        "median_seconds": float(np.median(seconds)),
        "max_seconds": float(seconds.max()),
        "targets_per_hour": float(3600 / seconds.mean()),
        "settings": {
            "screen_resolution": args.screen_resolution,
            "top": args.top,
            "pool": args.pool,
            "seeds": args.seeds,
            "refine": args.refine,
            "workers": args.workers or len(os.sched_getaffinity(0)),
        },
    }
    console.print(
        f"{len(results)} targets: median FE NMSE {summary['median_nmse_fe']:.4f} (bone3 "
        f"{summary['median_nmse_fe_bone3']:.4f}, synthesized "
        f"{summary['median_nmse_fe_synthesized']:.4f} against a noise floor of "
        f"{summary['median_floor_synthesized']:.4f}); {summary['median_seconds']:.1f} s per "
        f"target (max {summary['max_seconds']:.1f} s, {summary['targets_per_hour']:.0f} per hour, "
        f"{summary['settings']['workers']} FE threads)"
    )
    if args.out is not None:
        write_text_atomic(args.out, json.dumps({"summary": summary, "results": results}, indent=2))


if __name__ == "__main__":
    main()
