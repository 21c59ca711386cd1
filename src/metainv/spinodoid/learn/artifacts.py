"""Spinodoid model folders: the f-NN / i-NN pair in the layout of :mod:`metainv.nn.artifacts`
(``forward.*``, ``inverse.*`` tensors incl. scaler buffers, config.json, manifest.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metainv.nn.artifacts import (
    Artifact,
    default_model_folder,
    load_artifact,
    register_builder,
    save_models,
)
from metainv.spinodoid.learn.nets import (
    FAMILY,
    SpinodoidForward,
    SpinodoidInverse,
    SpinodoidModels,
    SpinodoidNetConfig,
)


def build_spinodoid_models(artifact: Artifact) -> SpinodoidModels:
    """The registered builder: networks from an artifact's config and state_dicts."""
    net = SpinodoidNetConfig.from_dict(artifact.config["net"])
    forward, inverse = SpinodoidForward(net), SpinodoidInverse(net)
    forward.load_state_dict(artifact.state_dicts["forward"])
    inverse.load_state_dict(artifact.state_dicts["inverse"])
    forward.eval()
    inverse.eval()
    return SpinodoidModels(forward, inverse, artifact.config, artifact.manifest, artifact.folder)


register_builder(FAMILY, build_spinodoid_models)


def load_spinodoid_models(folder: str | Path | None = None) -> SpinodoidModels:
    """Load a spinodoid model folder (the shipped default when ``folder`` is None)."""
    return load_artifact(folder, FAMILY)


def save_spinodoid_models(
    folder: Path,
    forward: SpinodoidForward,
    inverse: SpinodoidInverse,
    config: dict[str, Any],
    manifest: dict[str, Any],
) -> None:
    """Weights (safetensors), config and manifest of a trained pair."""
    save_models(folder, {"forward": forward, "inverse": inverse}, config, manifest)


def spinodoid_model_folder() -> Path:
    """Folder of the spinodoid model shipped with metainv."""
    return default_model_folder(FAMILY)
