"""Truss model folders: the forward/inverse pair of :mod:`metainv.nn.artifacts` (``forward.*``,
``inverse.*`` tensors, config.json, manifest.json) plus, optionally, the rotation-aware design
library ``library.safetensors`` (:mod:`metainv.truss.learn.library`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metainv.nn.artifacts import (
    MANIFEST,
    Artifact,
    check_file_sha256,
    load_artifact,
    register_builder,
)
from metainv.nn.train import tuples
from metainv.truss.learn.library import LIBRARY, DesignLibrary, load_library
from metainv.truss.learn.models import ForwardConfig, ForwardModel, InverseConfig, InverseModel

FAMILY = "truss"


@dataclass(frozen=True)
class TrussModels:
    """A loaded forward/inverse pair with its config, manifest and (optional) design library."""

    forward: ForwardModel
    inverse: InverseModel
    config: dict[str, Any]
    manifest: dict[str, Any]
    folder: Path
    library: DesignLibrary | None = None


def build_truss_models(artifact: Artifact) -> TrussModels:
    """The registered builder: networks from an artifact's config and state_dicts."""
    config = artifact.config
    # models saved before the symmetry options existed used neither
    forward_options = {"canonical_stretch": False, **tuples(config["forward"])}
    inverse_options = {"canonical_frame": False, **tuples(config["inverse"])}
    forward = ForwardModel(ForwardConfig(**forward_options))
    inverse = InverseModel(InverseConfig(**inverse_options))
    forward.load_state_dict(artifact.state_dicts["forward"])
    inverse.load_state_dict(artifact.state_dicts["inverse"])
    forward.eval()
    inverse.eval()
    path = artifact.folder / LIBRARY
    library = None
    if path.exists():
        record = artifact.manifest.get("library")
        if isinstance(record, dict) and "sha256" in record:
            check_file_sha256(path, record["sha256"], str(artifact.folder / MANIFEST))
        library = load_library(path)
    return TrussModels(forward, inverse, config, artifact.manifest, artifact.folder, library)


register_builder(FAMILY, build_truss_models)


def load_models(folder: str | Path | None = None) -> TrussModels:
    """Load a truss model folder (the shipped default when ``folder`` is None)."""
    return load_artifact(folder, FAMILY)
