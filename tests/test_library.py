"""Rotation-aware design library: a rotated library lattice is found again, its design rotated
onto the target has the target's FE stiffness, and the batch pipeline never does worse than the
inverse model alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from metainv.errors import MetainvError
from metainv.tensors import nmse, random_rotations, rotate_stiffness
from metainv.truss.homogenize import homogenize
from metainv.truss.learn.artifacts import load_models
from metainv.truss.learn.data import load_truss_tensors
from metainv.truss.learn.decode import designs_from_outputs, inverse_decode
from metainv.truss.learn.inverse import inverse_pipeline
from metainv.truss.learn.library import (
    build_library,
    library_designs,
    library_stiffness,
    load_library,
    nearest_rows,
    save_library,
)
from metainv.truss.learn.models import design_stiffness


@pytest.fixture(scope="module")
def tensors(truss_dataset):
    return load_truss_tensors(truss_dataset)


@pytest.fixture(scope="module")
def library(tensors):
    return build_library(tensors)


def rotated_rows(tensors, rows: list[int], seed: int = 3) -> torch.Tensor:
    rotations = torch.as_tensor(random_rotations(len(rows), np.random.default_rng(seed)))
    return rotate_stiffness(tensors.C[rows].double(), rotations).float()


def test_a_rotated_library_lattice_is_found_with_its_rotation(tensors, library):
    rows = [3, 17, 42, 77]
    targets = rotated_rows(tensors, rows)
    match = nearest_rows(library, targets)
    assert match.rows[:, 0].tolist() == rows
    assert torch.all(match.nmse < 1e-5)  # float16 storage
    # the stored stiffness rotated onto the target's frame is the target (no network)
    stiffness = library_stiffness(library, match.rows[:, 0], targets)
    assert np.all(nmse(targets.double().numpy(), stiffness.numpy()) < 1e-5)


def test_the_rotated_library_design_has_the_target_stiffness_by_fe(tensors, library):
    rows = [5, 60]
    targets = rotated_rows(tensors, rows, seed=8)
    outputs, _ = library_designs(library, targets)
    for design, target, row in zip(designs_from_outputs(outputs), targets, rows, strict=True):
        assert design.topology == tuple(
            zip(tensors.cells[row].tolist(), tensors.tessellations[row].tolist(), strict=True)
        )
        # geometry stored in float16: the FE stiffness matches to rounding, not exactly
        assert nmse(target.double().numpy(), homogenize(design).C) < 2e-3


def test_k_nearest_rows_are_sorted_and_include_the_exact_match(tensors, library):
    targets = rotated_rows(tensors, [10, 11])
    match = nearest_rows(library, targets, k=5)
    assert match.rows.shape == (2, 5)
    assert torch.all(match.nmse[:, 1:] >= match.nmse[:, :-1])
    assert match.rows[:, 0].tolist() == [10, 11]
    outputs, _ = library_designs(library, targets, k=5)
    assert outputs["rho"].shape == (10,)


def test_library_round_trips_through_safetensors(library, tmp_path):
    save_library(library, tmp_path / "library.safetensors", {"note": "test"})
    loaded = load_library(tmp_path / "library.safetensors")
    for field in dataclasses.fields(library):
        assert torch.equal(getattr(library, field.name), getattr(loaded, field.name))


def test_a_subset_library_is_seeded(tensors):
    first, second = build_library(tensors, 30, seed=1), build_library(tensors, 30, seed=1)
    assert len(first) == 30
    assert torch.equal(first.norm, second.norm)
    assert not torch.equal(first.norm, build_library(tensors, 30, seed=2).norm)


def test_bad_library_input_is_refused(tensors, library, tmp_path):
    with pytest.raises(MetainvError, match="shape"):
        nearest_rows(library, torch.zeros(6, 6))
    with pytest.raises(MetainvError, match="k must be"):
        nearest_rows(library, tensors.C[:2], k=0)
    with pytest.raises(MetainvError, match="all zeros"):
        nearest_rows(library, torch.zeros(1, 6, 6))
    with pytest.raises(MetainvError, match="at least one row"):
        build_library(tensors, 0)
    with pytest.raises(MetainvError, match="no design library"):
        load_library(tmp_path / "missing.safetensors")


def test_the_pipeline_is_never_worse_than_the_inverse_model(tensors, library):
    models = load_models()
    targets = rotated_rows(tensors, list(range(0, 100, 5)), seed=11)
    alone = nmse(targets, design_stiffness(models.forward, inverse_decode(models.inverse, targets)))
    outputs, errors, source = inverse_pipeline(
        models.forward, models.inverse, library, targets, library_neighbours=2
    )
    assert torch.all(errors <= alone + 1e-7)
    with torch.no_grad():
        again = nmse(targets, design_stiffness(models.forward, outputs))
    assert torch.allclose(again, errors, rtol=1e-4, atol=1e-8)
    # every target is a library lattice: the library wins where the forward model agrees
    assert (source > 0).any()
    with pytest.raises(MetainvError, match="library neighbours"):
        inverse_pipeline(models.forward, models.inverse, library, targets, library_neighbours=-1)


def test_the_shipped_model_with_its_library_stays_under_30_mb():
    from metainv.nn.artifacts import default_model_folder, file_sha256
    from metainv.truss.learn.library import LIBRARY

    folder = default_model_folder("truss")
    total = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    assert total < 30e6
    models = load_models()
    assert models.library is not None
    assert len(models.library) == models.manifest["library"]["rows"]
    assert file_sha256(folder / LIBRARY) == models.manifest["library"]["sha256"]
