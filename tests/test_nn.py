"""Networks: the generic layers, loop, split and artifacts of :mod:`metainv.nn`, and the truss
networks built on them (differentiability, Bond layers, Gumbel-softmax, a tiny end-to-end
training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metainv.nn.layers import BondRotation, MinMaxScaler, straight_through_gumbel_softmax
from metainv.tensors import (
    random_rotations,
    rotate_stiffness,
    rotate_tensor4,
    tensor_to_voigt,
    voigt_to_tensor,
)
from metainv.truss.learn.models import (
    TOPOLOGY_BLOCKS,
    ForwardConfig,
    ForwardModel,
    InverseConfig,
    InverseModel,
    topology_from_onehot,
    topology_onehot,
)


def random_inputs(batch: int, dtype=torch.float64, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    cells = torch.randint(1, 8, (batch, 3), generator=generator)
    tessellations = torch.randint(1, 3, (batch, 3), generator=generator)
    rng = np.random.default_rng(seed)
    return {
        "onehot": topology_onehot(cells, tessellations).to(dtype),
        "rho": torch.rand(batch, generator=generator, dtype=dtype) * 0.098 + 0.002,
        "U": torch.rand(batch, 3, generator=generator, dtype=dtype) * 1.5 + 0.5,
        "V": torch.rand(batch, 3, generator=generator, dtype=dtype) * 1.5 + 0.5,
        "R1": torch.as_tensor(random_rotations(batch, rng), dtype=dtype),
        "R2": torch.as_tensor(random_rotations(batch, rng), dtype=dtype),
    }


def small_forward() -> ForwardModel:
    torch.manual_seed(0)
    return ForwardModel(ForwardConfig(stage1_hidden=(8,), stage2_hidden=(8,))).double()


def test_forward_model_gradcheck_float64():
    model = small_forward()
    inputs = random_inputs(3)

    def stiffness(rho, U, V, R1, R2):
        return model(inputs["onehot"], rho, U, V, R1, R2)

    arguments = tuple(inputs[k].clone().requires_grad_(True) for k in ("rho", "U", "V", "R1", "R2"))
    assert torch.autograd.gradcheck(stiffness, arguments, eps=1e-6, atol=1e-7)


def test_forward_model_output_is_symmetric_and_rotates_covariantly():
    model = small_forward()
    inputs = random_inputs(4)
    C = model(**inputs)
    torch.testing.assert_close(C, C.transpose(-1, -2))
    extra = torch.as_tensor(random_rotations(4, np.random.default_rng(5)), dtype=torch.float64)
    rotated = model(**{**inputs, "R2": extra @ inputs["R2"]})
    torch.testing.assert_close(rotated, rotate_stiffness(C, extra), atol=1e-12, rtol=1e-10)


def test_bond_layer_matches_tensor_rotation():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 6, 6))
    C = A @ np.swapaxes(A, -1, -2)
    R = random_rotations(5, rng)
    layer = BondRotation()
    expected = tensor_to_voigt(rotate_tensor4(voigt_to_tensor(C), R))
    got = layer(torch.as_tensor(C), torch.as_tensor(R)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_straight_through_gumbel_is_one_hot_forward_with_gradients():
    logits = torch.randn(16, 27, dtype=torch.float64, requires_grad=True)
    sample = straight_through_gumbel_softmax(logits, 1.0, TOPOLOGY_BLOCKS)
    for block in sample.split([7, 7, 7, 2, 2, 2], dim=-1):
        assert torch.all(block.sum(-1) == 1)
        assert set(block.detach().unique().tolist()) <= {0.0, 1.0}
    weights = torch.randn(27, dtype=torch.float64)
    (sample * weights).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_high_temperature_flattens_topology_samples():
    logits = torch.zeros(4000, 27)
    logits[:, 0] = 5.0  # strongly prefers cell 1 in block S1
    cold = straight_through_gumbel_softmax(
        logits, 0.5, TOPOLOGY_BLOCKS, generator=torch.Generator().manual_seed(0)
    )
    hot = straight_through_gumbel_softmax(
        logits, 100.0, TOPOLOGY_BLOCKS, generator=torch.Generator().manual_seed(0)
    )
    # tempered posterior softmax(logits / tau): cold keeps the mode, hot is nearly uniform (1/7)
    assert cold[:, 0].mean() > 0.95
    assert 0.1 < hot[:, 0].mean() < 0.2


def test_topology_onehot_round_trip():
    cells = torch.tensor([[1, 7, 3], [2, 2, 6]])
    tessellations = torch.tensor([[1, 2, 2], [2, 1, 1]])
    back = topology_from_onehot(topology_onehot(cells, tessellations))
    assert torch.equal(back[0], cells) and torch.equal(back[1], tessellations)


def test_minmax_scaler_round_trip_and_range():
    values = torch.randn(100, 4, dtype=torch.float64) * 3 + 1
    scaler = MinMaxScaler(4).fit(values)
    scaled = scaler(values)
    assert scaled.min() >= -1 - 1e-12 and scaled.max() <= 1 + 1e-12
    torch.testing.assert_close(scaler.inverse(scaled), values)


def test_inverse_model_outputs_valid_designs():
    torch.manual_seed(0)
    model = InverseModel(InverseConfig(topology_hidden=(8,), geometry_hidden=(8,)))
    targets = torch.eye(6).expand(5, 6, 6) * 0.01
    outputs = model(targets, tau=1.0)
    assert torch.all((outputs["rho"] >= 0.002) & (outputs["rho"] <= 0.1))
    assert torch.all((outputs["U"] >= 0.5) & (outputs["U"] <= 2.0))
    identity = outputs["R1"] @ outputs["R1"].transpose(-1, -2)
    torch.testing.assert_close(identity, torch.eye(3).expand(5, 3, 3), atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from metainv.data import GenerationSpec, generate_dataset, generation_parameters

    folder = tmp_path_factory.mktemp("truss-data")
    spec = GenerationSpec("truss", 300, 150, 3, generation_parameters("truss"))
    generate_dataset(spec, folder, workers=1)
    return folder


def test_tiny_end_to_end_training_lowers_the_loss(tiny_dataset, tmp_path):
    from metainv.truss.learn.data import load_truss_tensors
    from metainv.truss.learn.train import TrainConfig, train_truss_models

    config = TrainConfig(
        batch_size=64,
        forward_epochs=6,
        inverse_epochs=3,
        early_stopping_patience=50,
        forward=ForwardConfig(stage1_hidden=(32, 32), stage2_hidden=(32, 32)),
        inverse=InverseConfig(topology_hidden=(32,), geometry_hidden=(32,)),
    )
    trained = train_truss_models(load_truss_tensors(tiny_dataset), config, tmp_path)
    for stage in ("F1", "F2"):
        history = trained.histories[stage]
        assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert len(trained.histories["G"]) == 3
    # resuming a finished run is a no-op that returns the same weights
    again = train_truss_models(load_truss_tensors(tiny_dataset), config, tmp_path)
    for a, b in zip(trained.forward.parameters(), again.forward.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_geometry_refit_keeps_the_topology_head_and_resumes_a_finished_run(tiny_dataset, tmp_path):
    from dataclasses import replace

    from metainv.truss.learn.data import load_truss_tensors
    from metainv.truss.learn.train import TrainConfig, component_loss, train_truss_models

    config = TrainConfig(
        batch_size=64,
        forward_epochs=2,
        inverse_epochs=2,
        early_stopping_patience=50,
        forward=ForwardConfig(stage1_hidden=(16,), stage2_hidden=(16,)),
        inverse=InverseConfig(topology_hidden=(16,), geometry_hidden=(16,)),
    )
    data = load_truss_tensors(tiny_dataset)
    first = train_truss_models(data, config, tmp_path)
    assert "G2-refit" not in first.histories
    refit = train_truss_models(data, replace(config, inverse_refit_epochs=3), tmp_path)
    assert len(refit.histories["G2-refit"]) == 3
    assert len(refit.histories["G"]) == 2  # the finished G stage was resumed, not redone
    for a, b in zip(first.inverse.g1.parameters(), refit.inverse.g1.parameters(), strict=True):
        torch.testing.assert_close(a, b)
        assert b.requires_grad
    changed = [
        not torch.equal(a, b)
        for a, b in zip(first.inverse.g2.parameters(), refit.inverse.g2.parameters(), strict=True)
    ]
    assert any(changed)
    # the component loss is the mean 1 - R^2 over the 21 constants
    target = torch.randn(50, 21)
    predicted = target + 0.3 * torch.randn(50, 21)
    variance = target.var(0, unbiased=False)
    from metainv.tensors import matrix_from_c21

    loss = component_loss(matrix_from_c21(target), matrix_from_c21(predicted), variance)
    r2 = 1 - (predicted - target).pow(2).mean(0) / variance
    torch.testing.assert_close(loss, (1 - r2).mean())


def test_second_stage_is_exactly_equivariant_under_axis_relabelling_and_reversal():
    """F2 sorts V, so relabelling the axes (and reversing them: a symmetry of diag(V)) turns
    its output like its input, whatever the weights."""
    from metainv.tensors import c21_from_matrix
    from metainv.truss.learn.models import axis_reversal_signs, stretch_order

    model = small_forward()
    inputs = random_inputs(5)
    rotated = rotate_stiffness(
        torch.eye(6, dtype=torch.float64).expand(5, 6, 6) + 0.1, inputs["R1"]
    )
    V = inputs["V"]
    base = model.stage2(rotated, V)
    for permutation in ([1, 2, 0], [2, 1, 0]):
        P = torch.eye(3, dtype=torch.float64)[permutation].expand(5, 3, 3)
        turned = model.stage2(rotate_stiffness(rotated, P), (P @ V[..., None])[..., 0])
        torch.testing.assert_close(turned, rotate_stiffness(base, P))
    # the sorting permutation sorts, and the four reversal sign patterns are what S . C gives
    order = stretch_order(V)
    assert torch.all(torch.diff((order @ V[..., None])[..., 0], dim=-1) >= 0)
    S = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
    torch.testing.assert_close(
        c21_from_matrix(rotate_stiffness(rotated, S)),
        c21_from_matrix(rotated) * axis_reversal_signs(torch.float64)[1],
    )


def test_inverse_model_in_material_frame_is_rotation_equivariant():
    """With the canonical frame, G(R . C) is G(C) with R2 turned by R: same stiffness turned."""
    torch.manual_seed(0)
    forward = small_forward()
    inverse = InverseModel(InverseConfig(topology_hidden=(8,), geometry_hidden=(8,))).double()
    inputs = random_inputs(6)
    target = forward(**inputs).detach()
    R = torch.as_tensor(random_rotations(6, np.random.default_rng(5)))
    logits = inverse.topology_logits(target)
    torch.testing.assert_close(inverse.topology_logits(rotate_stiffness(target, R)), logits)
    onehot = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).double()
    design = inverse.geometry(target, onehot)
    turned = inverse.geometry(rotate_stiffness(target, R), onehot)
    torch.testing.assert_close(turned["R2"], R @ design["R2"])
    torch.testing.assert_close(turned["rho"], design["rho"])


def test_forward_polish_lowers_every_targets_error_and_keeps_ranges():
    from metainv.truss.learn.inverse import polish_with_forward

    model = small_forward()
    truth, start = random_inputs(6, seed=1), random_inputs(6, seed=2)
    start["onehot"] = truth["onehot"]
    targets = model(**truth).detach()
    before_weights = [p.detach().clone() for p in model.parameters()]

    def errors(design):
        C = model(*(design[k] for k in ("onehot", "rho", "U", "V", "R1", "R2"))).detach()
        return (C - targets).flatten(1).pow(2).sum(-1) / targets.flatten(1).pow(2).sum(-1)

    assert polish_with_forward(model, targets, start, steps=0) is start
    polished = polish_with_forward(model, targets, start, steps=60, learning_rate=0.05)
    assert torch.all(errors(polished) <= errors(start))
    assert errors(polished).mean() < 0.5 * errors(start).mean()
    assert torch.all((polished["rho"] >= 0.002) & (polished["rho"] <= 0.1))
    assert torch.all((polished["V"] >= 0.5) & (polished["V"] <= 2.0))
    torch.testing.assert_close(polished["onehot"], start["onehot"])
    eye = torch.eye(3, dtype=torch.float64).expand(6, 3, 3)
    torch.testing.assert_close(polished["R2"] @ polished["R2"].transpose(-1, -2), eye)
    for before, after in zip(before_weights, model.parameters(), strict=True):
        assert torch.equal(before, after) and after.requires_grad
    with pytest.raises(ValueError, match="polish steps"):
        polish_with_forward(model, targets, start, steps=-1)


def test_train_job_stores_a_library_that_evaluate_and_design_use(tiny_dataset, tmp_path):
    import json
    from dataclasses import replace

    from metainv.truss.learn.artifacts import load_models
    from metainv.truss.learn.evaluate import EvaluationSettings
    from metainv.truss.learn.inverse import design_batch
    from metainv.truss.learn.jobs import evaluate_job, train_job
    from metainv.truss.learn.library import LIBRARY
    from metainv.truss.learn.train import TrainConfig

    config = TrainConfig(
        batch_size=64,
        forward_epochs=2,
        inverse_epochs=2,
        library_rows=120,
        forward=ForwardConfig(stage1_hidden=(16,), stage2_hidden=(16,)),
        inverse=InverseConfig(topology_hidden=(16,), geometry_hidden=(16,)),
    )
    out = tmp_path / "model"
    metrics = train_job(tiny_dataset, out, config)
    assert metrics["library_rows"] == 120
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["library"]["rows"] == 120 and (out / LIBRARY).exists()
    models = load_models(out)
    assert len(models.library) == 120
    settings = EvaluationSettings(fe_samples=4, polish_steps=2, library_neighbours=2)
    evaluated = evaluate_job(out, tiny_dataset, settings)
    for key in ("pipeline_r2_forward_model", "pipeline_r2_fe", "rotated_lookup_r2_fe"):
        assert np.isfinite(list(evaluated[key].values())).all()
    assert 0.0 <= evaluated["pipeline_library_share"] <= 1.0
    targets = np.stack([np.eye(6) * 1e-3, np.eye(6) * 2e-3])
    _, _, alone = design_batch(models, targets)
    _, _, with_library = design_batch(models, targets, library_neighbours=3)
    assert np.all(with_library <= alone + 1e-7)
    # a run without a library removes the stale file (all stages resume from checkpoints)
    train_job(tiny_dataset, out, replace(config, library_rows=0))
    assert not (out / LIBRARY).exists()


# ----------------------------------------------------------------------------- generic pieces


def test_split_is_deterministic_disjoint_and_covers_every_row():
    from metainv.nn.train import split_indices

    train, validation = split_indices(101, 0.1, seed=3)
    again = split_indices(101, 0.1, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(validation, again[1])
    assert len(validation) == 10 and not set(train) & set(validation)
    assert sorted([*train, *validation]) == list(range(101))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(validation) > 0)
    assert not np.array_equal(validation, split_indices(101, 0.1, seed=4)[1])
    # at least one row on each side
    assert [len(part) for part in split_indices(2, 0.001, 0)] == [1, 1]
    assert [len(part) for part in split_indices(2, 0.999, 0)] == [1, 1]


def test_torch_scope_restores_the_global_rng_and_thread_count():
    from metainv.nn.train import torch_scope

    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    with torch_scope(seed=7, threads=1):
        assert torch.get_num_threads() == 1
        inside = torch.rand(3)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), state)
    with torch_scope(seed=7):
        assert torch.equal(torch.rand(3), inside)


def test_loop_resumes_an_interrupted_stage_to_the_same_weights(tmp_path):
    from metainv.nn.layers import mlp
    from metainv.nn.train import LoopSettings, run_stage

    x = torch.linspace(-1, 1, 40)[:, None]
    y = torch.sin(3 * x)

    def run(checkpoint, stop_after=None):
        torch.manual_seed(0)
        model = mlp([1, 8, 1])

        def on_epoch(name, record):
            if record["epoch"] == stop_after:
                raise KeyboardInterrupt

        settings = LoopSettings(
            epochs=9, learning_rate=1e-2, batch_size=8, schedule="cosine", select_from_epoch=2
        )
        state = run_stage(
            "toy",
            model,
            lambda index, epoch: torch.mean((model(x[index]) - y[index]) ** 2),
            len(x),
            lambda: float(torch.mean((model(x) - y) ** 2)),
            settings,
            checkpoint,
            on_epoch,
        )
        return model, state

    reference, reference_state = run(None)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "toy.pt", stop_after=4)
    resumed, state = run(tmp_path / "toy.pt")
    assert [r["epoch"] for r in state.history] == list(range(1, 10))
    assert [r["train_loss"] for r in state.history] == [
        r["train_loss"] for r in reference_state.history
    ]
    for a, b in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_artifacts_dispatch_on_the_family_of_the_config(tmp_path):
    from metainv.errors import MetainvError
    from metainv.nn.artifacts import (
        WEIGHTS,
        load_artifact,
        read_artifact,
        register_builder,
        save_models,
    )

    network = torch.nn.Linear(2, 3)
    save_models(tmp_path, {"net": network}, {"family": "toy-family"}, {"seed": 1})
    register_builder("toy-family", lambda artifact: artifact)
    artifact = load_artifact(tmp_path)
    assert artifact.family == "toy-family" and artifact.manifest["seed"] == 1
    assert artifact.state_dicts["net"].keys() == network.state_dict().keys()
    assert torch.equal(artifact.state_dicts["net"]["weight"], network.weight.detach())
    with pytest.raises(MetainvError, match="not a truss one"):
        read_artifact(tmp_path, "truss")
    with pytest.raises(MetainvError, match="no model builder"):
        load_artifact(tmp_path, "unknown-family")
    (tmp_path / WEIGHTS).write_bytes((tmp_path / WEIGHTS).read_bytes()[:-1] + b" ")
    with pytest.raises(MetainvError, match="sha256"):
        load_artifact(tmp_path)


def test_shipped_models_load_through_the_registry():
    from metainv.nn.artifacts import load_artifact, read_artifact
    from metainv.spinodoid.learn.artifacts import load_spinodoid_models
    from metainv.truss.learn.artifacts import load_models

    for family, loader in (("truss", load_models), ("spinodoid", load_spinodoid_models)):
        models = loader()
        stored = read_artifact(None, family).state_dicts
        assert stored["forward"].keys() == models.forward.state_dict().keys()
        assert stored["inverse"].keys() == models.inverse.state_dict().keys()
        assert type(load_artifact(models.folder)) is type(models)
