"""Turn library errors into one-line messages on stderr and exit code 2 (never a traceback)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from metainv.errors import MetainvError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2


def fail(message: str) -> typer.Exit:
    """Write ``error: message`` to stderr and return the exit to raise (code 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=EXIT_BAD_INPUT)


def handle_errors(func: F) -> F:
    """Decorator for CLI commands: known input errors -> one line on stderr, exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MetainvError as error:
            raise fail(str(error)) from None
        except FileNotFoundError as error:
            raise fail(f"file not found: {error.filename}") from None
        except json.JSONDecodeError as error:
            raise fail(f"invalid JSON ({error.msg} at line {error.lineno})") from None
        except OSError as error:
            raise fail(f"cannot read or write {error.filename or ''}: {error.strerror}") from None

    return wrapper  # type: ignore[return-value]
