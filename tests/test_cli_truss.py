"""``metainv homogenize`` and ``metainv export``: exit codes, JSON output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from metainv.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "designs"
runner = CliRunner()


def write(tmp_path: Path, **changes) -> Path:
    data = json.loads((EXAMPLES / "octet.json").read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "design.json"
    path.write_text(json.dumps(data))
    return path


def test_homogenize_json_output():
    result = runner.invoke(app, ["homogenize", str(EXAMPLES / "octet.json"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"family", "C", "relative_density", "strut_diameter", "nodes", "struts"}
    C = np.array(data["C"])
    assert C.shape == (6, 6)
    np.testing.assert_allclose(C, C.T, atol=1e-12)
    assert np.linalg.eigvalsh(C).min() > 0
    assert data["relative_density"] == pytest.approx(0.05)
    # octet, slender struts: C11 -> rho/6, C12 = C44 -> rho/12 (spec section 4)
    assert C[0, 0] == pytest.approx(0.05 / 6, rel=0.1)
    assert C[3, 3] == pytest.approx(0.05 / 12, rel=0.1)
    assert isinstance(data["nodes"], int) and isinstance(data["struts"], int)
    assert data["strut_diameter"] > 0


def test_homogenize_table_output():
    result = runner.invoke(app, ["homogenize", str(EXAMPLES / "bcc_stretched_rotated.json")])
    assert result.exit_code == 0, result.output
    for word in ("relative density", "strut diameter", "nodes", "struts", "11", "12"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"topology": [{"cell": 8, "tessellation": 1}] * 3}, "cell 8 in topology[0]"),
        ({"V": [1.0, 1.0, 3.0]}, "stretch V[2] = 3.0 is outside [0.5, 2]"),
        ({"R1": [[1, 0.3, 0], [0, 1, 0], [0, 0, 1]]}, "R1 is not a rotation matrix"),
        ({"U": None}, "missing key 'U'"),
        ({"family": None}, "missing key 'family'"),
        ({"family": "foam"}, "unknown family 'foam'"),
        ({"relative_density": 0.5}, "relative_density = 0.5 is outside"),
    ],
)
@pytest.mark.parametrize("command", ["homogenize", "export"])
def test_invalid_designs_exit_2_with_one_line(tmp_path, changes, reason, command):
    path = write(tmp_path, **changes)
    args = [command, str(path)]
    if command == "export":
        args += ["--out", str(tmp_path / "x.stl")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert reason in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "file not found"), ("{not json", "invalid JSON"), ("[1, 2]", "JSON object")],
)
def test_unreadable_files_exit_2(tmp_path, content, reason):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["homogenize", str(path)])
    assert result.exit_code == 2
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_homogenize_material_options(tmp_path):
    args = ["homogenize", str(EXAMPLES / "simple_cubic.json"), "--json"]
    base = json.loads(runner.invoke(app, args).stdout)
    other = runner.invoke(app, [*args, "--poisson-ratio", "0.2", "--youngs-modulus", "2.0"])
    assert other.exit_code == 0, other.output
    # stretching-dominated C11 = rho/3 E_b
    assert json.loads(other.stdout)["C"][0][0] == pytest.approx(2 * base["C"][0][0], rel=1e-6)
    bad = runner.invoke(app, [*args, "--poisson-ratio", "0.7"])
    assert bad.exit_code == 2 and "poisson_ratio" in bad.stderr


def test_export_stl_and_json(tmp_path):
    out = tmp_path / "cell.stl"
    result = runner.invoke(
        app,
        [
            "export",
            str(EXAMPLES / "octet.json"),
            "--out",
            str(out),
            "--cells",
            "1",
            "1",
            "2",
            "--segments",
            "6",
        ],
    )
    assert result.exit_code == 0, result.output
    assert trimesh.load(str(out), file_type="stl").is_watertight

    out = tmp_path / "graph.json"
    result = runner.invoke(app, ["export", str(EXAMPLES / "compound.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["cells"] == [1, 1, 1] and data["design"]["family"] == "truss"

    out = tmp_path / "graph.txt"
    result = runner.invoke(
        app, ["export", str(EXAMPLES / "octet.json"), "--out", str(out), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "struts" in json.loads(out.read_text())


def test_export_unknown_format_exits_2(tmp_path):
    result = runner.invoke(
        app, ["export", str(EXAMPLES / "octet.json"), "--out", str(tmp_path / "cell.obj")]
    )
    assert result.exit_code == 2
    assert "unknown export format" in result.stderr


def test_export_bad_options_exit_2(tmp_path):
    args = ["export", str(EXAMPLES / "octet.json"), "--out", str(tmp_path / "cell.stl")]
    for extra, reason in [
        (["--segments", "2"], "segments must be at least 3"),
        (["--cells", "0", "1", "1"], "cells must"),
    ]:
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2, result.output
        assert reason in result.stderr and "Traceback" not in result.output
    missing_dir = tmp_path / "nope" / "cell.json"
    result = runner.invoke(app, ["export", str(EXAMPLES / "octet.json"), "--out", str(missing_dir)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
