"""Regenerate the shipped TPMS law data: ``python -m metainv.tpms [--surface gyroid] [--n 24]``.

Homogenizes each variant over ``--densities`` (default :data:`metainv.tpms.law.FIT_DENSITIES`)
with periodic voxel FE at ``--n`` voxels per cell edge, fits SI Eq. 1 to ``C11, C12, C44``
(over ``--fit-range`` only, when given: that range then bounds the optimizer's densities) and
writes ``src/metainv/tpms/data/<surface>.json`` (or ``--out``), options recorded in the JSON.
About 20 homogenizations of 24^3 voxels take minutes (run it with ``nice``); thin sheets need
finer grids (measured at rho = 0.1: C11 of the sheet gyroid is 53 % low at 24^3, 10 % at 32^3,
0.7 % at 48^3 against 64^3), at about 10 times the cost for 48^3.
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
from metainv.tpms.law import DEFAULT_RESOLUTION, FIT_DENSITIES, fit_table, homogenization_table

DEFAULT_OUT = Path(__file__).resolve().parent / "data"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surface", default="gyroid")
    parser.add_argument("--n", type=int, default=DEFAULT_RESOLUTION, help="voxels per cell edge")
    parser.add_argument(
        "--densities",
        type=float,
        nargs="+",
        default=list(FIT_DENSITIES),
        help="relative densities to homogenize (the solid, rho = 1, is appended)",
    )
    parser.add_argument(
        "--fit-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("RHO_MIN", "RHO_MAX"),
        help="fit only these densities and bound the optimizer to them (the law's density"
        " range); default: fit every density and the solid, law range 0..1",
    )
    parser.add_argument(
        "--variants", nargs="+", default=["sheet", "network"], choices=list(VARIANTS)
    )
    parser.add_argument("--poisson", type=float, default=0.3, help="solid Poisson ratio")
    parser.add_argument("--out", type=Path, default=None, help="output JSON file")
    args = parser.parse_args(argv)
    if args.fit_range is not None and not 0.0 <= args.fit_range[0] < args.fit_range[1] <= 1.0:
        parser.error(f"--fit-range needs 0 <= RHO_MIN < RHO_MAX <= 1, got {args.fit_range}")
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
        "densities": args.densities,
        "fit_range": args.fit_range,
        "density_range": args.fit_range or [0.0, 1.0],
        "boundary": "periodic",
        "void_modulus_ratio": 1e-6,
        "youngs_modulus": 1.0,
        "poisson_ratio": args.poisson,
        "variants": {},
    }
    with Progress(console=console) as progress:
        for variant in args.variants:
            task = progress.add_task(f"{variant} {args.surface}", total=len(args.densities))
            table = homogenization_table(
                args.surface,
                variant,
                densities=args.densities,
                n=args.n,
                poisson_ratio=args.poisson,
                progress=lambda _, task=task: progress.advance(task),
            )
            fit = fit_table(table, args.poisson, tuple(args.fit_range or (0.0, 1.0)))
            data["variants"][variant] = {**table, "fit": fit}
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
