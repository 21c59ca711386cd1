"""``metainv design`` (and export, grade, topopt) hardened (issue 15): results never lost or
mixed, batch files read row by row, targets out of scale refused with the nearest scale and a
unit hint, options that do what they say. Every case at the CLI: exit code, one line, no
traceback, files as documented in the README."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from metainv.cli import app
from metainv.targets import load_target
from metainv.tensors import C21_NAMES, c21_from_matrix, isotropic_stiffness
from metainv.truss.design import TrussDesign
from metainv.truss.learn.inverse import distinct_designs

runner = CliRunner()
FAST = ["--samples", "200", "--top", "2", "--no-verify", "--library-neighbours", "0"]
BATCH = ["--samples", "1", "--no-verify"]
OCTET = Path(__file__).resolve().parents[1] / "examples" / "designs" / "octet.json"


def one_line_error(result: Result, *parts: str) -> str:
    """Exit 2, a single ``error:`` line on stderr containing ``parts``, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_compute(monkeypatch):
    """Any model load or FE run fails the test: the check must come before the work."""

    def refuse(*args, **kwargs):
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr("metainv.truss.learn.artifacts.load_models", refuse)
    monkeypatch.setattr("metainv.truss.homogenize.homogenize", refuse)


def bone3_row() -> np.ndarray:
    return c21_from_matrix(load_target("bone3", unit="GPa", base_modulus="114GPa"))


