"""Largest shear coupling of unrotated compounds that contain cell 6 (spec section 2).

Usage: python scripts/cell6_couplings.py
Prints, over every topology with cell 6 and a few stretches U, the largest normalized coupling
|C_ij| / sqrt(C_ii C_jj) among the entries that vanish for an orthotropic stiffness.
"""

from __future__ import annotations

import json

import numpy as np

from metainv.truss.homogenize import homogenize_lattice
from metainv.truss.lattice import enumerate_topologies, periodic_lattice, strut_diameter

COUPLINGS = [(i, j) for i in range(6) for j in range(i + 1, 6) if i >= 3 or j >= 3]


def main() -> None:
    stretches = [np.ones(3), np.array([2.0, 0.5, 1.0])]
    worst = {"ratio": 0.0}
    for topology in enumerate_topologies():
        if not any(cell == 6 for cell, _ in topology):
            continue
        lattice = periodic_lattice(topology)
        for U in stretches:
            F = np.diag(U)
            for rho in (0.01,):
                C = homogenize_lattice(lattice, F, strut_diameter(lattice, F, rho))
                scale = np.sqrt(np.outer(np.diag(C), np.diag(C)))
                i, j = max(COUPLINGS, key=lambda ij: abs(C[ij]) / scale[ij])
                ratio = abs(C[i, j]) / scale[i, j]
                if ratio > worst["ratio"]:
                    worst = {
                        "ratio": float(ratio),
                        "entry": f"C{i + 1}{j + 1}",
                        "relative_to_max_C": float(abs(C[i, j]) / np.abs(C).max()),
                        "topology": topology,
                        "U": U.tolist(),
                        "relative_density": rho,
                    }
    print(json.dumps(worst))


if __name__ == "__main__":
    main()
