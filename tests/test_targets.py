"""Target loading: formats, units, normalization and one specific message per kind of bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from metainv.errors import TargetError
from metainv.targets import (
    canonical_unit,
    list_builtin_targets,
    load_target,
    modulus_in_pascal,
    parse_modulus,
    read_target,
)
from metainv.tensors import c21_from_matrix

#: bone3 in GPa, as printed in spec targets.md.
BONE3_GPA = np.array(
    [
        [0.573, 0.234, 0.219, -0.006, -0.015, 0.004],
        [0.234, 0.640, 0.253, -0.005, -0.016, 0.006],
        [0.219, 0.253, 1.260, -0.017, 0.023, -0.003],
        [-0.006, -0.005, -0.017, 0.317, -0.017, -0.002],
        [-0.015, -0.016, 0.023, -0.017, 0.246, 0.052],
        [0.004, 0.006, -0.003, -0.002, 0.052, 0.224],
    ]
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows_text(matrix: np.ndarray, separator: str = " ") -> str:
    return "\n".join(separator.join(f"{value:.6g}" for value in row) for row in matrix) + "\n"


def raises(message: str):
    """``pytest.raises(TargetError)`` matching ``message`` literally."""
    return pytest.raises(TargetError, match=re.escape(message))


# --- built-in ----------------------------------------------------------------------------------


def test_bone3_is_built_in_with_its_unit_and_base_modulus() -> None:
    assert "bone3" in list_builtin_targets()
    target = read_target("bone3")
    assert target.unit == "GPa" and target.base_modulus_pa == pytest.approx(114e9)
    assert target.base_material == "Ti-6Al-4V"
    np.testing.assert_allclose(target.stiffness, BONE3_GPA / 114, rtol=1e-14)


def test_bone3_with_explicit_unit_and_base_modulus_is_the_same() -> None:
    expected = BONE3_GPA / 114
    np.testing.assert_allclose(load_target("bone3", "GPa", "114GPa"), expected, rtol=1e-14)
    np.testing.assert_allclose(load_target("bone3", base_modulus="114GPa"), expected, rtol=1e-14)
    np.testing.assert_allclose(load_target("bone3", base_modulus=114), expected, rtol=1e-14)
    np.testing.assert_allclose(load_target("BONE3", "gpa", "114 gpa"), expected, rtol=1e-14)


def test_bone3_with_another_base_modulus() -> None:
    np.testing.assert_allclose(
        load_target("bone3", base_modulus="200GPa"), BONE3_GPA / 200, rtol=1e-14
    )


# --- file formats ------------------------------------------------------------------------------


def test_json_6x6_with_unit_and_base_modulus(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.json",
        json.dumps({"C": (BONE3_GPA * 1000).tolist(), "unit": "MPa", "base_modulus": "114GPa"}),
    )
    np.testing.assert_allclose(load_target(path), BONE3_GPA / 114, rtol=1e-12)


def test_json_c21_equals_6x6(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", json.dumps({"C21": c21_from_matrix(BONE3_GPA).tolist()}))
    np.testing.assert_allclose(load_target(path, "GPa", "114GPa"), BONE3_GPA / 114, rtol=1e-14)


def test_arguments_override_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.json",
        json.dumps({"C": BONE3_GPA.tolist(), "unit": "MPa", "base_modulus": "1MPa"}),
    )
    np.testing.assert_allclose(load_target(path, "GPa", "114GPa"), BONE3_GPA / 114, rtol=1e-14)


def test_json_without_unit_is_normalized(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", json.dumps({"C": (BONE3_GPA / 114).tolist()}))
    target = read_target(path)
    assert target.unit == "normalized" and target.base_modulus_pa is None
    np.testing.assert_allclose(target.stiffness, BONE3_GPA / 114)


@pytest.mark.parametrize("separator", [" ", ",", "\t", ", "])
def test_text_and_csv_files(tmp_path: Path, separator: str) -> None:
    path = write(tmp_path / "t.csv", "# bone3 in GPa\n\n" + rows_text(BONE3_GPA, separator))
    np.testing.assert_allclose(load_target(path, "GPa", "114GPa"), BONE3_GPA / 114, rtol=1e-14)


def test_text_file_with_inline_comments_and_any_suffix(tmp_path: Path) -> None:
    lines = rows_text(np.eye(6)).splitlines()
    lines[0] += "  # first row"
    path = write(tmp_path / "stiffness.dat", "\n".join(lines))
    np.testing.assert_array_equal(load_target(path), np.eye(6))


def test_json_content_is_detected_without_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "target.txt", json.dumps({"C": np.eye(6).tolist()}))
    np.testing.assert_array_equal(load_target(path), np.eye(6))


def test_nan_is_loaded_for_the_checker_to_name(tmp_path: Path) -> None:
    C = np.eye(6).tolist()
    C[1][2] = float("nan")
    path = write(tmp_path / "t.json", json.dumps({"C": C}))
    assert np.isnan(load_target(path)[1, 2])


# --- units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("114GPa", (114.0, "GPa")),
        ("114 GPa", (114.0, "GPa")),
        ("1.14e11pa", (1.14e11, "Pa")),
        ("250 MPA", (250.0, "MPa")),
        ("3kPa", (3.0, "kPa")),
        ("114", (114.0, None)),
        (114, (114.0, None)),
        (".5", (0.5, None)),
    ],
)
def test_parse_modulus(text: str | float, expected: tuple[float, str | None]) -> None:
    assert parse_modulus(text) == expected


def test_modulus_in_pascal() -> None:
    assert modulus_in_pascal("114GPa", "MPa") == pytest.approx(114e9)
    assert modulus_in_pascal(114, "GPa") == pytest.approx(114e9)
    assert modulus_in_pascal("2", "kPa") == pytest.approx(2e3)


@pytest.mark.parametrize(
    ("unit", "canonical"),
    [("pa", "Pa"), ("KPA", "kPa"), ("mpa", "MPa"), ("Normalized", "normalized")],
)
def test_units_are_case_insensitive(unit: str, canonical: str) -> None:
    assert canonical_unit(unit) == canonical


@pytest.mark.parametrize("unit", ["Pa", "kPa", "MPa", "GPa"])
def test_every_unit_normalizes_consistently(tmp_path: Path, unit: str) -> None:
    scale = {"Pa": 1e9, "kPa": 1e6, "MPa": 1e3, "GPa": 1.0}[unit]
    path = write(tmp_path / "t.txt", rows_text(BONE3_GPA * scale))
    np.testing.assert_allclose(load_target(path, unit, "114GPa"), BONE3_GPA / 114, rtol=1e-5)


def test_solid_modulus_is_normalized_like_the_target() -> None:
    target = read_target("bone3")
    assert target.normalize_modulus("114GPa") == pytest.approx(1.0)
    assert target.normalize_modulus(57) == pytest.approx(0.5)  # in the target's unit, GPa
    normalized = read_target("bone3", unit="normalized")
    assert normalized.normalize_modulus(1.0) == 1.0
    with raises("the target is normalized"):
        normalized.normalize_modulus("114GPa")


# --- errors: one specific line each ------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with raises(f"file not found: {tmp_path / 'nope.json'}"):
        load_target(tmp_path / "nope.json")


def test_unknown_builtin_name() -> None:
    with raises("unknown target 'bone9': no such file and no built-in target of that name"):
        load_target("bone9")


def test_directory_is_not_a_target(tmp_path: Path) -> None:
    with raises("is a directory, not a target file"):
        load_target(tmp_path)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with raises("not a UTF-8 text file"):
        load_target(path)


def test_invalid_json(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", '{"C": [[1, 2]')
    with raises("invalid JSON in"):
        load_target(path)
    with raises("at line 1, column"):
        load_target(path)


def test_json_not_an_object(tmp_path: Path) -> None:
    with raises("expected a JSON object with key 'C'"):
        load_target(write(tmp_path / "t.json", json.dumps(np.eye(6).tolist())))


def test_json_wrong_key(tmp_path: Path) -> None:
    with raises("unknown key 'stiffness'; expected 'C' (6 rows of 6 numbers) or 'C21'"):
        load_target(write(tmp_path / "t.json", json.dumps({"stiffness": np.eye(6).tolist()})))


def test_json_no_stiffness_key(tmp_path: Path) -> None:
    with raises("no stiffness found; expected key 'C' (6 rows of 6 numbers) or 'C21'"):
        load_target(write(tmp_path / "t.json", json.dumps({"unit": "GPa"})))


def test_json_both_keys(tmp_path: Path) -> None:
    document = {"C": np.eye(6).tolist(), "C21": [0.0] * 21}
    with raises("give either 'C' or 'C21', not both"):
        load_target(write(tmp_path / "t.json", json.dumps(document)))


def test_json_five_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", json.dumps({"C": np.eye(6)[:5].tolist()}))
    with raises("expected 36 numbers in 6 rows of 6, got 5 rows"):
        load_target(path)


def test_json_short_row(tmp_path: Path) -> None:
    C = np.eye(6).tolist()
    C[2] = C[2][:5]
    with raises("expected 36 numbers in 6 rows of 6, row 3 has 5 numbers"):
        load_target(write(tmp_path / "t.json", json.dumps({"C": C})))


def test_json_c_not_a_list_of_rows(tmp_path: Path) -> None:
    with raises("'C' must be a list of 6 rows, each a list of 6 numbers"):
        load_target(write(tmp_path / "t.json", json.dumps({"C": [1.0] * 36})))


def test_json_non_numeric_entry(tmp_path: Path) -> None:
    C = np.eye(6).tolist()
    C[1][3] = "abc"
    with raises("row 2, column 4: 'abc' is not a number"):
        load_target(write(tmp_path / "t.json", json.dumps({"C": C})))


def test_json_boolean_entry_is_not_a_number(tmp_path: Path) -> None:
    C = np.eye(6).tolist()
    C[0][0] = True
    with raises("row 1, column 1: True is not a number"):
        load_target(write(tmp_path / "t.json", json.dumps({"C": C})))


def test_json_huge_integer_entry(tmp_path: Path) -> None:
    text = json.dumps({"C": np.eye(6).tolist()}).replace("1.0", "1" + "0" * 400, 1)
    with raises("row 1, column 1:"):
        load_target(write(tmp_path / "t.json", text))


def test_json_c21_wrong_count(tmp_path: Path) -> None:
    with raises("expected 21 numbers in 'C21', got 20"):
        load_target(write(tmp_path / "t.json", json.dumps({"C21": [1.0] * 20})))


def test_json_unit_not_a_string(tmp_path: Path) -> None:
    with raises("'unit' must be a string"):
        load_target(write(tmp_path / "t.json", json.dumps({"C": np.eye(6).tolist(), "unit": 9})))


def test_text_five_rows(tmp_path: Path) -> None:
    with raises("t.csv: expected 36 numbers in 6 rows of 6, got 5 rows"):
        load_target(write(tmp_path / "t.csv", rows_text(np.eye(6)[:5], ",")))


def test_text_row_of_seven(tmp_path: Path) -> None:
    lines = rows_text(np.eye(6)).splitlines()
    lines[4] += " 0"
    with raises("row 5 has 7 numbers"):
        load_target(write(tmp_path / "t.txt", "\n".join(lines)))


def test_text_21_numbers_on_one_line_gets_a_hint(tmp_path: Path) -> None:
    with raises("got 1 row (for the 21 independent constants use a JSON file with key 'C21')"):
        load_target(write(tmp_path / "t.txt", " ".join(["1"] * 21)))


def test_text_non_numeric_entry(tmp_path: Path) -> None:
    text = rows_text(np.eye(6)).replace("1", "x", 1)
    with raises("row 1, column 1: 'x' is not a number"):
        load_target(write(tmp_path / "t.txt", text))


def test_empty_text_file(tmp_path: Path) -> None:
    with raises("empty file; expected 36 numbers in 6 rows of 6"):
        load_target(write(tmp_path / "t.txt", "# nothing here\n"))


def test_unknown_unit() -> None:
    with raises("unknown unit 'GPA2'; expected one of Pa, kPa, MPa, GPa, normalized"):
        load_target("bone3", unit="GPA2")


def test_unknown_unit_in_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", json.dumps({"C": np.eye(6).tolist(), "unit": "psi"}))
    with raises("unknown unit 'psi'; expected one of Pa, kPa, MPa, GPa, normalized"):
        load_target(path)


def test_physical_unit_without_base_modulus(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", rows_text(BONE3_GPA))
    with raises("the target is in GPa: pass --base-modulus"):
        load_target(path, unit="GPa")


def test_base_modulus_for_a_normalized_target() -> None:
    with raises("a base modulus (114GPa) was given but the target is already normalized"):
        load_target("bone3", unit="normalized", base_modulus="114GPa")


@pytest.mark.parametrize("bad", ["abc", "-114GPa", "0", "114 GPa GPa", "nan"])
def test_invalid_base_modulus(bad: str) -> None:
    with pytest.raises(TargetError, match="invalid base modulus"):
        load_target("bone3", base_modulus=bad)


def test_base_modulus_with_unknown_unit() -> None:
    with raises("unknown unit 'GPx'"):
        load_target("bone3", base_modulus="114GPx")


def test_base_modulus_in_normalized_unit_is_refused() -> None:
    with raises("a base modulus needs a physical unit"):
        load_target("bone3", base_modulus="1normalized")


def test_reachability_check_names_the_family_and_the_nearest_scale():
    from metainv.errors import MetainvError
    from metainv.targets import check_reachable_target
    from metainv.tensors import isotropic_stiffness

    solid = isotropic_stiffness(1.0, 0.3)
    check_reachable_target(0.09 * solid, 0.1)  # within rho_max C_s
    with pytest.raises(MetainvError, match=r"spinodoid .* divided by at least 2\.50"):
        check_reachable_target(0.25 * solid, 0.1, "spinodoid")
    with pytest.raises(MetainvError, match="not an admissible stiffness"):
        check_reachable_target(-0.01 * solid, 0.1)
