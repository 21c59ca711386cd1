"""Spinodoid model folders: the f-NN / i-NN pair in the layout of :mod:`metainv.nn.artifacts`
(``forward.*``, ``inverse.*`` tensors incl. scaler buffers, config.json, manifest.json)."""

from __future__ import annotations

from pathlib import Path

from metainv.nn.artifacts import (
    Artifact,
    load_artifact,
    register_builder,
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
