"""Turn errors into one-line messages on stderr and exit code 2 (never a traceback).

:func:`describe` maps every foreseeable exception class to one line; :func:`handle_errors`
(on each command) and the root group (for anything raised outside a command) use it. With
``metainv --debug ...`` or ``METAINV_DEBUG=1`` exceptions propagate with their full traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from metainv.errors import describe, one_line

__all__ = ["EXIT_BAD_INPUT", "describe", "fail", "handle_errors", "one_line", "set_debug"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2
DEBUG_ENV = "METAINV_DEBUG"
_debug = False


def set_debug(value: bool) -> None:
    """Turn the full-traceback mode on or off (the ``--debug`` option)."""
    global _debug
    _debug = bool(value)


def debug_enabled() -> bool:
    """``--debug`` given or ``METAINV_DEBUG`` set to a true value."""
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def fail(message: str) -> typer.Exit:
    """Write ``error: message`` to stderr and return the exit to raise (code 2)."""
    typer.echo(f"error: {one_line(message)}", err=True)
    return typer.Exit(code=EXIT_BAD_INPUT)


def handle_errors(func: F) -> F:
    """Decorator for CLI commands: every error -> one line on stderr, exit 2 (full traceback
    with ``--debug``/``METAINV_DEBUG=1``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            if debug_enabled():
                raise
            from typer import _click

            if isinstance(error, _click.exceptions.ClickException):
                raise
            raise fail(describe(error)) from None

    return wrapper  # type: ignore[return-value]
