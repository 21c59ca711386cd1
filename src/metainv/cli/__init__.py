"""The ``metainv`` command line: thin wrappers that map commands onto library functions.

Each sibling module registers its commands on :data:`metainv.cli._app.app` when imported. The
modules are imported lazily (fast ``metainv --help``/``--version``): by the root group when a
command is resolved, or on first access to :data:`app` here (the fully registered app).
"""

from __future__ import annotations

from typing import Any

from metainv.cli._app import load_commands, main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from metainv.cli._app import app

        load_commands()
        return app
    raise AttributeError(f"module 'metainv.cli' has no attribute {name!r}")
