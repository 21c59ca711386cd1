"""Atomic file writes: a file under its final name is always complete (the one writer that every
result, mesh, model and manifest goes through).

The data go to a uniquely named temporary file in the same folder (created with the umask's
permissions, like any other output), are flushed to disk, and the temporary file is then renamed
onto the final name with ``os.replace``, which is atomic on POSIX and Windows. An interruption
leaves either the old file or the new one, and at most a ``.NAME.*.tmp`` file beside it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from metainv.errors import MetainvError

#: Nesting depth above which a JSON document is refused (CPython's parser recurses).
MAX_JSON_DEPTH = 200


def temporary_path(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for the temporary file of an atomic write."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (module docstring); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        with open(temporary, "xb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.filename is None or Path(str(error.filename)) == temporary:
            # name the file the user asked for (ENOSPC etc. carry no or the temporary name)
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def prepare_output_folder(
    folder: str | Path, own: Sequence[str] | None = None, force: bool = False
) -> Path:
    """Check and create an output folder before any work; returns it as a :class:`Path`.

    A path that is an existing file, or a folder that cannot be created or written, is refused
    with a one-line :class:`metainv.errors.MetainvError`. With ``own`` (glob patterns of the
    files the command writes, e.g. ``designs.json``, ``candidate_[0-9][0-9].*``) a folder that
    is not empty is refused too, unless ``force``, which removes the files matching ``own``
    (only those: anything else in the folder is kept), so that no earlier result is mixed with
    the new one.
    """
    from metainv.errors import MetainvError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MetainvError(f"--out {folder} is an existing file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MetainvError(
            f"--out {folder}: cannot create the folder ({error.strerror or error})"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MetainvError(f"--out {folder}: the folder is not writable")
    if own is None:
        return folder
    entries = sorted(entry.name for entry in folder.iterdir())
    if entries and not force:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise MetainvError(
            f"--out {folder} is not empty ({len(entries)} entries: {shown}); choose a new "
            "folder or pass --force to replace metainv's files in it"
        )
    for name in entries:
        path = folder / name
        if path.is_file() and any(fnmatch.fnmatchcase(name, pattern) for pattern in own):
            try:
                path.unlink()
            except OSError as error:
                raise MetainvError(
                    f"--out {folder}: cannot remove {name} ({error.strerror or error})"
                ) from None
    return folder


def check_output_file(path: str | Path) -> Path:
    """Check an output file's path before any work: not a folder, and its folder exists (it is
    not created: a mistyped folder is an error) and can be written (one-line
    :class:`metainv.errors.MetainvError` otherwise)."""
    from metainv.errors import MetainvError

    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise MetainvError(f"--out {path} is a folder; give a file name such as part.stl")
    if not folder.exists():
        raise MetainvError(f"--out {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise MetainvError(f"--out {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MetainvError(f"--out {path}: the folder {folder} is not writable")
    return path


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MetainvError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _nesting_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, source: str = "input") -> Any:
    """Parse JSON ``text`` strictly, every failure a one-line :class:`MetainvError` naming
    ``source``: invalid syntax, duplicate keys, nesting deeper than :data:`MAX_JSON_DEPTH`,
    integers too long to convert."""
    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise MetainvError(f"{source}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise MetainvError(f"{source}: invalid JSON ({error.msg} at line {error.lineno})") from None
    except MetainvError as error:
        raise MetainvError(f"{source}: invalid JSON ({error})") from None
    except RecursionError:
        raise MetainvError(f"{source}: JSON nested too deeply") from None
    except ValueError as error:  # e.g. integers beyond the int/str conversion limit
        raise MetainvError(f"{source}: invalid JSON ({str(error).splitlines()[0]})") from None


def read_json(path: str | Path) -> Any:
    """Parse a JSON file (UTF-8, an optional BOM) with :func:`parse_json`'s checks; a
    one-line :class:`MetainvError` naming the file for other encodings or invalid JSON."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MetainvError(
            f"{path}: not UTF-8 text (byte {error.start}); save the file as UTF-8"
        ) from None
    return parse_json(text, str(path))
