"""CLI: ``metainv stiffness check|surface``, ``metainv demo``, ``metainv --version``.

Exit 0 on success, 2 with one ``error: ...`` line on stderr for any bad input; never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

import metainv
from metainv.cli import app
from metainv.targets import load_target

runner = CliRunner()

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str) -> Result:
    result = runner.invoke(app, [str(arg) for arg in args])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    return result


def assert_one_line_error(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0], lines[0]


def write_matrix(path: Path, matrix: np.ndarray | list) -> Path:
    path.write_text(json.dumps({"C": np.asarray(matrix).tolist()}), encoding="utf-8")
    return path


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"metainv {metainv.__version__}"


# --- stiffness check ---------------------------------------------------------------------------


def test_acceptance_check_bone3_json() -> None:
    result = invoke(
        "stiffness", "check", "bone3", "--unit", "GPa", "--base-modulus", "114GPa", "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"admissible", "symmetric", "positive_definite", "min_eigenvalue"} <= set(report)
    assert report["admissible"] is True
    assert report["symmetric"] is True and report["positive_definite"] is True
    assert report["min_eigenvalue"] == pytest.approx(np.linalg.eigvalsh(load_target("bone3"))[0])
    assert result.stderr == ""


def test_acceptance_line_in_a_real_process() -> None:
    """The console script itself, as a user runs it (one subprocess: imports cost seconds)."""
    script = Path(sys.executable).with_name("metainv")
    if not script.exists():
        pytest.skip("metainv console script not installed next to the interpreter")
    args = ["stiffness", "check", "bone3", "--unit", "GPa", "--base-modulus", "114GPa", "--json"]
    completed = subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["admissible"] is True


def test_check_bone3_with_recorded_unit() -> None:
    result = invoke("stiffness", "check", "bone3", "--base-modulus", "114GPa", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["admissible"] is True


def test_check_prints_a_table() -> None:
    result = invoke("stiffness", "check", "bone3")
    assert result.exit_code == 0
    for word in ("positive definite", "strongly elliptic", "admissible", "Ti-6Al-4V"):
        assert word in result.stdout


def test_check_voigt_bound_options() -> None:
    inside = invoke("stiffness", "check", "bone3", "--max-density", "0.05", "--json")
    assert inside.exit_code == 0
    assert json.loads(inside.stdout)["within_voigt_bound"] is True
    outside = invoke(
        "stiffness", "check", "bone3", "--max-density", "0.05", "--solid-modulus", "10GPa"
    )
    assert_one_line_error(outside, "exceeds the Voigt bound rho_max*C_solid (rho_max=0.05)")


def test_check_non_symmetric(tmp_path: Path) -> None:
    C = np.eye(6)
    C[0, 3], C[3, 0] = 0.1, 0.2
    result = invoke("stiffness", "check", write_matrix(tmp_path / "c.json", C), "--json")
    assert_one_line_error(result, "not admissible: not symmetric: C14 != C41 (0.1 vs 0.2)")
    assert json.loads(result.stdout)["symmetric"] is False  # the report still comes out


def test_check_not_positive_definite(tmp_path: Path) -> None:
    C = np.eye(6)
    C[1, 1] = -0.5
    result = invoke("stiffness", "check", write_matrix(tmp_path / "c.json", C))
    assert_one_line_error(result, "not positive definite: smallest eigenvalue -0.5 <= 0")


def test_check_nan_entry(tmp_path: Path) -> None:
    C = np.eye(6).tolist()
    C[1][2] = float("nan")
    result = invoke("stiffness", "check", write_matrix(tmp_path / "c.json", C), "--json")
    assert_one_line_error(result, "C23 is NaN")
    assert json.loads(result.stdout)["finite"] is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1 2 3 4 5 6\n" * 5, "expected 36 numbers in 6 rows of 6, got 5 rows"),
        ("1 2 3 4 5 6\n" * 5 + "1 2 x 4 5 6\n", "row 6, column 3: 'x' is not a number"),
        ('{"C": [[1, 2]', "invalid JSON in"),
        ('{"D": 1}', "unknown key 'D'"),
        ('{"C21": [1, 2, 3]}', "expected 21 numbers in 'C21', got 3"),
    ],
)
def test_check_bad_files(tmp_path: Path, content: str, message: str) -> None:
    suffix = ".json" if content.startswith("{") else ".txt"
    path = tmp_path / f"bad{suffix}"
    path.write_text(content, encoding="utf-8")
    assert_one_line_error(invoke("stiffness", "check", path), message)


def test_check_missing_file(tmp_path: Path) -> None:
    result = invoke("stiffness", "check", tmp_path / "missing.csv")
    assert_one_line_error(result, "file not found:")


def test_check_unknown_target() -> None:
    assert_one_line_error(invoke("stiffness", "check", "bone9"), "unknown target 'bone9'")


def test_check_unknown_unit() -> None:
    result = invoke("stiffness", "check", "bone3", "--unit", "GPA2")
    assert_one_line_error(
        result, "unknown unit 'GPA2'; expected one of Pa, kPa, MPa, GPa, normalized"
    )


def test_check_physical_unit_without_base_modulus(tmp_path: Path) -> None:
    path = write_matrix(tmp_path / "c.json", np.eye(6))
    result = invoke("stiffness", "check", path, "--unit", "GPa")
    assert_one_line_error(result, "pass --base-modulus")


def test_check_base_modulus_for_normalized_target(tmp_path: Path) -> None:
    path = write_matrix(tmp_path / "c.json", np.eye(6))
    result = invoke("stiffness", "check", path, "--base-modulus", "114GPa")
    assert_one_line_error(result, "the target is already normalized")


def test_check_invalid_max_density() -> None:
    result = invoke("stiffness", "check", "bone3", "--max-density", "2")
    assert_one_line_error(result, "max relative density must lie in (0, 1], got 2")


# --- stiffness surface and demo ----------------------------------------------------------------


def test_surface_with_compare(tmp_path: Path) -> None:
    other = write_matrix(tmp_path / "design.json", load_target("bone3") * 1.1)
    out = tmp_path / "figures" / "surface.png"
    result = invoke("stiffness", "surface", "bone3", "--compare", other, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert str(out) in result.stdout


def test_surface_of_inadmissible_stiffness(tmp_path: Path) -> None:
    C = np.eye(6)
    C[2, 2] = -1.0
    path = write_matrix(tmp_path / "c.json", C)
    result = invoke("stiffness", "surface", path, "--out", tmp_path / "s.png")
    assert_one_line_error(result, "not positive definite")


def test_surface_unknown_format(tmp_path: Path) -> None:
    result = invoke("stiffness", "surface", "bone3", "--out", tmp_path / "s.xyz")
    assert_one_line_error(result, "unknown image format .xyz")


def test_demo_designs_for_bone3(tmp_path: Path) -> None:
    """The demo (small settings) checks bone3, designs with the shipped model, writes files."""
    result = invoke("demo", "--out", tmp_path / "demo", "--samples", "200", "--top", "1")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "bone3_surface.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (tmp_path / "demo" / "candidate_01_surface.png").read_bytes()[:8] == PNG_SIGNATURE
    document = json.loads((tmp_path / "demo" / "designs.json").read_text())
    assert len(document["candidates"]) == 1
    assert document["candidates"][0]["nmse_fe"] < 0.1
    assert "admissible" in result.stdout
