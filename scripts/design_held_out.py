"""Design lattices for random held-out test-set stiffnesses with every output file, and count
the STL (and PNG) files that fail.

The targets are rows of a truss test set generated like the shipped model's (``metainv
generate truss --seed 1``: a seed the training data never used); with ``--data DIR`` they are
drawn from an existing data set instead. Each target goes through the public API exactly as
``metainv design TARGET --top 5 --out DIR`` does (forward-model draws, library designs, FE
verification, FE refinement) and its result is written with all files. Per target the script
records the best FE NMSE, the seconds taken and every file error; it resumes (targets with a
``designs.json`` are read, not redone) and prints a summary. Example::

    python scripts/design_held_out.py --n 50 --workers 2 --out runs/held-out-designs

It is a check, not a test: 50 designs take about 30 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import metainv
from metainv.data import GenerationSpec, generate_dataset, generation_parameters, read_dataset


def held_out_targets(n: int, seed: int, data: Path | None, pick_seed: int) -> np.ndarray:
    """(n, 6, 6) stiffnesses: ``n`` random rows of ``data`` or of a fresh test set (seed)."""
    if data is None:
        folder = Path(tempfile.mkdtemp(prefix="metainv-held-out-"))
        rows = max(4 * n, 200)
        spec = GenerationSpec("truss", rows, rows, seed, generation_parameters("truss"))
        generate_dataset(spec, folder)
        data = folder
    table = read_dataset(data)
    names = [name for name in table.column_names if name.startswith("C") and len(name) == 3]
    upper = np.stack([table[name].to_numpy() for name in names], axis=1)
    rows = np.random.default_rng(pick_seed).choice(len(upper), size=n, replace=False)
    index = np.triu_indices(6)
    C = np.zeros((n, 6, 6))
    for k, row in enumerate(rows):
        values = dict(zip(names, upper[row], strict=True))
        for i, j in zip(*index, strict=True):
            C[k, i, j] = C[k, j, i] = values[f"C{i + 1}{j + 1}"]
    return C


def design_one(job: tuple[int, np.ndarray, Path, int, int]) -> dict:
    """Design target ``index`` into ``out/target_NNN`` (or read it back when done)."""
    index, C, out, top, threads = job
    import torch

    torch.set_num_threads(threads)
    folder = out / f"target_{index:03d}"
    document_path = folder / "designs.json"
    start = time.perf_counter()
    if not document_path.is_file() or "surface_png" not in document_path.read_text():
        result = metainv.design(C, family="truss", top=top, seed=index)
        result.write(folder)
    document = json.loads(document_path.read_text())
    candidates = document["candidates"]
    errors = [entry.get("errors", {}) for entry in candidates]
    return {
        "target": index,
        "candidates": len(candidates),
        "stl_written": sum("stl" in entry for entry in candidates),
        "stl_failed": sum("stl" in e for e in errors),
        "png_failed": sum("surface_png" in e for e in errors),
        "errors": [e for e in errors if e],
        "best_nmse_fe": min(entry["nmse_fe"] for entry in candidates),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="number of targets")
    parser.add_argument("--seed", type=int, default=1, help="test-set seed (training used 0)")
    parser.add_argument("--pick-seed", type=int, default=0, help="seed of the row choice")
    parser.add_argument("--data", type=Path, default=None, help="existing truss data set")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--out", type=Path, default=Path("runs/held-out-designs"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    targets = held_out_targets(args.n, args.seed, args.data, args.pick_seed)
    jobs = [(k, targets[k], args.out, args.top, args.threads) for k in range(args.n)]
    results = []
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for result in pool.map(design_one, jobs):
            results.append(result)
            print(
                f"target {result['target']:3d}: {result['stl_written']}/{result['candidates']} "
                f"STL, best FE NMSE {result['best_nmse_fe']:.4f}, {result['seconds']:.0f} s"
                + (f", errors {result['errors']}" if result["errors"] else ""),
                flush=True,
            )
    nmse = np.array([r["best_nmse_fe"] for r in results])
    summary = {
        "targets": len(results),
        "candidates": sum(r["candidates"] for r in results),
        "stl_written": sum(r["stl_written"] for r in results),
        "stl_failed": sum(r["stl_failed"] for r in results),
        "png_failed": sum(r["png_failed"] for r in results),
        "best_nmse_fe_median": float(np.median(nmse)),
        "best_nmse_fe_p90": float(np.quantile(nmse, 0.9)),
        "seconds_per_target_median": float(np.median([r["seconds"] for r in results])),
        "wall_seconds": time.perf_counter() - start,
        "per_target": results,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"{summary['targets']} targets, {summary['candidates']} candidates: "
        f"{summary['stl_written']} STL written, {summary['stl_failed']} STL failed, "
        f"{summary['png_failed']} PNG failed; best FE NMSE median "
        f"{summary['best_nmse_fe_median']:.4f} (p90 {summary['best_nmse_fe_p90']:.4f}); "
        f"{summary['wall_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
