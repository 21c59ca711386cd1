r"""Inverse design of spinodoids for a target stiffness, verified by voxel FE.

Spinodoids are orthotropic in the frame of their cones (paper Sec. "Tunable anisotropic
material behavior": 9 constants ``S``); a rotation ``R`` extends the design space to arbitrary
principal directions, ``C = K(R) C_aligned K(R)^T`` (paper, below Eq. 5; :mod:`metainv.tensors`
Bond rotation; the design's ``rotation`` turns the wave vectors, ``n -> R n``, which rotates C
the same way). The job for a normalized target ``C_t`` (6, 6):

1. fit the frame: the rotation ``R`` minimizing the non-orthotropic part of
   ``K(R)^T C_t K(R)`` (relative Frobenius norm, :func:`orthotropic_residual`), by BFGS on the
   rotation vector from the identity and ``restarts`` random starts; for an axis-aligned
   orthotropic target the identity (residual 0) is kept;
2. for the fitted frame and the identity, and each of the 6 axis permutations of the frame
   (orthotropic constants are invariant under sign flips, so these are all the distinct
   labellings), query the i-NN with ``S`` of the target in that frame (paper Eq. 7 model),
   snap its angles and polish ``Theta`` by gradient descent of the f-NN NMSE (angles snapped
   straight-through);
3. rank by the f-NN NMSE of the full 6x6 target, keep the ``pool`` best distinct designs;
4. screen each by voxel FE: ``seeds`` field realizations at ``screen_resolution`` (24^3, a
   fidelity the f-NN was trained at; 0.4 s against 5-11 s at 64^3), the FE stiffness carried
   to the design resolution by the multi-fidelity f-NN's ratio ``S(64) / S(24)`` (a
   single-fidelity model screens at its own resolution), keeping the best realization (the
   design file records its seed, so the part made from it is that realization);
5. refine the density and the frame of the best one, FE-corrected, on its field
   (:func:`refine_design`, our extension; the cone angles stay, as they decide the field):
   ``refine_steps`` rounds, each checked by FE at the screening resolution; the refined
   design and the one it came from are both verified at the model's resolution (in parallel
   on two cores) and the better one is kept;
6. verify the ``top`` best by FE at the model's resolution (the converged 64^3 for the
   shipped model) and sort by that FE NMSE, designs whose solid is one connected network
   spanning the cell (:func:`solid_connectivity`, at the STL's 48^3) first: below rho of about
   0.25 (our low-density extension) a spinodoid can fall apart into separate columns or
   islands whose FE stiffness comes from the boundary conditions alone.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metainv.spinodoid.design import RELATIVE_DENSITY_RANGE, SpinodoidDesign, design_to_dict
from metainv.spinodoid.learn.nets import snap_angles, snap_design
from metainv.targets import check_reachable_target
from metainv.tensors import (
    matrix_from_orthotropic9,
    nmse,
    orthotropic9_from_matrix,
    rotate_stiffness,
)

logger = logging.getLogger(__name__)

#: Voxels per cell edge of the STL written for each design (and of its connectivity check).
STL_RESOLUTION = 48
#: Entries of a Voigt matrix that vanish for an orthotropic material in its own frame.
_NON_ORTHOTROPIC = np.ones((6, 6), dtype=bool)
_NON_ORTHOTROPIC[:3, :3] = False
_NON_ORTHOTROPIC[np.arange(3, 6), np.arange(3, 6)] = False


@dataclass(frozen=True)
class SpinodoidDesignSettings:
    """top: designs returned (each verified by FE at ``resolution``); pool: candidates screened
    by FE; seeds: field realizations screened per candidate; screen_resolution: FE voxels per
    edge of the screening and refinement, with a multi-fidelity f-NN (which carries C from there
    to ``resolution``; ``None``: screen at ``resolution``); restarts: random starts of the
    frame fit; polish_steps: Adam steps of the f-NN polish (0: none) of the ``polished`` best
    i-NN designs; resolution: FE voxels per edge of the verification (None: the model's, the
    converged 64^3 for the shipped multi-fidelity model); refine_steps: FE-corrected
    refinements of the best screened design's density and frame (:func:`refine_design`);
    refine_rotation_deg: largest turn of the frame per refinement and axis (0: density only);
    verify: FE screening and verification; seed: random starts and realizations; workers: FE
    solves run at the same time in threads (``None``: one per CPU core; the results do not
    depend on it, to rounding)."""

    top: int = 3
    pool: int = 2
    seeds: int = 4
    screen_resolution: int | None = 24
    restarts: int = 16
    polish_steps: int = 150
    polish_learning_rate: float = 0.05
    polished: int = 4
    resolution: int | None = None
    refine_steps: int = 2
    refine_rotation_deg: float = 10.0
    verify: bool = True
    seed: int = 0
    workers: int | None = None


@dataclass(frozen=True)
class FrameFit:
    """The fitted frame: rotation (3, 3), residuals of the fitted and of the identity frame."""

    rotation: np.ndarray
    residual: float
    residual_identity: float
    angle_deg: float


@dataclass(frozen=True)
class SpinodoidCandidate:
    """One design with its f-NN and FE stiffness (6, 6), NMSEs against the target and the
    :func:`solid_connectivity` of its part (``None`` when not computed)."""

    design: SpinodoidDesign
    C_forward: np.ndarray
    C_fe: np.ndarray | None
    nmse_forward: float
    nmse_fe: float | None
    connectivity: dict[str, Any] | None = None


def orthotropic_residual(C: np.ndarray) -> float:
    """``|C_non-orthotropic|_F^2 / |C|_F^2``: 0 for an orthotropic C in its own frame."""
    C = np.asarray(C, dtype=float)
    return float(np.sum(C[_NON_ORTHOTROPIC] ** 2) / np.sum(C**2))


def _rotation(vector: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(vector).as_matrix()


def _angle_deg(rotation: np.ndarray) -> float:
    """Rotation angle (degrees) of a proper rotation (3, 3)."""
    return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0))))


def fit_orthotropic_frame(target: np.ndarray, restarts: int = 16, seed: int = 0) -> FrameFit:
    """The rotation ``R`` whose frame makes ``K(R)^T C K(R)`` most nearly orthotropic.

    BFGS on the rotation vector from the identity and ``restarts`` random rotations; among
    the minima within 1e-9 of the best, the one with the smallest rotation angle is kept.
    """
    from scipy.optimize import minimize
    from scipy.spatial.transform import Rotation

    target = np.asarray(target, dtype=float)

    def residual(vector: np.ndarray) -> float:
        return orthotropic_residual(rotate_stiffness(target, _rotation(vector).T))

    starts = [np.zeros(3)]
    if restarts > 0:
        starts += list(Rotation.random(restarts, random_state=seed).as_rotvec())
    found = []
    for start in starts:
        result = minimize(residual, start, method="BFGS", options={"gtol": 1e-10})
        found.append((float(result.fun), Rotation.from_rotvec(result.x)))
    best = min(value for value, _ in found)
    close = [rotation for value, rotation in found if value <= best + 1e-9]
    chosen = min(close, key=lambda rotation: rotation.magnitude())
    return FrameFit(
        rotation=chosen.as_matrix(),
        residual=float(residual(chosen.as_rotvec())),
        residual_identity=orthotropic_residual(target),
        angle_deg=float(np.degrees(chosen.magnitude())),
    )


def axis_permutations() -> list[np.ndarray]:
    """The 6 proper rotations that permute the coordinate axes (up to sign)."""
    out = []
    for order in permutations(range(3)):
        P = np.eye(3)[:, list(order)]
        out.append(P * np.sign(np.linalg.det(P)))
    return out


def check_target(target: np.ndarray, max_relative_density: float) -> None:
    """Admissibility and reachability of a normalized target (raises with a clear message)."""
    check_reachable_target(target, max_relative_density, "spinodoid")


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-4, 1 - 1e-4)
    return torch.log(p / (1 - p))


def polish_design(
    models: Any,
    theta_design: np.ndarray,
    target: np.ndarray,
    frame: np.ndarray,
    steps: int,
    learning_rate: float,
    resolution: int | None = None,
) -> tuple[np.ndarray, float]:
    """Gradient descent of the f-NN NMSE of the rotated design against the full target.

    ``Theta`` is kept in range through sigmoids; angles are snapped straight-through
    (:func:`metainv.spinodoid.learn.nets.snap_design`). A multi-fidelity f-NN is queried at
    ``resolution`` (default: its converged one). Returns the best snapped ``Theta`` (4,) and its
    f-NN NMSE.
    """
    low = models.inverse.low.double()
    span = models.inverse.span.double()
    target_t = torch.as_tensor(target, dtype=torch.float64)
    frame_t = torch.as_tensor(frame, dtype=torch.float64)

    def error(theta: torch.Tensor) -> torch.Tensor:
        S = models.forward(theta.float()[None], resolution)[0].double()
        C = rotate_stiffness(matrix_from_orthotropic9(S), frame_t)
        return nmse(target_t, C)

    start = np.asarray(theta_design, dtype=float).copy()
    start[1:] = snap_angles(start[1:])
    with torch.no_grad():
        best_error = float(error(torch.as_tensor(start)))
    best = start
    if steps <= 0:
        return best, best_error
    raw = _logit((torch.as_tensor(start) - low) / span).requires_grad_(True)
    optimizer = torch.optim.Adam([raw], lr=learning_rate)
    for _ in range(steps):
        theta = snap_design(low + span * torch.sigmoid(raw))
        loss = error(theta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        if value < best_error:
            best_error, best = value, theta.detach().numpy().copy()
    best[1:] = snap_angles(best[1:])
    return best, best_error


def _forward_candidates(
    models: Any, target: np.ndarray, fit: FrameFit, settings: SpinodoidDesignSettings
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(f-NN NMSE, Theta, frame) for every frame and axis permutation, best first; the
    ``settings.polished`` best i-NN designs are polished by the f-NN."""
    frames = [fit.rotation]
    if fit.angle_deg > 1e-6:
        frames.append(np.eye(3))
    resolution = settings.resolution
    out = []
    for base in frames:
        for permutation in axis_permutations():
            frame = base @ permutation
            S = orthotropic9_from_matrix(rotate_stiffness(target, frame.T))
            theta = models.predict_designs(S[None])[0]
            out.append((_forward_error(models, theta, target, frame, resolution), theta, frame))
    out.sort(key=lambda item: item[0])
    for index, (_, theta, frame) in enumerate(out[: settings.polished]):
        theta, error = polish_design(
            models,
            theta,
            target,
            frame,
            settings.polish_steps,
            settings.polish_learning_rate,
            resolution,
        )
        out[index] = (error, theta, frame)
    out.sort(key=lambda item: item[0])
    return out


