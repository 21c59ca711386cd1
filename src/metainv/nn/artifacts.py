"""Model artifacts: safetensors weights, a JSON config and a JSON manifest (never pickles).

Folder layout::

    model.safetensors   forward.* and inverse.* state_dict tensors (weights and scaler buffers)
    config.json         architecture and training configuration
    manifest.json       data manifest checksum, seeds, code version, metrics
    library.safetensors optional: the rotation-aware design library (:mod:`metainv.nn.library`)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from metainv.errors import MetainvError
from metainv.nn.library import LIBRARY, DesignLibrary, load_library
from metainv.nn.models import ForwardConfig, ForwardModel, InverseConfig, InverseModel

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
MANIFEST = "manifest.json"
#: The default model shipped inside the package.
DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class TrussModels:
    """A loaded forward/inverse pair with its config, manifest and (optional) design library."""

    forward: ForwardModel
    inverse: InverseModel
    config: dict[str, Any]
    manifest: dict[str, Any]
    folder: Path
    library: DesignLibrary | None = None


def save_models(
    folder: Path,
    forward: ForwardModel,
    inverse: InverseModel,
    config: dict[str, Any],
    manifest: dict[str, Any],
) -> None:
    """Write weights (float32), config and manifest into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"forward.{k}": v for k, v in forward.state_dict().items()}
    tensors |= {f"inverse.{k}": v for k, v in inverse.state_dict().items()}
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(folder / WEIGHTS))
    (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    manifest = {**manifest, "weights_sha256": file_sha256(folder / WEIGHTS)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def default_model_folder() -> Path:
    """Folder of the model shipped with metainv."""
    return Path(str(resources.files("metainv") / "models" / "truss"))


def load_models(folder: str | Path | None = None) -> TrussModels:
    """Load a model folder (the shipped default when ``folder`` is None)."""
    folder = default_model_folder() if folder in (None, DEFAULT_MODEL) else Path(folder)
    for name in (WEIGHTS, CONFIG):
        if not (folder / name).exists():
            raise MetainvError(
                f"{folder} is not a metainv model folder (missing {name}); "
                "train one with `metainv train truss` or omit --model for the default"
            )
    config = json.loads((folder / CONFIG).read_text())
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    tensors = load_file(str(folder / WEIGHTS))
    # models saved before the symmetry options existed used neither
    forward_options = {"canonical_stretch": False, **_tuples(config["forward"])}
    inverse_options = {"canonical_frame": False, **_tuples(config["inverse"])}
    forward = ForwardModel(ForwardConfig(**forward_options))
    inverse = InverseModel(InverseConfig(**inverse_options))
    forward.load_state_dict(_prefixed(tensors, "forward."))
    inverse.load_state_dict(_prefixed(tensors, "inverse."))
    forward.eval()
    inverse.eval()
    library = load_library(folder / LIBRARY) if (folder / LIBRARY).exists() else None
    return TrussModels(forward, inverse, config, manifest, folder, library)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _tuples(section: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}
