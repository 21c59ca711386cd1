"""Truss design parameters: validation, JSON, deformation gradients, sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from metainv.errors import DesignError
from metainv.tensors import is_rotation, rotation_from_angle_axis
from metainv.truss.design import (
    TrussDesign,
    deformation_gradient,
    design_arrays,
    design_from_dict,
    design_to_dict,
    designs_from_arrays,
    load_design,
    sample_design_arrays,
    sample_designs,
    save_design,
    stage1_gradient,
    stage2_gradient,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "designs"
OCTET = ((2, 1), (2, 1), (2, 1))


def make(**changes):
    params = {
        "topology": OCTET,
        "relative_density": 0.05,
        "U": [1.0, 1.0, 1.0],
        "V": [1.0, 1.0, 1.0],
        "R1": np.eye(3),
        "R2": np.eye(3),
    }
    params.update(changes)
    return TrussDesign(**params)


def valid_dict(**changes):
    data = {
        "family": "truss",
        "topology": [{"cell": 2, "tessellation": 1}] * 3,
        "relative_density": 0.05,
        "U": [1, 1, 1],
        "V": [1, 1, 1],
        "R1": np.eye(3).tolist(),
        "R2": {"angle": 0.3, "axis": [0, 0, 1]},
    }
    data.update(changes)
    return data


# ---------------------------------------------------------------------------------- validation


def test_valid_design_is_frozen_and_read_only():
    design = make(U=[0.5, 1.0, 2.0])
    assert design.U.dtype == np.float64
    with pytest.raises(ValueError):
        design.U[0] = 1.0
    with pytest.raises(AttributeError):
        design.relative_density = 0.01  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"V": [1.0, 1.0, 3.0]}, "stretch V[2] = 3.0 is outside [0.5, 2]"),
        ({"U": [0.4, 1.0, 1.0]}, "stretch U[0] = 0.4 is outside [0.5, 2]"),
        ({"U": [1.0, float("nan"), 1.0]}, "stretch U[1] = nan is outside [0.5, 2]"),
        ({"U": [1.0, 1.0]}, "U must have shape (3,)"),
        ({"relative_density": 0.2}, "relative_density = 0.2 is outside [0.002, 0.1]"),
        ({"relative_density": 0.001}, "relative_density = 0.001 is outside [0.002, 0.1]"),
        ({"relative_density": "0.05"}, "relative_density must be a number"),
        ({"topology": ((8, 1), (2, 1), (2, 1))}, "cell 8 in topology[0] is not one of 1..7"),
        ({"topology": ((2, 1), (0, 1), (2, 1))}, "cell 0 in topology[1] is not one of 1..7"),
        (
            {"topology": ((2, 1), (2, 1), (2, 3))},
            "tessellation 3 in topology[2] is not one of 1, 2",
        ),
        ({"topology": ((2, 1), (2, 1))}, "topology must have 3"),
        ({"topology": ((2.5, 1), (2, 1), (2, 1))}, "cell in topology[0] must be an integer"),
        ({"topology": ((True, 1), (2, 1), (2, 1))}, "cell in topology[0] must be an integer"),
        ({"R2": np.eye(3) * 2}, "R2 is not a rotation matrix: R R^T - I has max entry 3"),
        ({"R1": np.diag([1.0, 1.0, -1.0])}, "R1 is not a rotation matrix: det R = -1"),
        ({"R1": np.eye(2)}, "R1 must have shape (3, 3)"),
    ],
)
def test_invalid_parameters_name_the_parameter_and_range(changes, message):
    with pytest.raises(DesignError) as info:
        make(**changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_rotation_error_reports_max_deviation():
    R = np.eye(3)
    R[0, 1] = 0.3  # R R^T - I has entries 0.09 (diagonal) and 0.3 (off-diagonal)
    with pytest.raises(
        DesignError, match=r"R1 is not a rotation matrix: R R\^T - I has max entry 0.3"
    ):
        make(R1=R)


def test_rotation_within_tolerance_is_accepted():
    R = rotation_from_angle_axis(0.4, np.array([1.0, 2.0, 3.0])) + 1e-8
    assert is_rotation(make(R1=R).R1)


def test_equality_and_hash():
    assert make() == make()
    assert hash(make()) == hash(make())
    assert make() != make(relative_density=0.06)
    assert len({make(), make(), make(U=[1.0, 1.0, 1.5])}) == 2


# --------------------------------------------------------------------------------------- JSON


def test_json_round_trip_is_exact(tmp_path):
    for design in sample_designs(20, rng=3):
        path = tmp_path / "d.json"
        save_design(design, path)
        loaded = load_design(path)
        assert loaded == design
        assert np.array_equal(loaded.R2, design.R2)
        assert design_from_dict(design_to_dict(design)) == design


def test_written_json_has_documented_format(tmp_path):
    path = tmp_path / "d.json"
    save_design(make(), path)
    data = json.loads(path.read_text())
    assert set(data) == {"family", "topology", "relative_density", "U", "V", "R1", "R2"}
    assert data["family"] == "truss"
    assert data["topology"][0] == {"cell": 2, "tessellation": 1}
    assert np.array(data["R1"]).shape == (3, 3)


def test_angle_axis_and_matrix_forms_agree():
    axis = [1.0, -2.0, 0.5]
    R = rotation_from_angle_axis(np.float64(0.8), np.array(axis) / np.linalg.norm(axis))
    from_matrix = design_from_dict(valid_dict(R1=R.tolist()))
    from_radians = design_from_dict(valid_dict(R1={"angle": 0.8, "axis": axis}))
    from_degrees = design_from_dict(valid_dict(R1={"angle_deg": np.degrees(0.8), "axis": axis}))
    np.testing.assert_allclose(from_radians.R1, from_matrix.R1, atol=1e-14)
    np.testing.assert_allclose(from_degrees.R1, from_matrix.R1, atol=1e-14)
    # right-handed: +90 deg about x3 takes e1 to e2
    quarter = design_from_dict(valid_dict(R1={"angle_deg": 90, "axis": [0, 0, 5]}))
    np.testing.assert_allclose(quarter.R1 @ [1, 0, 0], [0, 1, 0], atol=1e-15)


@pytest.mark.parametrize(
    ("changes", "remove", "message"),
    [
        ({}, "U", "missing key 'U'"),
        ({}, "family", "missing key 'family'"),
        ({"colour": "red"}, None, "unknown key 'colour'"),
        ({"family": "spinodoid"}, None, "family 'spinodoid' is not 'truss'"),
        ({"U": "1, 1, 1"}, None, "U must be a list of 3 numbers"),
        ({"V": [1, 1, "x"]}, None, "V[2] must be a number"),
        ({"relative_density": [0.05]}, None, "relative_density must be a number"),
        ({"topology": [{"cell": 2, "tessellation": 1}] * 2}, None, "topology must be a list of 3"),
        ({"topology": [{"cell": 2}] * 3}, None, "topology[0] must have exactly the keys"),
        (
            {"topology": [{"cell": 8, "tessellation": 1}] * 3},
            None,
            "cell 8 in topology[0] is not one of 1..7",
        ),
        ({"R1": [[1, 0], [0, 1]]}, None, "R1 must be a 3x3 matrix or"),
        ({"R1": {"angle": 1.0}}, None, "R1 must have the keys 'axis'"),
        ({"R1": {"angle": 1, "angle_deg": 2, "axis": [0, 0, 1]}}, None, "R1 must have the keys"),
        ({"R2": {"angle": 1.0, "axis": [0, 0, 0]}}, None, "R2.axis must be a finite nonzero"),
        ({"R2": {"angle": "x", "axis": [0, 0, 1]}}, None, "R2.angle must be a number"),
        ({"R1": [[1, 0, 0], [0, 1, 0], [0, 0.3, 1]]}, None, "R1 is not a rotation matrix"),
    ],
)
def test_invalid_json_names_the_key(changes, remove, message):
    data = valid_dict(**changes)
    if remove:
        del data[remove]
    with pytest.raises(DesignError) as info:
        design_from_dict(data)
    assert message in str(info.value)


def test_optional_name_and_description_and_pair_topology_accepted():
    design = design_from_dict(
        valid_dict(name="x", description="y", topology=[[1, 2], [3, 1], [7, 1]])
    )
    assert design.topology == ((1, 2), (3, 1), (7, 1))


def test_non_object_json_is_rejected():
    with pytest.raises(DesignError, match="must be a JSON object"):
        design_from_dict([1, 2, 3])  # type: ignore[arg-type]


def test_example_designs_load():
    files = [
        path
        for path in sorted(EXAMPLES.glob("*.json"))
        if json.loads(path.read_text()).get("family") == "truss"
    ]
    assert len(files) >= 3
    for path in files:
        assert isinstance(load_design(path), TrussDesign)


# ------------------------------------------------------------------------ deformation gradient


def test_deformation_gradient_composition_order_by_hand():
    """F = R2 V R1 U on a hand example where any other order gives a different matrix."""
    Rz = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # +90 deg about x3
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +90 deg about x1
    design = make(U=[2.0, 1.0, 1.0], V=[1.0, 1.5, 1.0], R1=Rz, R2=Rx)
    # e1 --U--> 2 e1 --R1--> 2 e2 --V--> 3 e2 --R2--> 3 e3
    # e2 --U--> e2 --R1--> -e1 --V--> -e1 --R2--> -e1
    # e3 --U--> e3 --R1--> e3 --V--> e3 --R2--> -e2
    expected = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [3.0, 0.0, 0.0]])
    np.testing.assert_allclose(deformation_gradient(design), expected, atol=1e-15)
    np.testing.assert_allclose(stage1_gradient(design), np.diag([2.0, 1.0, 1.0]))
    np.testing.assert_allclose(stage2_gradient(design), Rx.T @ expected, atol=1e-15)
    assert np.linalg.det(deformation_gradient(design)) == pytest.approx(3.0)


def test_stage_gradients_compose_to_full():
    for design in sample_designs(5, rng=1):
        F = deformation_gradient(design)
        np.testing.assert_allclose(design.R2 @ stage2_gradient(design), F, atol=1e-14)
        np.testing.assert_allclose(
            np.diag(design.V) @ design.R1 @ stage1_gradient(design), stage2_gradient(design)
        )


# ----------------------------------------------------------------------------------- sampling


def test_sampling_ranges_and_shapes():
    n = 4000
    arrays = sample_design_arrays(n, np.random.default_rng(0))
    assert arrays["cells"].shape == (n, 3) and arrays["tessellations"].shape == (n, 3)
    assert set(np.unique(arrays["cells"])) == set(range(1, 8))
    assert set(np.unique(arrays["tessellations"])) == {1, 2}
    rho = arrays["relative_density"]
    assert rho.shape == (n,) and rho.min() >= 0.002 and rho.max() <= 0.1
    for key in ("U", "V"):
        assert arrays[key].shape == (n, 3)
        assert arrays[key].min() >= 0.5 and arrays[key].max() <= 2.0
        assert abs(arrays[key].mean() - 1.25) < 0.03  # uniform, not log-uniform
    for key in ("R1", "R2"):
        assert arrays[key].shape == (n, 3, 3) and is_rotation(arrays[key]).all()
        angle = arrays[f"{key}_angle"]
        assert angle.min() >= -np.pi and angle.max() <= np.pi and abs(angle.mean()) < 0.1
        np.testing.assert_allclose(np.linalg.norm(arrays[f"{key}_axis"], axis=1), 1.0)
        np.testing.assert_allclose(
            rotation_from_angle_axis(angle, arrays[f"{key}_axis"]), arrays[key], atol=1e-14
        )
    # uniform cells: each of the 7 appears about 1/7 of the time
    counts = np.bincount(arrays["cells"].ravel(), minlength=8)[1:]
    assert counts.min() > 0.8 * 3 * n / 7


def test_sampling_is_reproducible():
    a = sample_designs(10, np.random.default_rng(42))
    b = sample_designs(10, np.random.default_rng(42))
    c = sample_designs(10, np.random.default_rng(43))
    assert a == b
    assert a != c
    assert sample_designs(10, 42) == a


def test_arrays_round_trip():
    designs = sample_designs(8, 5)
    assert designs_from_arrays(design_arrays(designs)) == designs
    arrays = sample_design_arrays(8, 5)
    by_angle = {k: v for k, v in arrays.items() if k not in ("R1", "R2")}
    for d1, d2 in zip(designs_from_arrays(arrays), designs_from_arrays(by_angle), strict=True):
        np.testing.assert_allclose(d1.R1, d2.R1, atol=1e-14)
        assert d1.topology == d2.topology


def test_sample_zero():
    assert sample_designs(0, 1) == []
