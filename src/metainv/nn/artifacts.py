"""Model artifacts of every family: safetensors weights, a JSON config and a JSON manifest
(never pickles), and a registry of the families' model builders.

Folder layout::

    model.safetensors   state_dict tensors of each network under its name (``forward.*``, ...)
    config.json         ``family``, architecture and training configuration
    manifest.json       data record, seed, code version, metrics and the weights' sha256

:func:`load_artifact` reads a folder and hands its tensors, grouped by network, to the builder
that the folder's family registered with :func:`register_builder` (each family's ``learn``
package does so on import; this module knows no family).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from metainv.errors import MetainvError
from metainv.files import write_bytes_atomic, write_text_atomic

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
MANIFEST = "manifest.json"
#: The name that selects a family's model shipped inside the package.
DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class Artifact:
    """The contents of a model folder: state_dicts by network name, config, manifest."""

    folder: Path
    family: str
    state_dicts: dict[str, dict[str, torch.Tensor]]
    config: dict[str, Any]
    manifest: dict[str, Any]


#: A family's builder: the artifact -> its loaded models (networks in eval mode).
Builder = Callable[[Artifact], Any]
_BUILDERS: dict[str, Builder] = {}


def register_builder(family: str, builder: Builder) -> None:
    """Register the function that turns ``family``'s artifacts into loaded models."""
    _BUILDERS[family] = builder


def registered_families() -> tuple[str, ...]:
    return tuple(sorted(_BUILDERS))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def default_model_folder(family: str) -> Path:
    """Folder of ``family``'s model shipped with metainv."""
    return Path(str(resources.files("metainv") / "models" / family))


def save_models(
    folder: Path,
    networks: Mapping[str, torch.nn.Module],
    config: dict[str, Any],
    manifest: dict[str, Any],
) -> None:
    """Write the networks' state_dicts (under ``name.``), config and manifest into ``folder``.

    ``config`` must name its ``family``; the manifest gets the family, code version, creation
    time and parameter count unless given, and always the weights' sha256."""
    from metainv.data.shards import code_version

    if "family" not in config:
        raise MetainvError("a model config must name its family")
    manifest = {
        "family": config["family"],
        "code_version": code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parameters": sum(p.numel() for n in networks.values() for p in n.parameters()),
        **manifest,
    }
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{name}.{key}": value.detach().contiguous()
        for name, network in networks.items()
        for key, value in network.state_dict().items()
    }
    write_bytes_atomic(folder / WEIGHTS, save(tensors))
    write_text_atomic(folder / CONFIG, json.dumps(config, indent=2, sort_keys=True))
    manifest = {**manifest, "weights_sha256": file_sha256(folder / WEIGHTS)}
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def read_artifact(folder: str | Path | None, family: str) -> Artifact:
    """Read a model folder of ``family`` (its shipped model when ``folder`` is None or
    ``"default"``); checks the files, the family and the weights' sha256 of the manifest."""
    folder = default_model_folder(family) if folder in (None, DEFAULT_MODEL) else Path(folder)
    for name in (WEIGHTS, CONFIG):
        if not (folder / name).exists():
            raise MetainvError(
                f"{folder} is not a metainv {family} model folder (missing {name}); train one "
                f"with `metainv train {family}` or omit --model for the default"
            )
    config = json.loads((folder / CONFIG).read_text())
    found = config.get("family", family)  # early truss models did not name their family
    if found != family:
        raise MetainvError(f"{folder} holds a {found!r} model, not a {family} one")
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    expected = manifest.get("weights_sha256")
    if expected is not None and file_sha256(folder / WEIGHTS) != expected:
        raise MetainvError(f"{folder / WEIGHTS} does not match the sha256 of its manifest")
    state_dicts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(folder / WEIGHTS)).items():
        network, _, name = key.partition(".")
        state_dicts.setdefault(network, {})[name] = value
    return Artifact(folder, family, state_dicts, config, manifest)


def load_artifact(folder: str | Path | None, family: str | None = None) -> Any:
    """Loaded models of a model folder, built by its family's registered builder.

    ``family`` None reads it from the folder's config.json (a folder is then required)."""
    if family is None:
        if folder in (None, DEFAULT_MODEL):
            raise MetainvError("name the family to load its default model")
        config_path = Path(folder) / CONFIG
        if not config_path.exists():
            raise MetainvError(f"{folder} is not a metainv model folder (missing {CONFIG})")
        family = json.loads(config_path.read_text()).get("family")
    if family not in _BUILDERS:
        known = ", ".join(registered_families()) or "none"
        raise MetainvError(
            f"no model builder registered for family {family!r} (registered: {known}); "
            f"import metainv.{family}.learn first"
        )
    return _BUILDERS[family](read_artifact(folder, family))