def batch_file(tmp_path: Path, text: str, name: str = "targets.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def csv_row(values) -> str:
    return ",".join(repr(float(v)) for v in values)


# -- 1. result safety ------------------------------------------------------------------------


def test_out_that_is_a_file_is_refused_before_any_compute(tmp_path, no_compute):
    existing = tmp_path / "result.txt"
    existing.write_text("keep me")
    one_line_error(runner.invoke(app, ["design", "bone3", "--out", str(existing)]), "existing file")
    assert existing.read_text() == "keep me"


def test_out_that_cannot_be_created_is_refused_before_any_compute(tmp_path, no_compute):
    (tmp_path / "plain").write_text("")
    result = runner.invoke(app, ["design", "bone3", "--out", str(tmp_path / "plain" / "sub")])
    one_line_error(result, "cannot create the folder")


def test_non_empty_out_is_refused_and_force_clears_only_our_files(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    for name in ("designs.json", "candidate_03.stl", "candidate_03_surface.png", "notes.txt"):
        (out / name).write_text("old")
    one_line_error(runner.invoke(app, ["design", "bone3", *FAST, "--out", str(out)]), "--force")
    assert (out / "candidate_03.stl").read_text() == "old"
    result = runner.invoke(app, ["design", "bone3", *FAST, "--force", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "candidate_01.stl",
        "candidate_01_surface.png",
        "candidate_02.stl",
        "candidate_02_surface.png",
        "designs.json",
        "notes.txt",
    ]
    assert (out / "notes.txt").read_text() == "old"


def test_a_failing_stl_is_recorded_as_stl_error_and_the_rest_is_kept(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("metainv.truss.export.export_design", full_disk)
    out = tmp_path / "d"
    result = runner.invoke(app, ["design", "bone3", *FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr and "No space left" in result.stderr
    assert "Traceback" not in result.output
    document = json.loads((out / "designs.json").read_text())
    for rank, entry in enumerate(document["candidates"], start=1):
        assert entry["stl_error"].startswith("OSError") and "stl" not in entry
        assert entry["surface_png"] == f"candidate_{rank:02d}_surface.png"
        assert not (out / f"candidate_{rank:02d}.stl").exists()
        assert (out / entry["surface_png"]).stat().st_size > 0


def test_export_grade_and_topopt_check_out_first(tmp_path):
    existing = tmp_path / "file.txt"
    existing.write_text("")
    one_line_error(runner.invoke(app, ["export", str(OCTET), "--out", str(tmp_path)]), "folder")
    blocked = str(existing / "x.stl")
    one_line_error(runner.invoke(app, ["export", str(OCTET), "--out", blocked]), "not a folder")
    missing = str(tmp_path / "nope" / "x.stl")
    one_line_error(runner.invoke(app, ["export", str(OCTET), "--out", missing]), "does not exist")
    grade = ["grade", "--control", "0,0,0", str(OCTET), "--box", "2", "1", "1"]
    one_line_error(runner.invoke(app, [*grade, "--out", str(existing)]), "existing file")
    topopt = ["topopt", "--nel", "4", "2", "2", "--out", str(existing)]
    one_line_error(runner.invoke(app, topopt), "existing file")


# -- 2. batch targets row by row -------------------------------------------------------------


def test_bad_rows_are_skipped_with_their_line_and_a_status_column(tmp_path):
    good = bone3_row()
    solid = c21_from_matrix(isotropic_stiffness(1.0, 0.3))
    lines = [
        ",".join(C21_NAMES),  # line 1: header
        csv_row(good),  # 2
        csv_row(np.full(21, np.nan)),  # 3
        csv_row(np.zeros(21)),  # 4
        csv_row(-good),  # 5: negative definite
        csv_row(solid),  # 6: 10x above the Voigt bound of rho <= 0.1
        csv_row(good[:20]),  # 7: 20 columns
        csv_row(good).replace(repr(float(good[3])), "abc", 1),  # 8: not a number
        csv_row(0.9 * good),  # 9
    ]
    target = batch_file(tmp_path, "\n".join(lines) + "\n", bom=True)
    out = tmp_path / "batch"
    result = runner.invoke(app, ["design", str(target), *BATCH, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for line in (3, 4, 5, 6, 7, 8):
        assert f"line {line}: " in result.stderr, result.stderr
    assert "line 2:" not in result.stderr and "line 9:" not in result.stderr
    assert "expected 21 numbers (C11..C66), got 20" in result.stderr
    assert "'abc' is not a number (column C14)" in result.stderr
    assert "Voigt bound" in result.stderr and "admissible" in result.stderr
    table = pq.read_table(out / "designs.parquet").to_pydict()
    assert table["line"] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert [s.split(":")[0] for s in table["status"]] == ["ok", *["skipped"] * 6, "ok"]
    nmse = table["nmse_forward"]
    assert nmse[0] < 0.2 and nmse[-1] < 0.2 and nmse[1:-1] == [None] * 6


def test_strict_batch_stops_and_lists_every_bad_line(tmp_path):
    good = bone3_row()
    rows = [csv_row(good), csv_row(good[:20]), csv_row(good), csv_row(np.zeros(21))]
    target = batch_file(tmp_path, "\n".join(rows))
    out = tmp_path / "batch"
    result = runner.invoke(app, ["design", str(target), *BATCH, "--strict", "--out", str(out)])
    one_line_error(result, "line 2: expected 21 numbers", "line 4: not an admissible")
    assert not (out / "designs.parquet").exists()


def test_a_batch_without_one_good_row_is_refused(tmp_path):
    rows = [csv_row(np.zeros(21)), csv_row(np.full(21, np.inf))]
    target = batch_file(tmp_path, "\n".join(rows))
    result = runner.invoke(app, ["design", str(target), *BATCH, "--out", str(tmp_path / "o")])
    one_line_error(result, "every row cannot be designed", "line 1:", "line 2:")


def test_a_batch_in_mpa_without_unit_gets_a_unit_hint_per_row(tmp_path):
    mpa = c21_from_matrix(load_target("bone3", unit="GPa", base_modulus=1.0)) * 1000
    target = batch_file(tmp_path, csv_row(mpa) + "\n" + csv_row(1.1 * mpa) + "\n")
    result = runner.invoke(app, ["design", str(target), *BATCH, "--out", str(tmp_path / "o")])
    one_line_error(result, "line 1: stiffer than any lattice", "line 2:", "did you forget --unit")


def test_a_latin1_batch_file_is_one_line(tmp_path):
    target = tmp_path / "targets.csv"
    target.write_bytes(("# März\n" + csv_row(bone3_row())).encode("latin-1"))
    result = runner.invoke(app, ["design", str(target), *BATCH, "--out", str(tmp_path / "o")])
    one_line_error(result, "not a UTF-8 text file")


def test_a_header_naming_too_few_columns_names_its_line(tmp_path):
    target = batch_file(tmp_path, "C11,C12,C13\n1,2,3\n")
    result = runner.invoke(app, ["design", str(target), *BATCH, "--out", str(tmp_path / "o")])
    one_line_error(result, "line 1: the header must name the 21 columns")


def test_strict_needs_a_batch(tmp_path):
    result = runner.invoke(app, ["design", "bone3", "--strict", "--out", str(tmp_path / "o")])
    one_line_error(result, "--strict applies to a file of many targets")


# -- 3. scale and unit sense, options that do what they say ----------------------------------


def test_a_target_1000x_too_soft_gets_the_nearest_scale_and_a_unit_hint(tmp_path, no_compute):
    args = ["design", "bone3", "--unit", "MPa", "--base-modulus", "114GPa"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    one_line_error(result, "softer than any lattice", "multiplied by at least", "--unit")


def test_a_gpa_target_without_unit_gets_a_unit_hint(tmp_path, no_compute):
    gpa = load_target("bone3", unit="GPa", base_modulus=1.0)
    target = tmp_path / "bone_gpa.csv"
    np.savetxt(target, gpa, delimiter=",")
    result = runner.invoke(app, ["design", str(target), "--out", str(tmp_path / "o")])
    one_line_error(result, "Voigt bound", "divided by at least", "did you forget --unit")


def test_no_verify_runs_no_fe(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("FE ran although --no-verify")

    monkeypatch.setattr("metainv.truss.learn.inverse.homogenize", refuse)
    monkeypatch.setattr("metainv.truss.learn.inverse.refine_design", refuse)
    out = tmp_path / "d"
    args = ["design", "bone3", "--top", "1", "--no-verify", "--samples", "300", "--json"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    (candidate,) = json.loads((out / "designs.json").read_text())["candidates"]
    assert candidate["C_fe"] is None and candidate["nmse_fe"] is None
    assert candidate["nmse_forward"] < 0.1


def test_distinct_designs_compare_topologies_as_multisets():
    def design(topology, rho=0.03):
        eye = np.eye(3)
        return TrussDesign(topology, rho, np.ones(3), np.ones(3), eye, eye)

    designs = [
        design(((1, 2), (7, 1), (4, 2))),
        design(((7, 1), (4, 2), (1, 2)), rho=0.08),  # same lattice, other order and geometry
        design(((1, 2), (1, 2), (4, 2))),
        design(((4, 2), (1, 2), (1, 2))),
        design(((3, 1), (3, 1), (3, 1))),
    ]
    assert distinct_designs(designs, 5) == [0, 2, 4]
    assert distinct_designs(designs, 2) == [0, 2]


def test_bone3_top5_are_five_different_lattices(tmp_path):
    out = tmp_path / "d"
    args = ["design", "bone3", "--unit", "GPa", "--base-modulus", "114GPa", "--no-verify"]
    result = runner.invoke(app, [*args, "--samples", "2000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    candidates = json.loads((out / "designs.json").read_text())["candidates"]
    lattices = {
        tuple(sorted((c["cell"], c["tessellation"]) for c in entry["design"]["topology"]))
        for entry in candidates
    }
    assert len(candidates) == 5 and len(lattices) == 5


def test_a_single_target_with_a_bom_and_a_one_line_c21_json_are_single_targets(tmp_path):
    from metainv.targets import read_target_table

    matrix = load_target("bone3", unit="GPa", base_modulus="114GPa")
    csv = tmp_path / "one.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + "\n".join(csv_row(row) for row in matrix).encode())
    assert read_target_table(csv) is None
    assert np.allclose(load_target(csv), matrix)
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"C21": c21_from_matrix(matrix).tolist()}))
    assert read_target_table(single) is None


def test_grade_and_topopt_refuse_a_folder_with_other_results_unless_force(tmp_path):
    """Every command that writes a folder of results: a non-empty --out is refused before any
    work; --force replaces only metainv's own files of that command."""
    examples = Path(__file__).resolve().parents[1] / "examples" / "designs"
    graded, optimized = tmp_path / "graded", tmp_path / "topopt"
    for folder in (graded, optimized):
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
        (folder / "summary.json").write_text("{}")
    grade = [
        *("grade", "--control", "0,1,1", str(examples / "octet.json")),
        *("--control", "4,1,1", str(examples / "octet.json")),
        *("--box", "4", "2", "2", "--no-stl", "--no-check", "--out", str(graded)),
    ]
    topopt = [
        *("topopt", "--nel", "6", "2", "2", "--material", "solid", "--max-iter", "2"),
        *("--out", str(optimized)),
    ]
    for args, folder in ((grade, graded), (topopt, optimized)):
        one_line_error(runner.invoke(app, args), "is not empty", "--force")
        assert json.loads((folder / "summary.json").read_text()) == {}  # nothing touched
        result = runner.invoke(app, [*args, "--force"])
        assert result.exit_code == 0, result.output
        assert (folder / "notes.txt").read_text() == "mine"  # not ours: kept
        assert json.loads((folder / "summary.json").read_text())  # the new result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--unit", "GPa", "--base-modulus", "1e300GPa"], "stiffer than any solid"),
        (["--unit", "GPa", "--base-modulus", "114e9"], "stiffer than any solid"),  # Pa as GPa
        (["--solid-modulus", "0"], "invalid solid modulus '0'"),
    ],
)
def test_implausible_moduli_get_a_specific_message(args, message):
    one_line_error(runner.invoke(app, ["stiffness", "check", "bone3", *args]), message)


def test_an_invalid_design_file_is_named_in_its_error(tmp_path):
    path = tmp_path / "bad_design.json"
    path.write_text('{"family": "truss", "relative_density": 0.05}')
    one_line_error(runner.invoke(app, ["homogenize", str(path)]), str(path), "'topology'")
