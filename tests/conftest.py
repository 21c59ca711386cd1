"""Shared fixtures: one small truss data set, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from metainv.data import GenerationSpec, generate_dataset, generation_parameters


@pytest.fixture(scope="session")
def truss_spec() -> GenerationSpec:
    """100 rows in 10 shards of 10, seed 7 (small: FE labels cost tens of ms per row)."""
    return GenerationSpec("truss", 100, 10, 7, generation_parameters("truss"))


@pytest.fixture(scope="session")
def truss_dataset(tmp_path_factory: pytest.TempPathFactory, truss_spec: GenerationSpec) -> Path:
    """Folder of an uninterrupted, single-process generation of ``truss_spec`` (read only)."""
    folder = tmp_path_factory.mktemp("truss-reference")
    generate_dataset(truss_spec, folder, workers=1)
    return folder


@pytest.fixture(scope="session")
def long_truss_spec() -> GenerationSpec:
    """3000 rows in 30 shards of 100, seed 11: long enough (several seconds after the first
    recorded shard) that an interrupt sent then arrives before a fast machine finishes the run."""
    return GenerationSpec("truss", 3000, 100, 11, generation_parameters("truss"))


@pytest.fixture(scope="session")
def long_truss_dataset(
    tmp_path_factory: pytest.TempPathFactory, long_truss_spec: GenerationSpec
) -> Path:
    """Uninterrupted single-process generation of ``long_truss_spec`` (read only)."""
    folder = tmp_path_factory.mktemp("truss-long-reference")
    generate_dataset(long_truss_spec, folder, workers=1)
    return folder
