"""Labelled truss data: design arrays -> FE stiffness of the stage-1 and the final lattice.

A row of the data set (spec ``truss.md`` sections 3 and 5) holds the 19 design parameters, the 21
constants of the *stage-1* lattice (topology, ``rho`` and ``U`` only, ``F1 = U``: the label of the
first forward network) and the 21 constants of the *final* lattice ``F = R2 V R1 U``. The final
rotation acts exactly, ``C(R2 F') = Bond(R2) C(F')`` (spec section 3), so the final stiffness is
the FE stiffness of ``F' = V R1 U`` rotated by ``R2``: two FE solves per row.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from metainv.tensors import c21_from_matrix, rotate_stiffness
from metainv.truss.homogenize import BeamMaterial, homogenize_lattice
from metainv.truss.lattice import canonical_topology, periodic_lattice, strut_diameter

#: Version of the column layout below; bump on any change.
SCHEMA_VERSION = 1


def column_names() -> list[str]:
    """Flat column names of a truss data-set table, in storage order."""
    names = [f"S{i}" for i in (1, 2, 3)] + [f"t{i}" for i in (1, 2, 3)]
    names += ["relative_density", "U1", "U2", "U3", "V1", "V2", "V3"]
    for rotation in ("R1", "R2"):
        names += [f"{rotation}_angle", *(f"{rotation}_axis{k}" for k in (1, 2, 3))]
        names += [f"{rotation}_{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)]
    names += [f"stage1_C{i}{j}" for i, j in _c21_indices()]
    names += [f"C{i}{j}" for i, j in _c21_indices()]
    names += ["strut_diameter", "stage1_strut_diameter", "n_nodes", "n_struts"]
    return names


def _c21_indices() -> list[tuple[int, int]]:
    return [(i + 1, j + 1) for i in range(6) for j in range(i, 6)]


def label_truss_designs(
    arrays: Mapping[str, np.ndarray], material: BeamMaterial = BeamMaterial()
) -> dict[str, np.ndarray]:
    """FE labels of designs in the array form of :func:`metainv.truss.design.sample_design_arrays`.

    Designs are grouped by canonical topology and each group is homogenized in one batch.
    Returns ``stage1_C`` (n, 6, 6), ``C`` (n, 6, 6), ``strut_diameter`` (n,) of the final lattice,
    ``stage1_strut_diameter`` (n,), ``n_nodes``, ``n_struts`` (n,) int.
    """
    cells, tessellations = np.asarray(arrays["cells"]), np.asarray(arrays["tessellations"])
    n = len(cells)
    rho = np.asarray(arrays["relative_density"], dtype=np.float64)
    U = np.asarray(arrays["U"], dtype=np.float64)
    F1 = U[:, :, None] * np.eye(3)  # diag(U)
    F2 = np.asarray(arrays["V"])[:, :, None] * np.asarray(arrays["R1"]) @ F1  # V R1 U
    out = {
        "stage1_C": np.empty((n, 6, 6)),
        "C": np.empty((n, 6, 6)),
        "strut_diameter": np.empty(n),
        "stage1_strut_diameter": np.empty(n),
        "n_nodes": np.empty(n, dtype=np.int64),
        "n_struts": np.empty(n, dtype=np.int64),
    }
    groups: dict[tuple, list[int]] = {}
    for row, pairs in enumerate(np.stack([cells, tessellations], axis=-1).tolist()):
        groups.setdefault(canonical_topology(pairs), []).append(row)
    for topology, rows in groups.items():
        lattice = periodic_lattice(topology)
        index = np.asarray(rows)
        d1 = strut_diameter(lattice, F1[index], rho[index])
        d2 = strut_diameter(lattice, F2[index], rho[index])
        out["stage1_C"][index] = homogenize_lattice(lattice, F1[index], d1, material)
        out["C"][index] = homogenize_lattice(lattice, F2[index], d2, material)
        out["stage1_strut_diameter"][index] = d1
        out["strut_diameter"][index] = d2
        out["n_nodes"][index] = lattice.n_nodes
        out["n_struts"][index] = lattice.n_struts
    out["C"] = rotate_stiffness(out["C"], np.asarray(arrays["R2"]))
    out["C"] = (out["C"] + np.swapaxes(out["C"], -1, -2)) / 2
    return out


def truss_table(arrays: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> dict:
    """Flat columns (name -> 1-D array) of designs and labels, in :func:`column_names` order."""
    columns: dict[str, np.ndarray] = {}
    for k in range(3):
        columns[f"S{k + 1}"] = np.asarray(arrays["cells"])[:, k].astype(np.int8)
    for k in range(3):
        columns[f"t{k + 1}"] = np.asarray(arrays["tessellations"])[:, k].astype(np.int8)
    columns["relative_density"] = np.asarray(arrays["relative_density"], dtype=np.float64)
    for name in ("U", "V"):
        for k in range(3):
            columns[f"{name}{k + 1}"] = np.asarray(arrays[name])[:, k]
    for rotation in ("R1", "R2"):
        columns[f"{rotation}_angle"] = np.asarray(arrays[f"{rotation}_angle"])
        for k in range(3):
            columns[f"{rotation}_axis{k + 1}"] = np.asarray(arrays[f"{rotation}_axis"])[:, k]
        for i in range(3):
            for j in range(3):
                columns[f"{rotation}_{i + 1}{j + 1}"] = np.asarray(arrays[rotation])[:, i, j]
    stage1 = c21_from_matrix(labels["stage1_C"])
    final = c21_from_matrix(labels["C"])
    for k, (i, j) in enumerate(_c21_indices()):
        columns[f"stage1_C{i}{j}"] = stage1[:, k]
    for k, (i, j) in enumerate(_c21_indices()):
        columns[f"C{i}{j}"] = final[:, k]
    for name in ("strut_diameter", "stage1_strut_diameter", "n_nodes", "n_struts"):
        columns[name] = np.asarray(labels[name])
    return {name: columns[name] for name in column_names()}


def generation_parameters() -> dict:
    """Ranges and base material of truss data sets (stored in the manifest)."""
    from metainv.truss.design import RELATIVE_DENSITY_RANGE, STRETCH_RANGE

    material = BeamMaterial()
    return {
        "schema_version": SCHEMA_VERSION,
        "relative_density": list(RELATIVE_DENSITY_RANGE),
        "stretch": list(STRETCH_RANGE),
        "cells": [1, 7],
        "tessellations": [1, 2],
        "rotation_law": "angle U(-pi, pi) about an axis uniform on the sphere",
        "base_material": {
            "youngs_modulus": material.youngs_modulus,
            "poisson_ratio": material.poisson_ratio,
            "shear_correction": material.kappa,
        },
        "columns": column_names(),
    }


def generate_shard(rows: int, rng: np.random.Generator, params: Mapping) -> dict[str, np.ndarray]:
    """Columns of one shard: ``rows`` designs sampled from ``rng`` and their FE labels."""
    from metainv.truss.design import sample_design_arrays

    material = BeamMaterial(
        youngs_modulus=params["base_material"]["youngs_modulus"],
        poisson_ratio=params["base_material"]["poisson_ratio"],
    )
    arrays = sample_design_arrays(rows, rng)
    return truss_table(arrays, label_truss_designs(arrays, material))
