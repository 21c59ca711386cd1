"""The ``metainv`` command line: thin wrappers that map commands onto library functions.

Each sibling module registers its commands on :data:`metainv.cli._app.app` when imported.
"""

from metainv.cli import (  # noqa: F401  (imports register commands)
    _data,
    _demo,
    _design,
    _designs,
    _grade,
    _laws,
    _models,
    _spinodoid,
    _stiffness,
    _topopt,
)
from metainv.cli._app import app, main

__all__ = ["app", "main"]
