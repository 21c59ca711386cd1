"""Data sets: sharded, resumable generation and reading (:mod:`metainv.data.shards`)."""

from metainv.data.shards import (
    BACKENDS,
    DatasetError,
    GenerationSpec,
    generate_dataset,
    generation_parameters,
    read_dataset,
    read_manifest,
)

__all__ = [
    "BACKENDS",
    "DatasetError",
    "GenerationSpec",
    "generate_dataset",
    "generation_parameters",
    "read_dataset",
    "read_manifest",
]
