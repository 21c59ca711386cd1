"""How the CG tolerance maps to the error of the homogenized C (voxel FE, six load cases).

Usage::

    python benchmarks/voxel_rtol.py                          # 32^3, gmg, affine and periodic
    python benchmarks/voxel_rtol.py --resolution 48 --solver amg

C is the energy form (``metainv.voxel.homogenize``), so its error is quadratic in the
fluctuation error, but the stopping test is on the relative residual ``||f - K u|| / ||f||``,
and on thin struts small residuals still leave large low-frequency errors. For spinodoids over
rho 0.3-0.9 (isotropic and anisotropic, seed per row), void removed, each boundary condition,
the script solves once tightly (``rtol = 1e-9``, the reference) and at each tolerance of
``--rtols``, and prints ``dC = max |C - C_ref| / max |C_ref|``, the CG iterations (largest
over the load cases) and CPU seconds; the last line is JSON.
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

from metainv.spinodoid import SpinodoidDesign, solid_mask
from metainv.voxel import homogenize_voxels_detailed

#: (relative density, cone angles in degrees, seed)
DESIGNS = (
    (0.3, (30, 30, 0), 0),
    (0.3, (36, 65, 40), 1),
    (0.5, (90, 90, 90), 0),
    (0.52, (16, 62, 74), 2),
    (0.7, (0, 50, 20), 3),
    (0.9, (40, 40, 40), 4),
)
REFERENCE_RTOL = 1e-9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--solver", default="gmg", choices=("amg", "gmg"))
    parser.add_argument("--boundary", nargs="+", default=["affine", "periodic"])
    parser.add_argument("--rtols", type=float, nargs="+", default=[3e-2, 1e-2, 3e-3, 1e-3, 1e-4])
    args = parser.parse_args()
    rows = []
    for rho, theta, seed in DESIGNS:
        solid = solid_mask(SpinodoidDesign(rho, list(theta), seed=seed), args.resolution)
        for boundary in args.boundary:
            reference = homogenize_voxels_detailed(
                solid, boundary=boundary, void_modulus_ratio=None, solver=args.solver,
                rtol=REFERENCE_RTOL,
            ).C  # fmt: skip
            cells = []
            for rtol in args.rtols:
                clock = time.process_time()
                result = homogenize_voxels_detailed(
                    solid, boundary=boundary, void_modulus_ratio=None, solver=args.solver,
                    rtol=rtol,
                )  # fmt: skip
                cpu = time.process_time() - clock
                dC = float(np.abs(result.C - reference).max() / np.abs(reference).max())
                its = max(result.stats.iterations)
                cells.append(f"{rtol:g}: dC {dC:.1e}, {its} its, {cpu:.2f} s")
                rows.append(
                    {"rho": rho, "theta": theta, "boundary": boundary, "rtol": rtol,
                     "dC": dC, "iterations": its, "cpu_s": cpu}
                )  # fmt: skip
            sys.stdout.write(f"rho {rho} theta {theta} {boundary}: " + " | ".join(cells) + "\n")
            sys.stdout.flush()
    summary = {"benchmark": "voxel_rtol", "n": args.resolution, "solver": args.solver}
    json.dump({**summary, "rows": rows}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
