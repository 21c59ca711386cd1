"""Atomic file writes: a file under its final name is always complete (the one writer that every
result, mesh, model and manifest goes through).

The data go to a uniquely named temporary file in the same folder (created with the umask's
permissions, like any other output), are flushed to disk, and the temporary file is then renamed
onto the final name with ``os.replace``, which is atomic on POSIX and Windows. An interruption
leaves either the old file or the new one, and at most a ``.NAME.*.tmp`` file beside it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))