def _forward_error(
    models: Any, theta: np.ndarray, target: np.ndarray, frame: np.ndarray, resolution: int | None
) -> float:
    S = models.predict_stiffness(theta[None], resolution)[0]
    return float(nmse(target, rotate_stiffness(matrix_from_orthotropic9(S), frame)))


def refine_design(
    models: Any,
    theta: np.ndarray,
    frame: np.ndarray,
    target: np.ndarray,
    C_fe: np.ndarray,
    settings: SpinodoidDesignSettings,
    fe_resolution: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One FE-corrected refinement of the density and the frame of a design (our extension; a
    defect correction). Returns the refined ``Theta`` (4,) and frame (3, 3).

    The FE stiffness ``C_fe`` (6, 6) of one realization at ``fe_resolution`` (default: the
    design resolution), in the design's frame, differs from the f-NN's at that resolution by
    the factors ``r = S_FE / S_fNN(Theta)`` (9,) on its orthotropic entries (the
    realization's own deviation plus the f-NN's error) and by small non-orthotropic entries
    (the realization is not exactly orthotropic). The cone angles stay fixed: with them and
    the seed fixed the wave directions and phases stay the same (they are drawn by rejection
    from the cones, :func:`metainv.spinodoid.field.sample_wave_directions`), so

    * a change of ``rho`` only moves the level, and ``r`` stays about the same (also across
      resolutions): the corrected model is ``r * S_fNN(rho')`` with the realization's
      non-orthotropic entries kept;
    * an extra rotation ``Q`` of the frame turns the wave vectors, ``n -> Q n``, so the field
      is the old one turned about the cell's corner (the field's origin) and, for a small
      turn, its stiffness turns with it, ``C -> K(Q) C K(Q)^T``; the cell then holds a
      somewhat different part of the field, so the turn is bounded by
      ``settings.refine_rotation_deg`` (64^3 realizations, unbounded turns of the FE
      stiffness: turns of 8-20 deg kept their predicted gain by FE on 3 of 3 designs, turns
      of 30-55 deg on 2 of 7).

    The new ``(rho, Q)`` minimize the NMSE of the corrected, turned stiffness against the
    target (Powell within bounds: ``rho`` within 0.1 of the old one, each rotation-vector
    component within ``refine_rotation_deg``); the caller checks the result by FE with the
    same seed and keeps it only if the NMSE drops.
    """
    from scipy.optimize import minimize

    local = rotate_stiffness(C_fe, frame.T)
    measured = settings.resolution if fe_resolution is None else fe_resolution
    S_model = models.predict_stiffness(theta[None], measured)[0]
    S_fe = orthotropic9_from_matrix(local)
    ratio = np.clip(S_fe / np.where(np.abs(S_model) > 1e-9, S_model, 1e-9), 0.5, 2.0)
    low, high = (float(v) for v in models.config["data"]["relative_density"])
    turn = np.radians(max(0.0, float(settings.refine_rotation_deg)))

    def stiffness(x: np.ndarray) -> np.ndarray:
        trial = np.concatenate([[x[0]], theta[1:]])
        S = models.predict_stiffness(trial[None], settings.resolution)[0] * ratio
        corrected = np.where(_NON_ORTHOTROPIC, local, matrix_from_orthotropic9(S))
        return rotate_stiffness(corrected, _rotation(x[1:] * turn) @ frame)

    def error(x: np.ndarray) -> float:
        return float(nmse(target, stiffness(x)))

    bounds = [(max(low, theta[0] - 0.1), min(high, theta[0] + 0.1))] + [(-1.0, 1.0)] * 3
    start = np.array([np.clip(theta[0], *bounds[0]), 0.0, 0.0, 0.0])
    if turn == 0:
        bounds[1:] = [(0.0, 0.0)] * 3
    result = minimize(error, start, method="Powell", bounds=bounds, options={"xtol": 1e-4})
    x = result.x if result.fun < error(start) else start
    return np.concatenate([[float(x[0])], theta[1:]]), _rotation(x[1:] * turn) @ frame


def _distinct(items: list[tuple[float, np.ndarray, np.ndarray]], count: int) -> list[int]:
    """Indices of the first ``count`` items whose rotated designs differ (rho by > 0.01 or
    the cone axes' angles by > 2 deg)."""
    kept: list[int] = []
    signatures: list[tuple[float, np.ndarray]] = []
    for index, (_, theta, frame) in enumerate(items):
        # direction-weighted cone signature in the global frame: sum_j theta_j e_j e_j^T
        cones = frame @ np.diag(theta[1:]) @ frame.T
        if any(
            abs(theta[0] - rho) < 0.01 and np.max(np.abs(cones - other)) < 2.0
            for rho, other in signatures
        ):
            continue
        kept.append(index)
        signatures.append((float(theta[0]), cones))
        if len(kept) == count:
            break
    return kept


def reachability_note(
    models: Any, target: np.ndarray, theta: np.ndarray, frame: np.ndarray
) -> str | None:
    """A message when the best design sits at a density bound and its f-NN stiffness would
    have to be scaled by a factor far from 1 to fit the target (the target lies outside the
    design space: too soft or too stiff); ``None`` otherwise."""
    low, high = models.config["data"]["relative_density"]
    S = models.predict_stiffness(theta[None])[0]
    C = rotate_stiffness(matrix_from_orthotropic9(S), frame)
    scale = float(np.sum(target * C) / np.sum(C * C))  # least-squares factor target ~ scale C
    if theta[0] <= low + 1e-3 and scale < 0.7:
        return (
            f"the target is softer than any spinodoid with rho >= {low:g}: the best design "
            f"sits at rho = {low:g} and is {1 / scale:.1f}x too stiff (a lower base modulus, "
            "i.e. a stiffer normalized target, is within reach)"
        )
    if theta[0] >= high - 1e-3 and scale > 1.3:
        return (
            f"the target is stiffer than any spinodoid with rho <= {high:g}: the best design "
            f"sits at rho = {high:g} and reaches {1 / scale:.2f} of the target's stiffness"
        )
    return None


def cube_rotations() -> list[np.ndarray]:
    """The 24 proper rotations that map the coordinate axes onto themselves (up to sign)."""
    out = []
    for P in axis_permutations():
        for signs in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
            out.append(P * np.array(signs))
    return out


def canonical_frame(theta: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same spinodoid expressed with the frame closest to the identity.

    The cone set of Eq. 2 is symmetric under axis sign flips, so ``(theta, F)`` and
    ``(theta[pi], F G^T)`` describe the same design for every cube rotation ``G`` (``pi``: the
    axis permutation of ``G``). Returns ``(theta' (4,), F')`` with the smallest rotation angle.
    """
    best = None
    for G in cube_rotations():
        candidate = frame @ G.T
        angle = _angle_deg(candidate)
        if best is None or angle < best[0] - 1e-7:
            order = np.argmax(np.abs(G), axis=1)  # row k of G picks axis pi(k)
            best = (angle, np.concatenate([theta[:1], theta[1:][order]]), candidate)
    return best[1], best[2]


def _design(theta: np.ndarray, frame: np.ndarray, seed: int) -> SpinodoidDesign:
    theta, frame = canonical_frame(theta, frame)
    rotation = None if np.allclose(frame, np.eye(3), atol=1e-12) else frame
    return SpinodoidDesign(
        relative_density=float(np.clip(theta[0], *RELATIVE_DENSITY_RANGE)),
        theta=[float(round(t, 4)) for t in theta[1:]],
        rotation=rotation,
        seed=int(seed),
    )


def design_for_target(
    models: Any,
    target: np.ndarray,
    settings: SpinodoidDesignSettings = SpinodoidDesignSettings(),
    on_step: Callable[[str], None] | None = None,
) -> tuple[list[SpinodoidCandidate], FrameFit]:
    """The design job for one normalized target (6, 6) (module docstring).

    ``models``: :class:`metainv.spinodoid.learn.nets.SpinodoidModels`. Returns the candidates
    sorted by FE NMSE (by f-NN NMSE without verification), connected designs first, and the
    frame fit.
    """

    report = on_step or (lambda message: logger.info(message))
    target = np.asarray(target, dtype=float)
    check_target(target, float(models.config["data"]["relative_density"][1]))
    start = time.perf_counter()
    fit = fit_orthotropic_frame(target, settings.restarts, settings.seed)
    report(
        f"frame fit: rotation by {fit.angle_deg:.1f} deg; non-orthotropic part "
        f"{fit.residual_identity:.2e} -> {fit.residual:.2e} ({time.perf_counter() - start:.1f} s)"
    )
    ranked = _forward_candidates(models, target, fit, settings)
    chosen = _distinct(
        ranked, max(settings.pool, settings.top) if settings.verify else settings.top
    )
    report(
        f"{len(ranked)} i-NN designs (frames x axis permutations, polished by the f-NN); best "
        f"f-NN NMSE {ranked[0][0]:.4f}; {len(chosen)} distinct kept"
    )
    note = reachability_note(models, target, ranked[0][1], ranked[0][2])
    if note:
        report(note)
    resolution = settings.resolution or models.resolution
    screen = _screen_resolution(models, settings, resolution)
    workers = _workers(settings)
    rng = np.random.default_rng(settings.seed)
    seeds = [
        [int(v) for v in rng.integers(0, 2**31 - 1, size=max(1, settings.seeds))] for _ in chosen
    ]
    if settings.verify:
        fields = [
            _design(ranked[index][1], ranked[index][2], seed)
            for index, own in zip(chosen, seeds, strict=True)
            for seed in own
        ]
        stiffness = iter(_fe_stiffnesses(fields, screen, models.threshold, workers))
    screened = []
    for rank, (index, own) in enumerate(zip(chosen, seeds, strict=True), start=1):
        error, theta, frame = ranked[index]
        if not settings.verify:
            screened.append(_Screened(theta, frame, 0, float(error), None, screen))
            continue
        measured = [next(stiffness) for _ in own]
        item = _best_field(models, target, theta, frame, own, measured, screen, resolution)
        report(
            f"candidate {rank}/{len(chosen)}: rho {theta[0]:.3f}, theta "
            f"({', '.join(f'{t:.1f}' for t in theta[1:])}) deg: f-NN NMSE {error:.4f}; FE at "
            f"{screen}^3, best of {len(own)} fields: NMSE {item.nmse:.4f}"
            + (f" (scaled to {resolution}^3 by the f-NN)" if screen != resolution else "")
        )
        screened.append(item)
    screened.sort(key=lambda item: item.nmse)
    unrefined = None
    if settings.verify and settings.refine_steps > 0:
        refined = _refine(models, target, screened[0], screen, resolution, settings, report)
        unrefined = None if refined is screened[0] else screened[0]
        screened[0] = refined
    kept = screened[: settings.top] + ([] if unrefined is None else [unrefined])
    verified = _thread_map(
        lambda item: _candidate(models, target, item, resolution, settings.verify),
        kept,
        workers,
        cost=[-item.theta[0] for item in kept],
    )
    if unrefined is not None:
        kept, verified = _keep_better_refinement(kept, verified, resolution, report)
    candidates = []
    for item, candidate in zip(kept, verified, strict=True):
        if settings.verify and screen != resolution:
            report(
                f"verified at {resolution}^3: rho {item.theta[0]:.3f}, FE NMSE "
                f"{candidate.nmse_fe:.4f}"
            )
        if not candidate.connectivity["connected"]:
            report(
                f"rho {item.theta[0]:.3f} is not one connected network at {STL_RESOLUTION}^3 "
                f"(largest component {candidate.connectivity['largest_share']:.0%} of the "
                "solid): ranked after the connected ones"
            )
        candidates.append(candidate)
    score = (lambda c: c.nmse_fe) if settings.verify else (lambda c: c.nmse_forward)
    candidates.sort(key=lambda c: (not c.connectivity["connected"], score(c)))
    return candidates, fit


def _keep_better_refinement(
    kept: list[Any], verified: list[SpinodoidCandidate], resolution: int, report: Callable
) -> tuple[list[Any], list[SpinodoidCandidate]]:
    """The refined design (first) and the one it came from (last) were both verified at the
    design resolution: keep the one with the lower FE NMSE in the first place, drop the other.
    (A refinement is accepted on the screening grid, where the FE correction is measured;
    without this check, 7 of 32 benchmark targets ended worse at 64^3 than with the
    density-only refinement, docs/spinodoid_design.md.)"""
    refined, before = verified[0], verified[-1]
    better = refined.nmse_fe <= before.nmse_fe
    report(
        f"refinement verified at {resolution}^3: FE NMSE {refined.nmse_fe:.4f} against "
        f"{before.nmse_fe:.4f} before it ({'refined' if better else 'unrefined'} design kept)"
    )
    if not better:
        kept, verified = [kept[-1], *kept[1:]], [before, *verified[1:]]
    return kept[:-1], verified[:-1]


@dataclass(frozen=True)
class _Screened:
    """A candidate ``(Theta, frame)`` with its chosen field seed, the NMSE of its FE
    stiffness at the screening resolution scaled to the design resolution, and that FE
    stiffness (6, 6) (``None`` without verification)."""

    theta: np.ndarray
    frame: np.ndarray
    seed: int
    nmse: float
    C_screen: np.ndarray | None
    screen: int


def _screen_resolution(models: Any, settings: SpinodoidDesignSettings, resolution: int) -> int:
    """FE resolution of seed screening and refinement: ``settings.screen_resolution`` for a
    multi-fidelity f-NN (which knows how C changes between the two), else the design's."""
    if not models.multi_fidelity or settings.screen_resolution is None:
        return resolution
    return min(int(settings.screen_resolution), resolution)


def _to_resolution(
    models: Any, C: np.ndarray, theta: np.ndarray, frame: np.ndarray, screen: int, resolution: int
) -> np.ndarray:
    """FE stiffness (6, 6) at ``screen``^3 carried to ``resolution``^3: its 9 orthotropic
    entries in the design's frame times the f-NN's ``S(resolution) / S(screen)``."""
    if screen == resolution:
        return C
    coarse, fine = (models.predict_stiffness(theta[None], n)[0] for n in (screen, resolution))
    ratio = matrix_from_orthotropic9(fine / np.where(np.abs(coarse) > 1e-9, coarse, 1e-9))
    local = rotate_stiffness(C, frame.T)
    local = np.where(ratio != 0, local * ratio, local)
    return rotate_stiffness(local, frame)


def _best_field(
    models: Any,
    target: np.ndarray,
    theta: np.ndarray,
    frame: np.ndarray,
    seeds: list[int],
    stiffness: list[np.ndarray],
    screen: int,
    resolution: int,
) -> _Screened:
    """The best of the field realizations ``seeds`` with FE stiffness ``stiffness`` (6, 6) at
    ``screen``^3, each scaled to ``resolution``^3 (:func:`_to_resolution`)."""
    best = None
    for seed, C in zip(seeds, stiffness, strict=True):
        estimate = _to_resolution(models, C, theta, frame, screen, resolution)
        value = float(nmse(target, estimate))
        if best is None or value < best.nmse:
            best = _Screened(theta, frame, seed, value, C, screen)
    return best


def _fe_stiffnesses(
    designs: list[SpinodoidDesign], resolution: int, threshold: str, workers: int
) -> list[np.ndarray]:
    """FE stiffness (6, 6) of each design at ``resolution``^3 (in ``workers`` threads)."""
    from metainv.spinodoid.dataset import generation_parameters, label_design

    params = generation_parameters(resolution, threshold)
    return _thread_map(
        lambda design: label_design(design, params)[0],
        designs,
        workers,
        cost=[-design.relative_density for design in designs],
    )


def _workers(settings: SpinodoidDesignSettings) -> int:
    """Threads for the FE solves: ``settings.workers``, or one per CPU core."""
    if settings.workers is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    return max(1, int(settings.workers))


def _thread_map(
    function: Callable[[Any], Any], items: list[Any], workers: int, cost: list[float]
) -> list[Any]:
    """``[function(item) for item in items]`` in up to ``workers`` threads, started in
    decreasing ``cost`` (the longest first, so the last to finish is short).

    The voxel FE is numpy and scipy code that releases the GIL in its array operations
    (measured: two 64^3 spinodoid solves, 19.2 s one after the other, 11.2 s in two
    threads); BLAS is held to one thread per solve meanwhile, as the matrix-free solver
    does for itself (a multi-threaded BLAS on its small GEMMs is far slower)."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import ThreadpoolController

    order = sorted(range(len(items)), key=lambda i: -cost[i])
    results: list[Any] = [None] * len(items)
    executor = ThreadPoolExecutor(max_workers=min(workers, len(items)))
    try:
        with ThreadpoolController().limit(limits=1, user_api="blas"):
            futures = {i: executor.submit(function, items[i]) for i in order}
            for i, future in futures.items():
                results[i] = future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return results


def _refine(
    models: Any,
    target: np.ndarray,
    item: _Screened,
    screen: int,
    resolution: int,
    settings: SpinodoidDesignSettings,
    report: Callable[[str], None],
) -> _Screened:
    """``settings.refine_steps`` rounds of :func:`refine_design` on one screened candidate,
    each checked by FE at the screening resolution on the same field; a refined design
    replaces it while its NMSE drops."""
    for step in range(1, settings.refine_steps + 1):
        refined, frame = refine_design(
            models, item.theta, item.frame, target, item.C_screen, settings, fe_resolution=screen
        )
        turned = _angle_deg(frame @ item.frame.T)
        if np.allclose(refined, item.theta, rtol=0, atol=1e-4) and turned < 0.01:
            break
        design = _design(refined, frame, item.seed)
        C = _fe_stiffnesses([design], screen, models.threshold, 1)[0]
        trial = _best_field(models, target, refined, frame, [item.seed], [C], screen, resolution)
        better = trial.nmse < item.nmse
        report(
            f"refinement {step}: rho {item.theta[0]:.3f} -> {refined[0]:.3f}, frame turned by "
            f"{turned:.1f} deg, NMSE {item.nmse:.4f} -> {trial.nmse:.4f} (same field, FE at "
            f"{screen}^3; {'kept' if better else 'discarded'})"
        )
        if not better:
            break
        item = trial
    return item


def _candidate(
    models: Any,
    target: np.ndarray,
    item: _Screened,
    resolution: int,
    verify: bool,
) -> SpinodoidCandidate:
    """The returned candidate: f-NN stiffness at ``resolution``, FE at ``resolution``^3 on the
    chosen field (the screening FE when it ran at that resolution) and connectivity."""
    design = _design(item.theta, item.frame, item.seed)
    S = models.predict_stiffness(item.theta[None], resolution)[0]
    C_forward = rotate_stiffness(matrix_from_orthotropic9(S), item.frame)
    C_fe = None
    if verify:
        C_fe = item.C_screen
        if item.C_screen is None or item.screen != resolution:
            C_fe = _fe_stiffnesses([design], resolution, models.threshold, 1)[0]
    return SpinodoidCandidate(
        design=design,
        C_forward=C_forward,
        C_fe=C_fe,
        nmse_forward=float(nmse(target, C_forward)),
        nmse_fe=None if C_fe is None else float(nmse(target, C_fe)),
        connectivity=solid_connectivity(design, STL_RESOLUTION, models.threshold),
    )


def solid_connectivity(
    design: SpinodoidDesign, resolution: int = 48, threshold: str = "exact"
) -> dict[str, Any]:
    """Connectivity of the design's solid at ``resolution``^3 (the STL's grid by default).

    Face-connected components of the solid voxels: their number, the largest one's share of the
    solid, and whether it spans the cell along each axis (touches both opposite faces, so it
    percolates). ``connected`` is true when the largest component spans all three axes and holds
    at least half of the solid. Low-density spinodoids (rho below about 0.25, our extension) can
    break into separate columns or islands that the affine boundary conditions of the FE still
    hold, so their FE stiffness is then not that of one printable network: check this flag.
    """
    from scipy import ndimage

    from metainv.spinodoid.field import solid_mask

    solid = solid_mask(design, resolution, threshold=threshold)
    labels, count = ndimage.label(solid)
    sizes = np.bincount(labels.ravel())[1:]
    if count == 0:
        return {"resolution": resolution, "components": 0, "largest_share": 0.0,
                "spans": [False] * 3, "connected": False}  # fmt: skip
    largest = labels == int(np.argmax(sizes)) + 1
    spans = [
        bool(largest.take(0, axis=axis).any() and largest.take(-1, axis=axis).any())
        for axis in range(3)
    ]
    share = float(sizes.max() / sizes.sum())
    return {
        "resolution": int(resolution),
        "components": int(count),
        "largest_share": share,
        "spans": spans,
        "connected": bool(all(spans) and share >= 0.5),
    }


def write_design_outputs(
    target: np.ndarray,
    candidates: list[SpinodoidCandidate],
    folder: str | Path,
    fit: FrameFit | None = None,
    resolution: int | None = None,
    threshold: str = "exact",
    stl_resolution: int = STL_RESOLUTION,
) -> dict[str, Any]:
    """``designs.json`` (the truss schema: target, candidates with design, C_forward, C_fe,
    nmse_forward, nmse_fe, stl, surface_png, plus :func:`solid_connectivity` at the STL's
    resolution as ``connectivity``) plus, per candidate, an STL of one cell and an
    elastic-surface comparison PNG (target vs FE, or vs f-NN without FE). Returns the JSON."""
    from metainv.spinodoid.export import export_spinodoid
    from metainv.viz import plot_elastic_surface

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {"target": np.asarray(target).tolist(), "candidates": []}
    if fit is not None:
        document["frame_fit"] = {
            "rotation": fit.rotation.tolist(),
            "angle_deg": fit.angle_deg,
            "non_orthotropic_residual": fit.residual,
            "non_orthotropic_residual_identity": fit.residual_identity,
        }
    if resolution is not None:
        document["fe"] = {"resolution": resolution, "threshold": threshold}
    for rank, candidate in enumerate(candidates, start=1):
        stem = f"candidate_{rank:02d}"
        with np.errstate(divide="ignore", invalid="ignore"):  # trimesh: empty islands
            export_spinodoid(
                candidate.design,
                folder / f"{stem}.stl",
                resolution=stl_resolution,
                threshold=threshold,
            )
        compare = candidate.C_fe if candidate.C_fe is not None else candidate.C_forward
        kind = "FE" if candidate.C_fe is not None else "f-NN"
        error = candidate.nmse_fe if candidate.nmse_fe is not None else candidate.nmse_forward
        plot_elastic_surface(
            target,
            folder / f"{stem}_surface.png",
            compare=compare,
            labels=("target", f"design {rank} ({kind})"),
            title=f"candidate {rank}: {kind} NMSE {error:.4f}",
        )
        document["candidates"].append(
            {
                "design": design_to_dict(candidate.design),
                "C_forward": candidate.C_forward.tolist(),
                "C_fe": None if candidate.C_fe is None else candidate.C_fe.tolist(),
                "nmse_forward": candidate.nmse_forward,
                "nmse_fe": candidate.nmse_fe,
                "stl": f"{stem}.stl",
                "surface_png": f"{stem}_surface.png",
                "connectivity": candidate.connectivity
                if candidate.connectivity is not None
                and candidate.connectivity["resolution"] == stl_resolution
                else solid_connectivity(candidate.design, stl_resolution, threshold),
            }
        )
    (folder / "designs.json").write_text(json.dumps(document, indent=2))
    return document
