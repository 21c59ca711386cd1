"""Turn errors into one-line messages on stderr and exit code 2 (never a traceback).

:func:`describe` maps every foreseeable exception class to one line; :func:`handle_errors`
(on each command) and the root group (for anything raised outside a command) use it. With
``metainv --debug ...`` or ``METAINV_DEBUG=1`` exceptions propagate with their full traceback.
"""

from __future__ import annotations

import errno
import functools
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from metainv.errors import MetainvError

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


def one_line(message: str) -> str:
    """``message`` with its lines joined (an error is one line on stderr)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _oserror(error: OSError) -> str:
    name = error.filename if error.filename is not None else "(file not named)"
    if error.errno == errno.ENOSPC:
        return f"no space left on the device while writing {name}; free space and rerun"
    if error.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {name}"
    if isinstance(error, FileNotFoundError):
        return f"file not found: {name}"
    if isinstance(error, IsADirectoryError):
        return f"{name} is a folder, expected a file"
    if isinstance(error, NotADirectoryError):
        return f"{name}: a part of the path is a file, expected a folder"
    if isinstance(error, PermissionError):
        return f"permission denied: {name}"
    reason = error.strerror or str(error) or type(error).__name__
    return f"cannot read or write {name}: {reason}"


def describe(error: BaseException) -> str:
    """One line describing ``error`` for the user (the message after ``error:``)."""
    kind = type(error).__name__
    module = type(error).__module__ or ""
    if isinstance(error, MetainvError):
        return one_line(str(error))
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON ({error.msg} at line {error.lineno})"
    if isinstance(error, UnicodeDecodeError):
        return (
            f"input is not UTF-8 text (byte 0x{error.object[error.start]:02x} at position "
            f"{error.start}); save the file as UTF-8"
        )
    if isinstance(error, UnicodeError):
        return f"text encoding error: {one_line(str(error))}"
    if isinstance(error, OSError):
        return _oserror(error)
    if isinstance(error, RecursionError):
        return "input nested too deeply (recursion limit reached)"
    if isinstance(error, MemoryError):
        return (
            "out of memory; lower --resolution/--nel/--segments/--samples "
            "(see --max-memory for the estimate)"
        )
    if kind == "SafetensorError" or module.startswith("safetensors"):
        return f"corrupt or truncated weights file (safetensors: {one_line(str(error))})"
    if kind == "UnpicklingError":
        return f"corrupt or foreign checkpoint ({one_line(str(error))})"
    if isinstance(error, OverflowError):
        return f"number out of range ({one_line(str(error))})"
    if isinstance(error, ValueError) and "digits" in str(error) and "int" in str(error):
        return "a number has too many digits"
    text = one_line(str(error))
    detail = f"{kind}: {text}" if text else kind
    return f"unexpected {detail} (rerun with --debug for the traceback)"


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
