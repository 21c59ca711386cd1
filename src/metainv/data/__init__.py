"""Data sets: sharded, resumable generation and reading (:mod:`metainv.data.shards`) and the
nearest-neighbour baseline (:mod:`metainv.data.lookup`). Each family's ``learn`` package turns
data sets into training tensors."""

from metainv.data.lookup import (
    LookupResult,
    dataset_stiffness_chunks,
    nearest_in_dataset,
    nearest_stiffness,
)
from metainv.data.shards import (
    BACKENDS,
    DatasetError,
    GenerationSpec,
    complete_manifest,
    generate_dataset,
    generation_parameters,
    iter_shards,
    read_dataset,
    read_manifest,
)

__all__ = [
    "BACKENDS",
    "DatasetError",
    "GenerationSpec",
    "LookupResult",
    "complete_manifest",
    "dataset_stiffness_chunks",
    "generate_dataset",
    "generation_parameters",
    "iter_shards",
    "nearest_in_dataset",
    "nearest_stiffness",
    "read_dataset",
    "read_manifest",
]
