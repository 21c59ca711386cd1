"""Multi-fidelity spinodoid learning and FE-corrected design refinement (issue #17).

Tiny data (a few designs at 6^3 and 10^3 on the same fields, plus a published-format CSV) keep
the file fast; the checks are on the scheme's structure (which rows count at which fidelity,
what the i-NN is trained on, what is recorded) and on the defect correction's direction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from metainv.cli import app
from metainv.data import GenerationSpec, generate_dataset
from metainv.errors import MetainvError
from metainv.spinodoid.dataset import generation_parameters
from metainv.spinodoid.homogenize import REFERENCE_RESOLUTION
from metainv.spinodoid.learn.artifacts import load_spinodoid_models
from metainv.spinodoid.learn.data import (
    concatenate_data,
    load_published_data,
    load_spinodoid_data,
)
from metainv.spinodoid.learn.inverse import SpinodoidDesignSettings, refine_design
from metainv.spinodoid.learn.jobs import train_job
from metainv.spinodoid.learn.nets import SpinodoidForward, SpinodoidNetConfig, fidelity_feature
from metainv.spinodoid.learn.train import SpinodoidTrainConfig
from metainv.spinodoid.published import STIFFNESS_COLUMNS, read_published
from metainv.tensors import matrix_from_orthotropic9, nmse, rotate_stiffness

COARSE, FINE = 6, 10
TINY = SpinodoidTrainConfig(
    forward_epochs=30, inverse_epochs=20, prediction_epochs=5, batch_size=8, learning_rate=3e-3
)


def _dataset(folder: Path, resolution: int) -> Path:
    spec = GenerationSpec("spinodoid", 8, 4, 7, generation_parameters(resolution))
    assert generate_dataset(spec, folder)["complete"]
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 8 designs and fields (same seed) at two resolutions."""
    root = tmp_path_factory.mktemp("fidelity")
    return _dataset(root / "coarse", COARSE), _dataset(root / "fine", FINE)


