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


def layout_tree() -> tuple[set[str], set[str]]:
    """(module paths, package paths) named in the README's Layout tree, relative to
    src/metainv (``truss/learn/models.py``, ``truss/learn``)."""
    section = README.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    tree = re.findall(r"```text\n(.*?)```", section, flags=re.S)[0].splitlines()[1:]
    modules, packages, stack = set(), set(), []
    for line in tree:
        depth = (len(line) - len(line.lstrip())) // 2
        words = line.split()
        if words[0].endswith("/"):
            stack = [*stack[: depth - 1], words[0].rstrip("/")]
            packages.add("/".join(stack))
            continue
        parent = stack[: depth - 1]
        for word in words:
            if not word.endswith(".py"):
                break
            modules.add("/".join([*parent, word]))
    return modules, packages


def test_layout_tree_matches_the_code():
    root = Path(__file__).resolve().parents[1] / "src" / "metainv"
    actual = {
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name != "__init__.py" or p.parent == root
    }
    packages = {str(p.parent.relative_to(root)) for p in root.rglob("*/__init__.py")}
    listed_modules, listed_packages = layout_tree()
    assert listed_modules == actual, listed_modules ^ actual
    assert listed_packages == packages, listed_packages ^ packages
