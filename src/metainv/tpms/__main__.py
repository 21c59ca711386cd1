"""Regenerate the shipped TPMS law data: ``python -m metainv.tpms [--surface gyroid] [--n 24]``.

Homogenizes each variant over :data:`metainv.tpms.law.FIT_DENSITIES` with periodic voxel FE,
fits SI Eq. 1 to ``C11, C12, C44`` and writes ``src/metainv/tpms/data/<surface>.json`` (or
``--out``). About 20 homogenizations of 24^3 voxels: run it with ``nice``; it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from metainv.tpms.fields import VARIANTS
from metainv.tpms.law import FIT_DENSITIES, fit_table, homogenization_table

DEFAULT_OUT = Path(__file__).resolve().parent / "data"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surface", default="gyroid")
    parser.add_argument("--n", type=int, default=24, help="voxels per cell edge")
    parser.add_argument(
        "--variants", nargs="+", default=["sheet", "network"], choices=list(VARIANTS)
    )
    parser.add_argument("--poisson", type=float, default=0.3, help="solid Poisson ratio")
    parser.add_argument("--out", type=Path, default=None, help="output JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = args.out or DEFAULT_OUT / f"{args.surface}.json"
    console = Console(stderr=True)
    command = " ".join(["python -m metainv.tpms", *(argv if argv is not None else sys.argv[1:])])
    data = {
        "description": (
            f"Cubic constants C11, C12, C44 of {args.surface} cells from periodic voxel"
            " homogenization (8-node hexahedra, metainv.voxel), normalized by the solid's Young's"
            " modulus, and least-squares fits of SI Eq. 1: D_ij = D*_ij (a_ij exp(b_ij rho) - a_ij)"
        ),
        "command": command,
        "surface": args.surface,
        "voxels_per_cell": args.n,
        "boundary": "periodic",
        "void_modulus_ratio": 1e-6,
        "youngs_modulus": 1.0,
        "poisson_ratio": args.poisson,
        "variants": {},
    }
    with Progress(console=console) as progress:
        for variant in args.variants:
            task = progress.add_task(f"{variant} {args.surface}", total=len(FIT_DENSITIES))
            table = homogenization_table(
                args.surface,
                variant,
                n=args.n,
                poisson_ratio=args.poisson,
                progress=lambda _, task=task: progress.advance(task),
            )
            data["variants"][variant] = {**table, "fit": fit_table(table, args.poisson)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    console.print(f"wrote {out}")
    for variant, entry in data["variants"].items():
        for name, fit in entry["fit"].items():
            console.print(
                f"{variant} {name}: a={fit['a']:.5g} b={fit['b']:.5g} rms(D/D*)={fit['rms']:.2e}"
            )


if __name__ == "__main__":
    main()
