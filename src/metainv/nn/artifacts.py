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
from metainv.files import read_json, write_bytes_atomic, write_text_atomic

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


def _read_object(path: Path, what: str) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise MetainvError(f"{path}: the {what} must be a JSON object, got {type(data).__name__}")
    return data


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in _HEX for c in value.lower())


_HEX = frozenset("0123456789abcdef")


def check_file_sha256(path: Path, expected: Any, what: str) -> None:
    """Refuse ``path`` unless its sha256 is ``expected`` (a 64-digit hex string)."""
    if not _is_sha256(expected):
        raise MetainvError(f"{what}: no valid sha256 for {path.name} (got {expected!r})")
    if file_sha256(path) != str(expected).lower():
        raise MetainvError(
            f"{path} does not match the sha256 of its manifest (modified or corrupt); "
            f"retrain the model or restore the file"
        )


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        tensors = load_file(str(path))
    except Exception as error:  # safetensors' SafetensorError, OSError, ...
        reason = " ".join(str(error).split()) or type(error).__name__
        raise MetainvError(f"{path} is corrupt or truncated ({reason})") from None
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise MetainvError(f"{path}: tensor {key!r} holds NaN or infinite values")
    return tensors


def read_artifact(folder: str | Path | None, family: str) -> Artifact:
    """Read a model folder of ``family`` (its shipped model when ``folder`` is None or
    ``"default"``). Checked before anything is used, each failure a one-line
    :class:`MetainvError`: the files exist, config and manifest are JSON objects of ``family``,
    the weights match the manifest's ``weights_sha256``, load as safetensors and are finite."""
    folder = default_model_folder(family) if folder in (None, DEFAULT_MODEL) else Path(folder)
    if not folder.is_dir():
        raise MetainvError(f"model folder not found: {folder}")
    for name in (WEIGHTS, CONFIG, MANIFEST):
        if not (folder / name).is_file():
            raise MetainvError(
                f"{folder} is not a metainv {family} model folder (missing {name}); train one "
                f"with `metainv train {family}` or omit --model for the default"
            )
    config = _read_object(folder / CONFIG, "model config")
    found = config.get("family", family)  # early truss models did not name their family
    if found != family:
        raise MetainvError(f"{folder} holds a {found!r} model, not a {family} one")
    manifest = _read_object(folder / MANIFEST, "model manifest")
    if manifest.get("family", family) != family:
        raise MetainvError(
            f"{folder}: the manifest names family {manifest.get('family')!r}, the config {family!r}"
        )
    check_file_sha256(folder / WEIGHTS, manifest.get("weights_sha256"), f"{folder / MANIFEST}")
    state_dicts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in _load_tensors(folder / WEIGHTS).items():
        network, _, name = key.partition(".")
        state_dicts.setdefault(network, {})[name] = value
    return Artifact(folder, family, state_dicts, config, manifest)


def _mismatch(error: BaseException) -> str:
    """The first informative line of a model-building error (size mismatch, missing key)."""
    if isinstance(error, KeyError):
        return f"missing entry {error.args[0]!r}" if error.args else "a missing entry"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines if "size mismatch" in line), None)
    detail = detail or next((line for line in lines if "Missing key" in line), None)
    detail = detail or next((line for line in lines if "Unexpected key" in line), None)
    text = detail or (lines[0] if lines else type(error).__name__)
    return text if len(text) <= 200 else text[:197] + "..."


def load_artifact(folder: str | Path | None, family: str | None = None) -> Any:
    """Loaded models of a model folder, built by its family's registered builder.

    ``family`` None reads it from the folder's config.json (a folder is then required)."""
    if family is None:
        if folder in (None, DEFAULT_MODEL):
            raise MetainvError("name the family to load its default model")
        config_path = Path(folder) / CONFIG
        if not config_path.exists():
            raise MetainvError(f"{folder} is not a metainv model folder (missing {CONFIG})")
        config = _read_object(config_path, "model config")
        family = config.get("family")
    if family not in _BUILDERS:
        known = ", ".join(registered_families()) or "none"
        raise MetainvError(
            f"no model builder registered for family {family!r} (registered: {known}); "
            f"import metainv.{family}.learn first"
        )
    artifact = read_artifact(folder, family)
    try:
        return _BUILDERS[family](artifact)
    except MetainvError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise MetainvError(
            f"{artifact.folder}: the weights do not fit the architecture of its config.json "
            f"({_mismatch(error)})"
        ) from None
