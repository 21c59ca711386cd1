"""Exception types of metainv. Every user-facing error is a :class:`MetainvError`.

Messages are one line: what is wrong and what is expected. :func:`describe` turns any exception
into that one line (the CLI prints it after ``error:``, the web app shows it on the page).
"""

from __future__ import annotations

import errno
import json


class MetainvError(ValueError):
    """Base class: bad input or an impossible request, with a one-line explanation."""


class TargetError(MetainvError):
    """A stiffness target could not be read, parsed or interpreted."""


class DesignError(MetainvError):
    """A design (JSON or parameters) is invalid; the message names the parameter at fault."""


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
