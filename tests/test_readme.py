"""The README's Python API example runs as written (in a scratch folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_api_example() -> str:
    text = README.read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section holds one python example"
    return blocks[0]


def test_python_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_api_example(), "README.md (Python API)", "exec"), {})
    out = capsys.readouterr().out
    assert "FE NMSE" in out and "gyroid sheet" in out
    document = (tmp_path / "designs" / "bone3" / "designs.json").read_text()
    assert '"family": "truss"' in document
    assert (tmp_path / "bone3_best.stl").stat().st_size > 0


@pytest.mark.parametrize("name", ["load_target", "design", "homogenize", "export", "grade"])
def test_the_documented_functions_are_public(name):
    import metainv

    assert name in metainv.__all__ and (getattr(metainv, name).__doc__ or "").strip()
