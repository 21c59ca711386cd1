"""The ``metainv`` command line: thin wrappers that map commands onto library functions.

Each sibling module registers its commands on :data:`metainv.cli._app.app` when imported.
"""

from metainv.cli import _data, _demo, _design, _models, _stiffness, _truss  # noqa: F401
from metainv.cli._app import app, main

__all__ = ["app", "main"]
