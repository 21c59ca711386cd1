"""CLI commands (registered on import)."""

from metainv.cli._app import app  # noqa: F401
