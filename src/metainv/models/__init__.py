"""The trained models shipped with metainv (one folder per family: safetensors weights,
config.json, manifest.json), loaded by the families' learning packages."""
