"""Spinodoid data, f-NN / i-NN learning, inverse design and graded spinodoids (issue #7).

Everything runs at very low voxel resolution (6^3) so the file stays fast; the checks are on
properties (loss decreases, round trips, schema, snapping rules, watertightness), not on
numbers of a particular run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from typer.testing import CliRunner

from metainv.cli import app
from metainv.data import GenerationSpec, generate_dataset, read_dataset
from metainv.spinodoid.dataset import (
    STIFFNESS_NAMES,
    generation_parameters,
    sample_parameters,
)
from metainv.spinodoid.design import SpinodoidDesign, design_from_dict
from metainv.spinodoid.graded import blend_weights
from metainv.spinodoid.learn.artifacts import load_spinodoid_models
from metainv.spinodoid.learn.inverse import (
    SpinodoidDesignSettings,
    axis_permutations,
    canonical_frame,
    cube_rotations,
    design_for_target,
    fit_orthotropic_frame,
    orthotropic_residual,
    solid_connectivity,
    write_design_outputs,
)
from metainv.spinodoid.learn.jobs import train_job
from metainv.spinodoid.learn.nets import snap_angles, snap_design
from metainv.spinodoid.learn.train import SpinodoidTrainConfig
from metainv.tensors import (
    matrix_from_orthotropic9,
    nmse,
    random_rotations,
    rotate_stiffness,
)

RESOLUTION = 6
TINY = SpinodoidTrainConfig(
    forward_epochs=40,
    inverse_epochs=30,
    prediction_epochs=10,
    batch_size=4,
    learning_rate=3e-3,
)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spinodoid-data")
    spec = GenerationSpec("spinodoid", 16, 8, 3, generation_parameters(RESOLUTION))
    manifest = generate_dataset(spec, folder)
    assert manifest["complete"] and manifest["params"]["resolution"] == RESOLUTION
    return folder


@pytest.fixture(scope="module")
def tiny_low_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A low-density data set (rho in [0.15, 0.3], our extension) made by the CLI."""
    folder = tmp_path_factory.mktemp("spinodoid-low") / "data"
    result = CliRunner().invoke(
        app,
        ["generate", "spinodoid", "--n", "6", "--shard-size", "3", "--seed", "5",
         "--resolution", str(RESOLUTION), "--density-range", "0.15", "0.3", "--out", str(folder)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def tiny_model(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spinodoid-model")
    train_job(tiny_data, folder, TINY, fe_samples=2)
    return folder


def test_generated_rows_follow_the_design_space(tiny_data: Path) -> None:
    table = read_dataset(tiny_data)
    assert table.num_rows == 16
    rho = table["relative_density"].to_numpy()
    assert np.all((rho >= 0.3) & (rho <= 0.9))
    theta = np.stack([table[f"theta{k}"].to_numpy() for k in (1, 2, 3)], axis=1)
    assert np.all((theta == 0) | ((theta >= 15) & (theta <= 90)))
    assert np.all(theta.max(axis=1) > 0)
    # the exact level gives the requested density to within one voxel
    measured = table["measured_density"].to_numpy()
    assert np.all(np.abs(measured - rho) <= 1.0 / RESOLUTION**3 + 1e-12)
    S = np.stack([table[name].to_numpy() for name in STIFFNESS_NAMES], axis=1)
    C = matrix_from_orthotropic9(S)
    assert np.all(np.linalg.eigvalsh(C) > 0)


def test_density_range_option_is_sampled_and_recorded(tiny_low_data: Path) -> None:
    manifest = json.loads((tiny_low_data / "dataset.json").read_text())
    assert manifest["complete"] and manifest["params"]["relative_density"] == [0.15, 0.3]
    assert generation_parameters(RESOLUTION)["relative_density"] == [0.3, 0.9]  # default
    rho = read_dataset(tiny_low_data)["relative_density"].to_numpy()
    assert len(rho) == 6 and np.all((rho >= 0.15) & (rho <= 0.3))
    sampled = sample_parameters(2000, np.random.default_rng(0), (0.15, 0.3))
    assert sampled["relative_density"].min() >= 0.15 and sampled["relative_density"].max() <= 0.3
    assert sampled["relative_density"].min() < 0.16 and sampled["relative_density"].max() > 0.29


@pytest.mark.parametrize(
    ("low", "high", "reason"),
    [("0.1", "0.3", "0.15 <= low < high <= 1"), ("0.5", "0.4", "0.15 <= low < high <= 1")],
)
def test_density_range_option_rejects_ranges_outside_the_design_space(
    tmp_path: Path, low: str, high: str, reason: str
) -> None:
    result = CliRunner().invoke(
        app,
        ["generate", "spinodoid", "--n", "2", "--resolution", str(RESOLUTION),
         "--density-range", low, high, "--out", str(tmp_path / "data")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert reason in " ".join(result.output.replace("│", " ").split())
    assert not (tmp_path / "data" / "dataset.json").exists()


def test_model_learns_the_density_range_of_all_its_data(
    tiny_data: Path, tiny_low_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    quick = replace(TINY, forward_epochs=5, inverse_epochs=12)
    train_job([tiny_data, tiny_low_data], folder, quick)
    config = json.loads((folder / "config.json").read_text())
    assert config["net"]["density_range"] == [0.15, 0.9]
    assert config["data"]["relative_density"] == [0.15, 0.9]
    models = load_spinodoid_models(folder)
    designs = models.predict_designs(np.tile(np.linspace(0.001, 0.3, 9), (5, 1)))
    assert np.all((designs[:, 0] >= 0.15) & (designs[:, 0] <= 0.9))


def test_sampling_law_switches_cones_off_but_never_all() -> None:
    sampled = sample_parameters(4000, np.random.default_rng(0))
    theta = sampled["theta"]
    off = theta == 0
    assert not off.all(axis=1).any()
    assert 0.2 < off.mean() < 0.4  # probability 1/3, conditioned on not all off
    assert np.all(theta[~off] >= 15) and np.all(theta[~off] <= 90)


def test_interrupted_training_resumes_to_the_weights_of_an_uninterrupted_run(
    tiny_data: Path, tmp_path: Path
) -> None:
    from metainv.spinodoid.learn.data import load_spinodoid_data
    from metainv.spinodoid.learn.train import train_spinodoid_models

    data = load_spinodoid_data(tiny_data)
    config = replace(TINY, forward_epochs=8, inverse_epochs=8, prediction_epochs=3)
    reference = train_spinodoid_models(data, config)

    class Interrupt(Exception):
        pass

    def stop_at(stage: str, epoch: int):
        def on_epoch(name: str, record: dict) -> None:
            if name == stage and record["epoch"] == epoch:
                raise Interrupt

        return on_epoch

    checkpoints = tmp_path / "checkpoints"
    for stage, epoch in (("forward", 3), ("inverse", 5)):
        with pytest.raises(Interrupt):
            train_spinodoid_models(data, config, stop_at(stage, epoch), checkpoints)
    assert {p.name for p in checkpoints.iterdir()} == {"forward.pt", "inverse.pt"}
    resumed = train_spinodoid_models(data, config, None, checkpoints)
    for name in ("forward", "inverse"):
        expected = getattr(reference, name).state_dict()
        got = getattr(resumed, name).state_dict()
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[key], got[key]) for key in expected), name
        assert len(resumed.histories[name]) == 8
        assert [r["train_loss"] for r in resumed.histories[name]] == [
            r["train_loss"] for r in reference.histories[name]
        ]


def test_training_reduces_both_losses_and_round_trips(tiny_data: Path, tiny_model: Path) -> None:
    history = json.loads((tiny_model / "history.json").read_text())
    for stage in ("forward", "inverse"):
        losses = [record["train_loss"] for record in history[stage]]
        assert len(losses) == getattr(TINY, f"{stage}_epochs")
        assert np.mean(losses[-5:]) < losses[0], stage
    manifest = json.loads((tiny_model / "manifest.json").read_text())
    assert manifest["data"][0]["manifest_sha256"]
    assert manifest["code_version"] and "weights_sha256" in manifest
    assert manifest["metrics"]["fe_resolution"] == RESOLUTION
    models = load_spinodoid_models(tiny_model)
    table = read_dataset(tiny_data)
    S = np.stack([table[name].to_numpy() for name in STIFFNESS_NAMES], axis=1)
    designs = models.predict_designs(S)
    assert np.all((designs[:, 0] >= 0.3) & (designs[:, 0] <= 0.9))
    angles = designs[:, 1:]
    assert np.all((angles == 0) | ((angles >= 15) & (angles <= 90)))


def test_snapping_rules_and_straight_through_gradient() -> None:
    rng = np.random.default_rng(1)
    theta = rng.uniform(0, 90, size=(500, 3))
    theta[:20] = rng.uniform(0, 7.4, size=(20, 3))  # rows that snap entirely off
    snapped = snap_angles(theta)
    assert np.all((snapped == 0) | ((snapped >= 15) & (snapped <= 90)))
    assert not np.all(snapped == 0, axis=1).any()
    live = theta >= 15
    np.testing.assert_array_equal(snapped[live], theta[live])
    middle = (theta >= 7.5) & (theta < 15)
    assert np.all(snapped[middle] == 15)
    dead = np.all(theta < 7.5, axis=1)
    assert np.all(snapped[~dead][theta[~dead] < 7.5] == 0)
    # a design needs one cone: its largest angle becomes 15, the others stay off
    np.testing.assert_array_equal(np.sort(snapped[dead], axis=1), [[0, 0, 15]] * dead.sum())
    assert np.all(np.argmax(snapped[dead], axis=1) == np.argmax(theta[dead], axis=1))
    np.testing.assert_allclose(snap_angles(torch.as_tensor(theta)).numpy(), snapped)
    design = torch.tensor([[0.5, 3.0, 10.0, 40.0]], requires_grad=True)
    out = snap_design(design)
    assert out[0, 1:].tolist() == [0.0, 15.0, 40.0]
    out.sum().backward()
    np.testing.assert_array_equal(design.grad.numpy(), np.ones((1, 4)))


def test_frame_fit_recovers_a_rotated_orthotropic_target() -> None:
    C = matrix_from_orthotropic9(np.array([0.5, 0.1, 0.08, 0.3, 0.09, 0.2, 0.07, 0.06, 0.1]))
    aligned = fit_orthotropic_frame(C, restarts=0)
    assert aligned.angle_deg == 0 and aligned.residual == 0
    R = random_rotations(1, np.random.default_rng(4))[0]
    target = rotate_stiffness(C, R)
    assert orthotropic_residual(target) > 1e-3
    fit = fit_orthotropic_frame(target, restarts=8, seed=1)
    assert fit.residual < 1e-10
    back = rotate_stiffness(target, fit.rotation.T)
    assert orthotropic_residual(back) < 1e-10
    for P in axis_permutations():
        assert np.isclose(np.linalg.det(P), 1.0)
        assert orthotropic_residual(rotate_stiffness(back, P)) < 1e-10


def test_design_outputs_follow_the_designs_json_schema(
    tiny_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    models = load_spinodoid_models(tiny_model)
    table = read_dataset(tiny_data)
    S = np.array([table[name][0].as_py() for name in STIFFNESS_NAMES])
    R = random_rotations(1, np.random.default_rng(2))[0]
    target = rotate_stiffness(matrix_from_orthotropic9(S), R)
    settings = SpinodoidDesignSettings(top=2, pool=2, seeds=1, restarts=2, polish_steps=5)
    candidates, fit = design_for_target(models, target, settings)
    assert fit.residual < 1e-8 < fit.residual_identity
    document = write_design_outputs(
        target, candidates, tmp_path, fit, models.resolution, stl_resolution=12
    )
    assert document == json.loads((tmp_path / "designs.json").read_text())
    np.testing.assert_allclose(document["target"], target)
    errors = [c["nmse_fe"] for c in document["candidates"]]
    assert errors == sorted(errors) and 1 <= len(errors) <= 2
    for entry in document["candidates"]:
        design = design_from_dict(entry["design"])
        C_fe = np.array(entry["C_fe"])
        assert C_fe.shape == (6, 6) and np.array(entry["C_forward"]).shape == (6, 6)
        assert np.isclose(entry["nmse_fe"], float(nmse(target, C_fe)))
        assert np.isclose(entry["nmse_forward"], float(nmse(target, np.array(entry["C_forward"]))))
        assert design.rotation is not None  # the target is not axis aligned
        mesh = trimesh.load(tmp_path / entry["stl"])
        assert mesh.is_watertight
        assert (tmp_path / entry["surface_png"]).stat().st_size > 0


def test_graded_spinodoid_is_watertight_and_follows_local_density(tmp_path: Path) -> None:
    centers = np.array([[0.0, 0.5, 0.5], [1.5, 0.5, 0.5]])
    points = np.random.default_rng(0).uniform(-1, 2, size=(50, 3))
    np.testing.assert_allclose(blend_weights(points, centers, 3.0).sum(axis=-1), 1.0)
    designs = []
    for k, (rho, theta) in enumerate(((0.35, [0, 30, 30]), (0.75, [30, 0, 0]))):
        path = tmp_path / f"control{k}.json"
        path.write_text(json.dumps({"family": "spinodoid", "relative_density": rho,
                                    "theta": theta, "seed": k}))  # fmt: skip
        designs.append(path)
    out = tmp_path / "graded"
    result = CliRunner().invoke(
        app,
        ["grade", "--family", "spinodoid", "--box", "1.5", "1", "1", "--zeta", "3",
         "--elements-per-cell", "16", "--out", str(out), "--json",
         "--control", "0,0.5,0.5", str(designs[0]), "--control", "1.5,0.5,0.5", str(designs[1])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    mesh = trimesh.load(out / summary["files"]["stl"])
    assert mesh.is_watertight and summary["stl"]["watertight"]
    assert np.isclose(mesh.volume, summary["stl"]["volume"], rtol=1e-6)
    low, high = summary["local_density"]
    assert low < 0.5 < high
    assert 0.35 < summary["relative_density"] < 0.75


def test_cli_evaluate_reports_every_constant(tiny_data: Path, tiny_model: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["evaluate", "spinodoid", "--data", str(tiny_data), "--model", str(tiny_model),
         "--fe-samples", "2", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    for key in ("forward_r2", "inverse_r2_forward_model", "inverse_r2_fe"):
        assert list(metrics[key]) == list(STIFFNESS_NAMES)
    assert metrics["fe_samples"] == 2 and metrics["rows"] == 16


def test_cli_design_family_spinodoid_writes_verified_designs(
    tiny_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    table = read_dataset(tiny_data)
    S = np.array([table[name][1].as_py() for name in STIFFNESS_NAMES])
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"name": "row1", "C": matrix_from_orthotropic9(S).tolist()}))
    out = tmp_path / "design"
    result = CliRunner().invoke(
        app,
        ["design", str(target), "--family", "spinodoid", "--model", str(tiny_model),
         "--out", str(out), "--top", "1", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads((out / "designs.json").read_text())
    assert document["fe"]["resolution"] == RESOLUTION
    assert document["frame_fit"]["angle_deg"] == 0  # an axis-aligned target keeps the axes
    (candidate,) = document["candidates"]
    assert candidate["nmse_fe"] is not None and (out / candidate["stl"]).exists()


def test_canonical_frame_describes_the_same_cones() -> None:
    def cone_set(theta: np.ndarray, frame: np.ndarray) -> list:
        axes = frame * np.sign(frame[np.argmax(np.abs(frame), axis=0), range(3)])
        return sorted((tuple(np.round(axes[:, j], 8)), theta[1 + j]) for j in range(3))

    R = random_rotations(1, np.random.default_rng(0))[0]
    theta = np.array([0.4, 0.0, 20.0, 30.0])
    reference = canonical_frame(theta, R)[1]
    for G in cube_rotations():
        theta2, frame2 = canonical_frame(theta, R @ G)
        assert cone_set(theta, R @ G) == cone_set(theta2, frame2)
        np.testing.assert_allclose(frame2, reference, atol=1e-12)
    assert np.allclose(canonical_frame(theta, cube_rotations()[7])[1], np.eye(3))


def test_shipped_model_designs_a_columnar_spinodoid_for_bone3_at_20_gpa(tmp_path: Path) -> None:
    """Issue #7: bone3 at E_s = 20 GPa (C33 / E_s = 0.063) needs rho < 0.3, our low-density
    extension; the design is columnar with its columns along the bone's stiff axis e3."""
    out = tmp_path / "bone3"
    result = CliRunner().invoke(
        app,
        ["design", "bone3", "--unit", "GPa", "--base-modulus", "20GPa", "--family", "spinodoid",
         "--top", "1", "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads((out / "designs.json").read_text())
    (candidate,) = document["candidates"]
    design = design_from_dict(candidate["design"])
    assert design.relative_density < 0.3
    off = np.flatnonzero(design.theta == 0)
    assert len(off) == 1, design.theta  # two cones on, one off: columns
    column = design.rotation_matrix[:, off[0]]
    assert abs(column[2]) > 0.95  # the column axis is e3, bone3's stiff axis
    assert candidate["nmse_fe"] < 0.1
    assert candidate["connectivity"]["connected"]  # one network spanning the cell (48^3)
    assert (out / candidate["stl"]).stat().st_size > 0
    assert (out / candidate["surface_png"]).stat().st_size > 0


def test_connectivity_tells_one_network_from_separate_pieces() -> None:
    full = solid_connectivity(SpinodoidDesign(1.0, [0, 0, 90]), 12)
    assert full == {"resolution": 12, "components": 1, "largest_share": 1.0,
                    "spans": [True, True, True], "connected": True}  # fmt: skip
    dense = solid_connectivity(SpinodoidDesign(0.5, [0, 0, 90], seed=1), 24)
    assert dense["connected"] and dense["largest_share"] > 0.95
    # rho = 0.15 with narrow cones: islands and bits of columns, none spanning the cell
    sparse = solid_connectivity(SpinodoidDesign(0.15, [15, 15, 15], seed=1), 24)
    assert not sparse["connected"] and sparse["largest_share"] < 0.5
    assert sparse["components"] > 10
