"""Nearest-neighbour lookup (SI Sec. 3.G): chunked argmin of the NMSE against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from metainv.data import dataset_stiffness_chunks, nearest_in_dataset, nearest_stiffness
from metainv.errors import MetainvError
from metainv.tensors import nmse


def random_spd(n: int, rng: np.random.Generator) -> np.ndarray:
    A = rng.standard_normal((n, 6, 6))
    return A @ np.swapaxes(A, 1, 2) / 6 + 0.1 * np.eye(6)


@pytest.mark.parametrize("chunk_size", [1, 37, 10_000])
def test_chunked_lookup_equals_brute_force(chunk_size):
    rng = np.random.default_rng(0)
    library, targets = random_spd(1000, rng), random_spd(9, rng)
    result = nearest_stiffness(targets, library, chunk_size=chunk_size)
    brute = nmse(targets[:, None], library[None])  # (T, N), spec definition
    np.testing.assert_array_equal(result.index, brute.argmin(1))
    np.testing.assert_allclose(result.nmse, brute.min(1), rtol=1e-12)
    index, error = result  # unpacks like a tuple
    assert index is result.index and error is result.nmse


def test_a_library_member_is_found_exactly_and_ties_go_to_the_first_row():
    rng = np.random.default_rng(1)
    library = random_spd(50, rng)
    library[40] = library[7]
    result = nearest_stiffness(library[[7, 12]], library, chunk_size=16)
    np.testing.assert_array_equal(result.index, [7, 12])
    assert np.all(result.nmse == 0)
    single = nearest_stiffness(library[12], library)
    assert single.index.shape == (1,) and single.index[0] == 12


def test_lookup_streams_a_data_set_shard_by_shard(truss_dataset):
    library = np.concatenate(list(dataset_stiffness_chunks(truss_dataset)))
    assert library.shape == (100, 6, 6)
    rng = np.random.default_rng(2)
    targets = library[[3, 55, 99]] * (1 + 1e-3 * rng.standard_normal((3, 6, 6)))
    streamed = nearest_in_dataset(targets, truss_dataset)
    in_memory = nearest_stiffness(targets, library)
    np.testing.assert_array_equal(streamed.index, in_memory.index)
    np.testing.assert_array_equal(streamed.index, [3, 55, 99])
    np.testing.assert_allclose(streamed.nmse, nmse(targets, library[[3, 55, 99]]), rtol=1e-12)


def test_bad_targets_are_one_line_errors():
    library = random_spd(4, np.random.default_rng(3))
    with pytest.raises(MetainvError, match="target 1 is all zeros"):
        nearest_stiffness(np.stack([library[0], np.zeros((6, 6))]), library)
    with pytest.raises(MetainvError, match="shape"):
        nearest_stiffness(np.zeros((2, 21)), library)
    with pytest.raises(MetainvError, match="empty"):
        nearest_stiffness(library[:1], np.zeros((0, 6, 6)))