def _published_csv(path: Path, rows: int = 12) -> Path:
    """A data.csv in the published layout, rows from a fixed-seed law (not real data)."""
    rng = np.random.default_rng(0)
    header = ["volFrac", "thetaX", "thetaY", "thetaZ", *STIFFNESS_COLUMNS.values()]
    lines = [",".join(header)]
    for _ in range(rows):
        rho = rng.uniform(0.3, 0.9)
        theta = rng.choice([0.0, 30.0, 60.0], size=3)
        theta[rng.integers(3)] = 45.0
        c = rho**2 * np.array([0.6, 0.15, 0.15, 0.6, 0.15, 0.6, 0.2, 0.2, 0.2])
        lines.append(",".join(f"{v:.6g}" for v in [rho, *theta, *c]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_published_csv_reads_as_rows_at_the_reference_fidelity(tmp_path: Path) -> None:
    csv = _published_csv(tmp_path / "data.csv")
    rho, theta, C = read_published(csv)
    assert rho.shape == (12,) and theta.shape == (12, 3) and C.shape == (12, 6, 6)
    np.testing.assert_allclose(C, np.swapaxes(C, 1, 2))
    data = load_published_data(csv)
    assert np.all(data.resolution == REFERENCE_RESOLUTION) and np.all(data.seed == -1)
    np.testing.assert_allclose(matrix_from_orthotropic9(data.stiffness), C)
    assert data.manifest["params"]["threshold"] == "ensemble"
    broken = tmp_path / "broken.csv"
    broken.write_text("volFrac,thetaX,thetaY,thetaZ\n0.5,0,0,90\n")
    with pytest.raises(MetainvError, match="column 'stiffness0' missing"):
        read_published(broken)


def test_fidelity_input_is_the_voxel_size() -> None:
    like = torch.zeros(3, 4)
    np.testing.assert_allclose(fidelity_feature(64, like).numpy(), 0.25)
    per_row = fidelity_feature(torch.tensor([16, 32, 64]), like)
    np.testing.assert_allclose(per_row[:, 0].numpy(), [1.0, 0.5, 0.25])
    single = SpinodoidForward(SpinodoidNetConfig())
    assert single.net[0].in_features == 4
    multi = SpinodoidForward(SpinodoidNetConfig(fidelity_resolution=64))
    assert multi.net[0].in_features == 5


def test_single_fidelity_data_do_not_mix(pair: tuple[Path, Path]) -> None:
    coarse, fine = (load_spinodoid_data(folder) for folder in pair)
    with pytest.raises(MetainvError, match="differ in resolution"):
        concatenate_data([coarse, fine])
    both = concatenate_data([coarse, fine], multi_fidelity=True)
    assert both.multi_fidelity and both.manifest["params"]["resolution"] == FINE
    assert sorted(set(both.resolution.tolist())) == [COARSE, FINE]
    # the same designs and fields at both resolutions: the pairs a correction is learned from
    np.testing.assert_array_equal(coarse.theta, fine.theta)
    np.testing.assert_array_equal(coarse.seed, fine.seed)
    assert not np.allclose(coarse.stiffness, fine.stiffness)


def test_multi_fidelity_model_predicts_at_the_finest_resolution(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    coarse, fine = pair
    csv = _published_csv(tmp_path / "data.csv")
    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        ["train", "spinodoid", "--data", str(coarse), "--data", str(fine), "--published",
         str(csv), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    # the published rows count as 22^3, the finest resolution of the three sources
    assert config["net"]["fidelity_resolution"] == REFERENCE_RESOLUTION
    assert config["data"]["fidelities"] == [COARSE, FINE, REFERENCE_RESOLUTION]
    assert config["data"]["resolution"] == REFERENCE_RESOLUTION
    manifest = json.loads((out / "manifest.json").read_text())
    sources = {entry["resolution"]: entry for entry in manifest["data"]}
    assert sources[REFERENCE_RESOLUTION]["rows"] == 12 and "sha256" in sources[22]
    assert sources[COARSE]["rows"] == sources[FINE]["rows"] == 8
    models = load_spinodoid_models(out)
    assert models.multi_fidelity and models.resolution == REFERENCE_RESOLUTION
    theta = load_spinodoid_data(fine).theta
    default = models.predict_stiffness(theta)
    np.testing.assert_allclose(default, models.predict_stiffness(theta, REFERENCE_RESOLUTION))
    assert not np.allclose(default, models.predict_stiffness(theta, COARSE))
    # validation metrics are taken on rows at the model's fidelity only
    assert manifest["metrics"]["rows"] <= 12


def test_training_two_resolutions_without_published_rows(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    metrics = train_job(list(pair), tmp_path / "m", TINY)
    models = load_spinodoid_models(tmp_path / "m")
    assert models.resolution == FINE and models.forward.fidelity_resolution == FINE
    assert 1 <= metrics["rows"] <= 8  # the validation rows at 10^3


def test_bad_published_file_is_a_one_line_error(pair: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(
        app,
        ["train", "spinodoid", "--data", str(pair[0]), "--published", str(bad),
         "--out", str(tmp_path / "m")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "column 'volFrac' missing" in result.output and "Traceback" not in result.output


def test_fe_correction_moves_the_design_the_right_way() -> None:
    """A realization 25 % stiffer than the f-NN (C_FE = 1.25 C_fNN) must be refined to a
    sparser design whose corrected stiffness meets the target."""
    models = load_spinodoid_models()
    theta = np.array([0.5, 0.0, 40.0, 60.0])
    target = matrix_from_orthotropic9(models.predict_stiffness(theta[None])[0])
    frame = np.eye(3)
    settings = SpinodoidDesignSettings(polish_steps=200)
    refined, turned = refine_design(models, theta, frame, target, 1.25 * target, settings)
    assert refined[0] < theta[0] - 0.02
    np.testing.assert_allclose(turned, frame, atol=0.02)  # nothing to turn: C_FE is aligned
    corrected = 1.25 * matrix_from_orthotropic9(models.predict_stiffness(refined[None])[0])
    assert float(nmse(target, corrected)) < 0.1 * float(nmse(target, 1.25 * target))


def test_fe_correction_turns_the_frame_back() -> None:
    """A realization whose FE stiffness is the target turned by 6 deg must be refined to a frame
    turned back by about that angle, and the corrected stiffness must then meet the target."""
    from scipy.spatial.transform import Rotation

    from metainv.spinodoid.learn.inverse import _angle_deg

    models = load_spinodoid_models()
    theta = np.array([0.45, 0.0, 30.0, 70.0])
    target = matrix_from_orthotropic9(models.predict_stiffness(theta[None])[0])
    Q = Rotation.from_rotvec(np.radians(6.0) * np.array([1.0, 2.0, 2.0]) / 3.0).as_matrix()
    C_fe = rotate_stiffness(target, Q)
    settings = SpinodoidDesignSettings(refine_rotation_deg=10.0)
    refined, frame = refine_design(models, theta, np.eye(3), target, C_fe, settings)
    assert abs(refined[0] - theta[0]) < 0.01
    assert abs(_angle_deg(frame) - 6.0) < 0.5
    assert _angle_deg(frame @ Q) < 0.5  # the turn undoes Q
    assert float(nmse(target, rotate_stiffness(C_fe, frame))) < 1e-3 * float(nmse(target, C_fe))
    # without turns only the density moves
    still = SpinodoidDesignSettings(refine_rotation_deg=0.0)
    np.testing.assert_array_equal(refine_design(models, theta, np.eye(3), target, C_fe, still)[1],
                                  np.eye(3))  # fmt: skip


@pytest.mark.parametrize("refined_error, kept_first", [(0.002, "refined"), (0.004, "before")])
def test_a_refinement_is_kept_only_if_it_wins_at_the_design_resolution(
    refined_error: float, kept_first: str
) -> None:
    from metainv.spinodoid import SpinodoidDesign
    from metainv.spinodoid.learn.inverse import SpinodoidCandidate, _keep_better_refinement

    def candidate(rho: float, error: float) -> SpinodoidCandidate:
        design = SpinodoidDesign(rho, [0, 0, 60])
        return SpinodoidCandidate(design, np.eye(6), np.eye(6), error, error)

    items = ["refined", "second", "before"]
    verified = [candidate(0.5, refined_error), candidate(0.6, 0.01), candidate(0.45, 0.003)]
    messages: list[str] = []
    kept, out = _keep_better_refinement(items, verified, 64, messages.append)
    assert kept == [kept_first, "second"]
    assert [c.nmse_fe for c in out] == [min(refined_error, 0.003), 0.01]
    assert f"{kept_first if kept_first == 'refined' else 'unrefined'} design kept" in messages[0]


def test_design_screens_coarse_and_verifies_at_the_model_resolution(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    from metainv.spinodoid.dataset import label_design
    from metainv.spinodoid.learn.inverse import design_for_target

    train_job(list(pair), tmp_path / "m", TINY)
    models = load_spinodoid_models(tmp_path / "m")
    target = matrix_from_orthotropic9(load_spinodoid_data(pair[1]).stiffness[0])
    settings = SpinodoidDesignSettings(
        top=1, pool=1, seeds=2, screen_resolution=COARSE, refine_steps=1, restarts=1,
        polish_steps=3,
    )  # fmt: skip
    steps: list[str] = []
    (candidate,), _ = design_for_target(models, target, settings, on_step=steps.append)
    assert any(f"FE at {COARSE}^3, best of 2 fields" in s for s in steps), steps
    assert any(s.startswith(f"verified at {FINE}^3") for s in steps), steps
    # the reported FE stiffness is that of the returned design (its seed) at the model's grid
    params = generation_parameters(FINE, models.threshold)
    np.testing.assert_allclose(candidate.C_fe, label_design(candidate.design, params)[0])
    assert candidate.nmse_fe == pytest.approx(float(nmse(target, candidate.C_fe)))


def test_design_does_not_depend_on_the_fe_threads(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """Screening and verification run their FE solves in worker threads; the designs, their
    fields and FE stiffness must be those of a run in one thread, in the same order (to
    rounding: one BLAS thread per solve sums in another order than several)."""
    from metainv.spinodoid.learn.inverse import design_for_target

    train_job(list(pair), tmp_path / "m", TINY)
    models = load_spinodoid_models(tmp_path / "m")
    target = matrix_from_orthotropic9(load_spinodoid_data(pair[1]).stiffness[3])
    runs = []
    for workers in (1, 2):
        settings = SpinodoidDesignSettings(
            top=2, pool=2, seeds=3, screen_resolution=COARSE, refine_steps=1, restarts=1,
            polish_steps=3, workers=workers,
        )  # fmt: skip
        runs.append(design_for_target(models, target, settings)[0])
    one, two = runs
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        assert a.design.seed == b.design.seed
        np.testing.assert_array_equal(a.design.theta, b.design.theta)
        assert a.design.relative_density == pytest.approx(b.design.relative_density, abs=1e-9)
        np.testing.assert_allclose(a.C_fe, b.C_fe, rtol=1e-6, atol=1e-9)
        assert a.connectivity == b.connectivity


def test_shipped_model_predicts_converged_stiffness_below_coarse_grids() -> None:
    """The shipped model is multi-fidelity at 64^3; voxel FE of solid networks converges from
    the stiff side (docs/spinodoid_convergence.md), so its coarse-grid predictions must lie
    above the converged ones, by more at low density (thinner struts, fewer voxels across)."""
    models = load_spinodoid_models()
    assert models.multi_fidelity and models.resolution == 64 and models.threshold == "exact"
    rng = np.random.default_rng(0)
    theta = np.column_stack([rng.uniform(0.2, 0.9, 200), rng.choice([0, 30, 60, 90], (200, 3))])
    theta[theta[:, 1:].max(axis=1) == 0, 3] = 90
    diagonal = [0, 3, 5, 6, 7, 8]  # C11 C22 C33 C44 C55 C66
    converged = models.predict_stiffness(theta)[:, diagonal]
    coarse = models.predict_stiffness(theta, REFERENCE_RESOLUTION)[:, diagonal]
    ratio = coarse / converged
    assert np.median(ratio) > 1.03 and np.mean(ratio > 1) > 0.9
    low, high = theta[:, 0] < 0.4, theta[:, 0] > 0.7
    assert np.median(ratio[low]) > np.median(ratio[high])
