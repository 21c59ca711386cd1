"""The one atomic writer: complete files under their final names, the umask's permissions, no
temporary file left behind, the old file kept when a write fails."""

from __future__ import annotations

import os
import stat

import pytest

from metainv.files import write_bytes_atomic, write_text_atomic


def test_writes_whole_files_with_ordinary_permissions(tmp_path):
    path = write_text_atomic(tmp_path / "sub" / "designs.json", '{"a": 1}')
    assert path.read_text() == '{"a": 1}'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    write_bytes_atomic(path, b"[]")
    assert path.read_bytes() == b"[]"
    assert [p.name for p in path.parent.iterdir()] == ["designs.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_text_atomic(tmp_path / "result.json", "old")

    def broken(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
