"""Truss data sets as tensors: splits, features (SI Eq. 2), label scaling (SI Eq. 3), streaming,
minibatches and exact rotation augmentation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from metainv.data import (
    FEATURE_NAMES,
    ORTHO_IN_C21,
    ROTATION_LAWS,
    DesignRanges,
    MinMaxScaler,
    augment_rotations,
    fit_label_scalers,
    iter_truss_shards,
    load_truss,
    minibatches,
    read_dataset,
    split_indices,
    unscale_geometry,
)
from metainv.errors import MetainvError
from metainv.tensors import ORTHO_NAMES, bond_matrix, matrix_from_c21
from metainv.truss.design import TrussDesign
from metainv.truss.homogenize import homogenize


@pytest.fixture(scope="module")
def data(truss_dataset):
    return load_truss(truss_dataset, dtype=torch.float64)


def test_splits_are_deterministic_disjoint_and_cover_every_row():
    splits = split_indices(1000, (0.7, 0.2, 0.1), seed=3)
    assert [len(splits[name]) for name in ("train", "validation", "test")] == [700, 200, 100]
    everything = np.concatenate(list(splits.values()))
    np.testing.assert_array_equal(np.sort(everything), np.arange(1000))
    again = split_indices(1000, (0.7, 0.2, 0.1), seed=3)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    other = split_indices(1000, (0.7, 0.2, 0.1), seed=4)
    assert not np.array_equal(splits["test"], other["test"])
    with pytest.raises(MetainvError, match="summing to 1"):
        split_indices(10, (0.5, 0.2, 0.2))


def test_features_follow_the_spec(truss_dataset, data):
    table = read_dataset(truss_dataset)
    assert data.features().shape == (100, 34) and len(FEATURE_NAMES) == 34
    rho = table["relative_density"].to_numpy()
    np.testing.assert_allclose(data.geometry[:, 0].numpy(), (rho - 0.002) / (0.1 - 0.002))
    V3 = table["V3"].to_numpy()
    np.testing.assert_allclose(data.geometry[:, 6].numpy(), (V3 - 0.5) / 1.5)
    assert data.geometry.min() >= 0 and data.geometry.max() <= 1
    raw = unscale_geometry(data.geometry, DesignRanges())
    np.testing.assert_allclose(raw[:, 0].numpy(), rho, rtol=1e-12)
    blocks = torch.split(data.topology, [7, 7, 7, 2, 2, 2], dim=1)
    for k, block in enumerate(blocks):
        assert torch.all(block.sum(1) == 1)
        source = data.cells[:, k] if k < 3 else data.tessellations[:, k - 3]
        assert torch.equal(block.argmax(1) + 1, source)
        column = ("S1", "S2", "S3", "t1", "t2", "t3")[k]
        np.testing.assert_array_equal(source.numpy(), table[column].to_numpy())
    assert [ORTHO_NAMES[k] for k in range(9)] == [
        f"C{i}{j}" for i, j in ("11", "12", "13", "22", "23", "33", "44", "55", "66")
    ]
    assert data.stage1_orthotropic().shape == (100, 9) and len(ORTHO_IN_C21) == 9


def test_streaming_gives_the_rows_of_the_in_memory_path(truss_dataset, data):
    rows = split_indices(100, seed=1)["train"]
    streamed = list(iter_truss_shards(truss_dataset, rows, dtype=torch.float64))
    assert len(streamed) > 1  # really shard by shard
    in_memory = data.select(torch.from_numpy(rows))
    subset = load_truss(truss_dataset, rows, dtype=torch.float64)
    for field in dataclasses.fields(subset):
        assert torch.equal(getattr(subset, field.name), getattr(in_memory, field.name))
    shuffled = list(iter_truss_shards(truss_dataset, rows, rng=np.random.default_rng(0)))
    order = [int(batch.index[0]) for batch in shuffled]
    assert order != sorted(order)
    np.testing.assert_array_equal(np.sort(torch.cat([b.index for b in shuffled]).numpy()), rows)


def test_minibatches_cover_every_row_once(truss_dataset):
    stream = iter_truss_shards(truss_dataset)  # shards of 10 rows, batches of 16
    batches = list(minibatches(stream, 16, rng=np.random.default_rng(0)))
    assert [len(b) for b in batches] == [16] * 6 + [4]
    np.testing.assert_array_equal(np.sort(torch.cat([b.index for b in batches])), np.arange(100))
    assert [len(b) for b in minibatches(load_truss(truss_dataset), 16, drop_last=True)] == [16] * 6


def test_label_scaler_maps_the_training_range_onto_minus_one_one(data):
    splits = split_indices(len(data), seed=0)
    train = data.select(torch.from_numpy(splits["train"]))
    scalers = fit_label_scalers(train)
    scaled = scalers["C"](train.C)
    assert torch.allclose(scaled.min(0).values, torch.full((21,), -1.0, dtype=torch.float64))
    assert torch.allclose(scaled.max(0).values, torch.full((21,), 1.0, dtype=torch.float64))
    test = data.select(torch.from_numpy(splits["test"]))
    torch.testing.assert_close(scalers["C"].inverse_transform(scalers["C"](test.C)), test.C)

    # saved with a model, restored exactly; float32 use
    restored = MinMaxScaler(21)
    restored.load_state_dict(scalers["stage1_C"].state_dict())
    x = test.stage1_C.float()
    assert torch.equal(restored(x), scalers["stage1_C"](x)) and restored(x).dtype == torch.float32

    with pytest.raises(MetainvError, match="not fitted"):
        MinMaxScaler(3)(torch.zeros(2, 3))


def test_label_scaler_does_not_blow_up_rounding_noise():
    x = torch.tensor([[0.0, 1e-19, 5.0], [1.0, -1e-19, 5.0]], dtype=torch.float64)
    scaler = MinMaxScaler(3).fit(x)
    y = scaler(x)
    assert torch.equal(y[:, 0], torch.tensor([-1.0, 1.0], dtype=torch.float64))
    assert torch.all(y[:, 1:].abs() <= 1.0) and torch.all(y[:, 1:] + 1 < 1e-9)
    torch.testing.assert_close(scaler.inverse_transform(y), x, rtol=0, atol=1e-15)


def test_rotation_augmentation_is_exact(data):
    batch = data.select(slice(0, 3))
    augmented = augment_rotations(batch, np.random.default_rng(5))
    for k in range(3):
        rotated = TrussDesign(
            topology=tuple(
                zip(batch.cells[k].tolist(), batch.tessellations[k].tolist(), strict=True)
            ),
            relative_density=float(unscale_geometry(batch.geometry[k])[0]),
            U=unscale_geometry(batch.geometry[k])[1:4].numpy(),
            V=unscale_geometry(batch.geometry[k])[4:7].numpy(),
            R1=batch.R1[k].numpy(),
            R2=augmented.R2[k].numpy(),
        )
        C = homogenize(rotated).C  # FE of the lattice with the new final rotation
        C_aug = matrix_from_c21(augmented.C[k]).numpy()
        assert np.abs(C_aug - C).max() <= 1e-10 * np.abs(C).max()
    for name in ("geometry", "topology", "R1", "stage1_C", "index"):
        assert torch.equal(getattr(augmented, name), getattr(batch, name))


@pytest.mark.parametrize("law", sorted(ROTATION_LAWS))
def test_every_rotation_law_rotates_the_stiffness_by_the_extra_rotation(data, law):
    batch = data.select(slice(0, 8)).to(dtype=torch.float32)
    augmented = augment_rotations(batch, np.random.default_rng(1), law=law)
    assert augmented.C.dtype == torch.float32
    extra = augmented.R2.double() @ batch.R2.double().transpose(1, 2)  # R' = R2' R2^T
    torch.testing.assert_close(
        extra @ extra.transpose(1, 2), torch.eye(3).expand(8, 3, 3).double(), atol=1e-6, rtol=0
    )
    K = bond_matrix(extra)
    expected = K @ matrix_from_c21(batch.C.double()) @ K.transpose(1, 2)
    scale = batch.C.abs().max().item()
    assert (matrix_from_c21(augmented.C.double()) - expected).abs().max() < 1e-5 * scale
    with pytest.raises(MetainvError, match="unknown rotation law"):
        augment_rotations(batch, np.random.default_rng(1), law="euler")
