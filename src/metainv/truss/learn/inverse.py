r"""Inverse design of truss lattices for a target stiffness, verified and refined by FE.

1. draw ``samples`` candidates from the variational inverse model (straight-through
   Gumbel-softmax at temperature ``tau``: large ``tau`` flattens the topology posterior and gives
   diverse topologies, main text and SI Sec. 3.F), plus the nearest designs of the model's
   rotation-aware library (:mod:`metainv.truss.learn.library`), when it has one;
2. rank them by the forward model's NMSE and keep the best *distinct* lattices (topologies
   compared as multisets of ``(cell, tessellation)``), a pool of ``top`` + 3;
3. verify each by FE homogenization (:mod:`metainv.truss.homogenize`) and return the ``top``
   best by FE NMSE (``verify=False``: the ``top`` best by the forward model, no FE);
4. refine (optional) each design's continuous parameters ``rho, U, V, R1, R2`` by gradient
   descent on the FE NMSE itself, through the differentiable homogenizer; parameters stay in
   range through sigmoids (``rho, U, V``) and the 6-D rotation representation (``R1, R2``).

Batch mode (a file of many targets) skips FE; :func:`polish_with_forward` optionally polishes
the same continuous parameters by gradient descent on the *forward model's* NMSE, in batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from metainv.errors import MetainvError
from metainv.targets import check_reachable_target, reachability_problem
from metainv.tensors import (
    nmse,
    rotation_from_6d,
    sixd_from_rotation,
)
from metainv.truss.design import (
    RELATIVE_DENSITY_RANGE,
    SOFTEST_STIFFNESS,
    STRETCH_RANGE,
    TrussDesign,
)
from metainv.truss.homogenize import BeamMaterial, homogenize, homogenize_lattice_torch
from metainv.truss.lattice import canonical_topology, periodic_lattice, strut_diameter
from metainv.truss.learn.artifacts import TrussModels
from metainv.truss.learn.decode import (
    designs_from_outputs,
    forward_inputs,
    inverse_decode,
    inverse_draw,
)
from metainv.truss.learn.library import DesignLibrary, library_designs
from metainv.truss.learn.models import ForwardModel, InverseModel, design_stiffness

logger = logging.getLogger(__name__)

#: The keys of a design in inverse-model output form
#: (:func:`metainv.truss.learn.library.library_outputs`).
DESIGN_KEYS = ("onehot", "rho", "U", "V", "R1", "R2")


@dataclass(frozen=True)
class DesignSettings:
    """samples: candidates drawn; tau: Gumbel temperature; top: designs returned; pool: distinct
    candidates verified (and refined) by FE, of which the ``top`` best by FE NMSE are returned
    (None: :meth:`pool_size`, tied to ``top``); verify: FE verification and refinement (off:
    the ``top`` best by the forward model, no FE at all); refine: polish by FE gradients;
    refine_steps: Adam steps per design; library_neighbours: nearest designs of the model's
    library added to the candidates; seed: reproducibility; printable: a constraint on the
    candidates (e.g. :class:`metainv.manufacturing.PrintConstraint`): designs it refuses never
    enter the pool, and a refinement it refuses is not taken."""

    samples: int = 10_000
    tau: float = 2.0
    top: int = 5
    pool: int | None = None
    verify: bool = True
    refine: bool = True
    refine_steps: int = 150
    refine_learning_rate: float = 0.05
    library_neighbours: int = 64
    seed: int = 0
    printable: Callable[[TrussDesign], bool] | None = None

    def pool_size(self) -> int:
        """Distinct candidates verified by FE: ``pool`` when set, else ``top + POOL_EXTRA``
        (a few more than asked for, since the forward model's ranking is not FE's)."""
        return max(self.top, self.pool if self.pool is not None else self.top + POOL_EXTRA)


#: Candidates verified by FE beyond ``top`` by default (:meth:`DesignSettings.pool_size`).
POOL_EXTRA = 3


@dataclass(frozen=True)
class Candidate:
    """One design with its forward-model and FE stiffness (6, 6) and NMSEs (the FE ones None
    when not verified)."""

    design: TrussDesign
    C_forward: np.ndarray
    C_fe: np.ndarray | None
    nmse_forward: float
    nmse_fe: float | None
    nmse_fe_before_refinement: float | None


def check_target(target: np.ndarray, max_relative_density: float) -> None:
    """Admissibility and reachability (too stiff or too soft) of a normalized target (raises
    with a clear message)."""
    check_reachable_target(target, max_relative_density, "lattice", SOFTEST_STIFFNESS)


def target_problem(target: np.ndarray) -> str | None:
    """Why a normalized target (6, 6) cannot be designed as a truss lattice (the checks of
    :func:`check_target`, one line), or None."""
    return reachability_problem(target, RELATIVE_DENSITY_RANGE[1], "lattice", SOFTEST_STIFFNESS)


def draw_candidates(
    models: TrussModels, target: np.ndarray, settings: DesignSettings
) -> tuple[list[TrussDesign], np.ndarray, np.ndarray]:
    """``samples`` inverse draws plus the ``library_neighbours`` nearest library designs rotated
    onto the target (when the model has a library), ranked by forward NMSE: designs,
    C_forward (N, 6, 6), NMSE (N,)."""
    generator = torch.Generator().manual_seed(settings.seed)
    targets = torch.as_tensor(target, dtype=torch.float32).expand(settings.samples, 6, 6)
    with torch.no_grad():
        outputs = models.inverse(targets, settings.tau, generator=generator)
        if models.library is not None and settings.library_neighbours > 0:
            neighbours = min(settings.library_neighbours, len(models.library))
            found, _ = library_designs(models.library, targets[:1], neighbours)
            outputs = {key: torch.cat([outputs[key], found[key]]) for key in DESIGN_KEYS}
        designs = designs_from_outputs(outputs)
        inputs = forward_inputs(designs)
        C_forward = models.forward(**inputs).double().numpy()
    errors = nmse(target[None], C_forward)
    order = np.argsort(errors)
    return [designs[i] for i in order], C_forward[order], errors[order]


def distinct_designs(
    designs: list[TrussDesign],
    top: int,
    keep: Callable[[TrussDesign], bool] | None = None,
) -> list[int]:
    """Indices of the first ``top`` designs (in rank order) with different lattices: topologies
    compared as multisets of ``(cell, tessellation)`` (the order of the three superimposed
    cells does not matter), so one design per lattice, the best ranked (of those ``keep``
    accepts, when given)."""
    chosen: list[int] = []
    seen: set[tuple[tuple[int, int], ...]] = set()
    for index, design in enumerate(designs):
        topology = canonical_topology(design.topology)
        if topology not in seen and (keep is None or keep(design)):
            seen.add(topology)
            chosen.append(index)
        if len(chosen) == top:
            break
    return chosen


def _logit(value: np.ndarray, bounds: tuple[float, float]) -> torch.Tensor:
    return _unit_logit(torch.as_tensor(np.array(value, dtype=float)), bounds)


def _bounded(raw: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    low, high = bounds
    return low + (high - low) * torch.sigmoid(raw)


def _unit_logit(values: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    low, high = bounds
    unit = ((values - low) / (high - low)).clamp(1e-4, 1 - 1e-4)
    return torch.log(unit / (1 - unit))


def polish_with_forward(
    forward_model: torch.nn.Module,
    targets: torch.Tensor,
    outputs: dict[str, torch.Tensor],
    steps: int,
    learning_rate: float = 0.02,
) -> dict[str, torch.Tensor]:
    r"""Polish inverse-model outputs by Adam on the forward model's NMSE, all targets at once.

    Each target ``b`` gets its own parameters (topology fixed): ``rho, U, V`` as logits of their
    ranges and ``R1, R2`` in the 6-D representation, and the summed per-target NMSE
    ``sum_b |F(d_b) - C_b|^2 / |C_b|^2`` is minimized, so targets do not interact.

    Args:
        forward_model: the frozen forward model F.
        targets: (B, 6, 6) normalized target stiffness.
        outputs: inverse-model outputs (``onehot`` (B, 21), ``rho`` (B,), ``U, V`` (B, 3),
            ``R1, R2`` (B, 3, 3)).
        steps: Adam steps (0 returns ``outputs`` unchanged).
        learning_rate: Adam step size in logit / 6-D units.

    Returns:
        A new output dict; per target the step with the lowest forward NMSE is kept.
    """
    if steps < 0:
        raise ValueError(f"polish steps must be >= 0, got {steps}")
    if steps == 0:
        return outputs
    targets = targets.detach().to(outputs["rho"].dtype)
    raw = {
        "rho": _unit_logit(outputs["rho"].detach(), RELATIVE_DENSITY_RANGE),
        "U": _unit_logit(outputs["U"].detach(), STRETCH_RANGE),
        "V": _unit_logit(outputs["V"].detach(), STRETCH_RANGE),
        "R1": sixd_from_rotation(outputs["R1"].detach()).clone(),
        "R2": sixd_from_rotation(outputs["R2"].detach()).clone(),
    }
    for value in raw.values():
        value.requires_grad_(True)
    trainable = [p for p in forward_model.parameters() if p.requires_grad]
    for parameter in trainable:  # no gradients into F (restored below)
        parameter.requires_grad_(False)
    try:
        return _polish_loop(forward_model, targets, outputs, raw, steps, learning_rate)
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


def _polish_loop(forward_model, targets, outputs, raw, steps, learning_rate):
    optimizer = torch.optim.Adam(raw.values(), lr=learning_rate)
    norms = targets.flatten(1).pow(2).sum(-1)
    best = {k: v.detach().clone() for k, v in outputs.items()}
    best_error = torch.full_like(norms, float("inf"))
    for _ in range(steps + 1):
        design = {
            "onehot": outputs["onehot"].detach(),
            "rho": _bounded(raw["rho"], RELATIVE_DENSITY_RANGE),
            "U": _bounded(raw["U"], STRETCH_RANGE),
            "V": _bounded(raw["V"], STRETCH_RANGE),
            "R1": rotation_from_6d(raw["R1"]),
            "R2": rotation_from_6d(raw["R2"]),
        }
        error = (design_stiffness(forward_model, design) - targets).flatten(1).pow(2).sum(-1)
        error = error / norms
        with torch.no_grad():
            improved = error < best_error
            best_error = torch.where(improved, error, best_error)
            for key in ("rho", "U", "V", "R1", "R2"):
                mask = improved.reshape(-1, *([1] * (design[key].dim() - 1)))
                best[key] = torch.where(mask, design[key], best[key])
        optimizer.zero_grad()
        error.sum().backward()
        optimizer.step()
    return best


def refine_design(
    design: TrussDesign,
    target: np.ndarray,
    steps: int,
    learning_rate: float,
    material: BeamMaterial = BeamMaterial(),
) -> tuple[TrussDesign, float]:
    """Polish ``rho, U, V, R1, R2`` by Adam on the FE NMSE (exact FE gradients).

    Returns the best design seen and its FE NMSE.
    """
    lattice = periodic_lattice(design.topology)
    target_t = torch.as_tensor(target, dtype=torch.float64)
    params = {
        "rho": _logit(design.relative_density, RELATIVE_DENSITY_RANGE).reshape(1),
        "U": _logit(design.U, STRETCH_RANGE),
        "V": _logit(design.V, STRETCH_RANGE),
        "R1": torch.as_tensor(sixd_from_rotation(design.R1), dtype=torch.float64),
        "R2": torch.as_tensor(sixd_from_rotation(design.R2), dtype=torch.float64),
    }
    for value in params.values():
        value.requires_grad_(True)
    optimizer = torch.optim.Adam(params.values(), lr=learning_rate)

    def evaluate() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = {
            "rho": _bounded(params["rho"], RELATIVE_DENSITY_RANGE)[0],
            "U": _bounded(params["U"], STRETCH_RANGE),
            "V": _bounded(params["V"], STRETCH_RANGE),
            "R1": rotation_from_6d(params["R1"]),
            "R2": rotation_from_6d(params["R2"]),
        }
        F = values["R2"] @ torch.diag(values["V"]) @ values["R1"] @ torch.diag(values["U"])
        diameter = strut_diameter(lattice, F, values["rho"])
        C = homogenize_lattice_torch(lattice, F[None], diameter.reshape(1), material)[0]
        loss = ((C - target_t) ** 2).sum() / (target_t**2).sum()
        return loss, values

    best_loss, best_values = float("inf"), None
    for _ in range(steps + 1):
        optimizer.zero_grad()
        loss, values = evaluate()
        if loss.item() < best_loss:
            best_loss = loss.item()
            best_values = {k: v.detach().numpy().copy() for k, v in values.items()}
        loss.backward()
        optimizer.step()
    refined = TrussDesign(
        topology=design.topology,
        relative_density=float(np.clip(best_values["rho"], *RELATIVE_DENSITY_RANGE)),
        U=np.clip(best_values["U"], *STRETCH_RANGE),
        V=np.clip(best_values["V"], *STRETCH_RANGE),
        R1=best_values["R1"],
        R2=best_values["R2"],
    )
    return refined, best_loss


def design_for_target(
    models: TrussModels,
    target: np.ndarray,
    settings: DesignSettings = DesignSettings(),
    on_step: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """The full design job for one normalized target (6, 6): candidates sorted by FE NMSE."""
    report = on_step or (lambda message: logger.info(message))
    check_target(target, RELATIVE_DENSITY_RANGE[1])
    start = time.perf_counter()
    designs, C_forward, errors = draw_candidates(models, target, settings)
    pool = settings.pool_size() if settings.verify else settings.top
    chosen = distinct_designs(designs, pool, settings.printable)
    if not chosen and settings.printable is not None:
        refusal = getattr(settings.printable, "refusal", None)
        if refusal is not None:
            raise refusal(designs)
        raise MetainvError("no drawn candidate meets the constraint on the designs")
    report(
        f"drew {settings.samples} candidates in {time.perf_counter() - start:.1f} s; "
        f"best forward NMSE {errors[0]:.4f}; {len(chosen)} distinct lattices kept"
        + ("" if len(chosen) >= settings.top else f" (fewer than --top {settings.top})")
    )
    if not settings.verify:
        return [
            Candidate(designs[i], C_forward[i], None, float(errors[i]), None, None) for i in chosen
        ]
    candidates = []
    for rank, index in enumerate(chosen):
        design = designs[index]
        C_fe = homogenize(design).C
        before = float(nmse(target, C_fe))
        after = before
        if settings.refine:
            refined, after = refine_design(
                design, target, settings.refine_steps, settings.refine_learning_rate
            )
            if after < before and (settings.printable is None or settings.printable(refined)):
                design = refined
                C_fe = homogenize(design).C
                after = float(nmse(target, C_fe))
            else:
                after = before
        with torch.no_grad():
            C_forward_design = models.forward(**forward_inputs([design]))[0].double().numpy()
        candidates.append(
            Candidate(
                design=design,
                C_forward=C_forward_design,
                C_fe=C_fe,
                nmse_forward=float(nmse(target, C_forward_design)),
                nmse_fe=after,
                nmse_fe_before_refinement=before,
            )
        )
        report(f"candidate {rank + 1}/{len(chosen)}: FE NMSE {before:.4f} -> {after:.4f}")
    if not candidates:
        raise MetainvError("the inverse model produced no candidate designs")
    candidates.sort(key=lambda c: c.nmse_fe)
    kept = distinct_designs([c.design for c in candidates], settings.top)
    return [candidates[i] for i in kept]


def _concatenate(outputs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.cat([o[key].detach() for o in outputs]) for key in DESIGN_KEYS}


def inverse_pipeline(
    forward: ForwardModel,
    inverse: InverseModel,
    library: DesignLibrary | None,
    targets: torch.Tensor,
    library_neighbours: int = 0,
    polish_steps: int = 0,
    tau: float | None = None,
    seed: int = 0,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    r"""Batch inverse design without FE: per target the best of several candidates by F.

    Candidates per target: the inverse model's design (``tau=None``: most probable topology;
    otherwise one Gumbel draw at ``tau``) and, when ``library_neighbours = k > 0`` and the model
    has a design library, the ``k`` nearest library designs rotated onto the target
    (:mod:`metainv.truss.learn.library`). With ``polish_steps > 0`` every candidate is polished by
    :func:`polish_with_forward` first. The winner has the lowest forward NMSE.

    Args:
        forward, inverse: the trained models; library: the design library or None.
        targets: (B, 6, 6) normalized target stiffness.

    Returns:
        outputs (design tensors, B rows), forward NMSE (B,), source (B,) int64: 0 the inverse
        model, ``j >= 1`` the j-th nearest library design.
    """
    if library_neighbours < 0:
        raise MetainvError(f"library neighbours must be >= 0, got {library_neighbours}")
    targets = torch.as_tensor(targets, dtype=torch.float32)
    with torch.no_grad():
        network = (
            inverse_decode(inverse, targets)
            if tau is None
            else inverse_draw(inverse, targets, tau, seed)
        )
    candidates = [network]
    if library_neighbours and library is not None:
        found, _ = library_designs(library, targets, library_neighbours)
        for j in range(library_neighbours):
            candidates.append({k: v[j::library_neighbours] for k, v in found.items()})
    stacked = _concatenate(candidates)
    repeated = targets.repeat(len(candidates), 1, 1)
    if polish_steps:
        stacked = polish_with_forward(forward, repeated, stacked, polish_steps)
    with torch.no_grad():
        errors = nmse(repeated, design_stiffness(forward, stacked))
    errors = errors.reshape(len(candidates), len(targets))
    best_error, source = errors.min(dim=0)
    pick = source * len(targets) + torch.arange(len(targets))
    return {key: value[pick] for key, value in stacked.items()}, best_error, source


def design_batch(
    models: TrussModels,
    targets: np.ndarray,
    seed: int = 0,
    tau: float | None = None,
    polish_steps: int = 0,
    library_neighbours: int = 0,
) -> tuple[list[TrussDesign], np.ndarray, np.ndarray]:
    """Fast batch mode (no FE): designs, C_forward (T, 6, 6), NMSE (T,).

    ``tau=None`` decodes deterministically (most probable topology); otherwise one Gumbel draw.
    ``polish_steps > 0`` polishes by :func:`polish_with_forward`; ``library_neighbours > 0`` adds
    that many library designs per target as candidates (:func:`inverse_pipeline`).
    """
    outputs, _, source = inverse_pipeline(
        models.forward,
        models.inverse,
        models.library,
        torch.as_tensor(targets),
        library_neighbours,
        polish_steps,
        tau,
        seed,
    )
    if library_neighbours and models.library is not None:
        share = float((source > 0).double().mean())
        logger.info("library designs won for %.1f %% of the targets", 100 * share)
    with torch.no_grad():
        C_forward = design_stiffness(models.forward, outputs).double().numpy()
    return designs_from_outputs(outputs), C_forward, nmse(np.asarray(targets), C_forward)


def write_design_outputs(
    target: np.ndarray,
    candidates: list[Candidate],
    folder,
    cells: int = 2,
    segments: int = 10,
) -> dict:
    """``designs.json`` plus, per candidate, an STL of a ``cells``^3 block and an
    elastic-surface comparison PNG (target vs FE). Returns the JSON document."""
    from pathlib import Path

    from metainv.truss.design import design_to_dict
    from metainv.truss.export import export_stl
    from metainv.viz import plot_elastic_surface

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    document = {"target": np.asarray(target).tolist(), "candidates": []}
    for rank, candidate in enumerate(candidates, start=1):
        stem = f"candidate_{rank:02d}"
        export_stl(candidate.design, folder / f"{stem}.stl", cells=(cells,) * 3, segments=segments)
        plot_elastic_surface(
            target,
            folder / f"{stem}_surface.png",
            compare=candidate.C_fe,
            labels=("target", f"design {rank} (FE)"),
            title=f"candidate {rank}: FE NMSE {candidate.nmse_fe:.4f}",
        )
        document["candidates"].append(
            {
                "design": design_to_dict(candidate.design),
                "C_forward": candidate.C_forward.tolist(),
                "C_fe": candidate.C_fe.tolist(),
                "nmse_forward": candidate.nmse_forward,
                "nmse_fe": candidate.nmse_fe,
                "nmse_fe_before_refinement": candidate.nmse_fe_before_refinement,
                "stl": f"{stem}.stl",
                "surface_png": f"{stem}_surface.png",
            }
        )
    import json

    (folder / "designs.json").write_text(json.dumps(document, indent=2))
    return document
