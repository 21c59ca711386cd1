"""The one training loop of metainv, used by every family's learning stages.

:func:`run_stage` trains a module's trainable parameters with Adam on minibatches of a seeded
permutation of the training rows, with

* the true epoch-mean training loss (weighted by batch size over the whole epoch),
* a learning-rate schedule: ``"plateau"`` (decay by ``lr_factor`` when the validation loss has
  not improved for ``lr_patience`` epochs) or ``"cosine"`` (from ``learning_rate`` to
  ``final_learning_rate`` over ``epochs``, stepped once per epoch),
* early stopping on the validation loss (``early_stopping_patience``; ``None``: never) and below
  ``min_learning_rate``,
* the weights of the best validation epoch kept (from epoch ``select_from_epoch`` on),
* a checkpoint after every epoch (module, optimizer, schedule, best weights, loop state and the
  batch generator's state) that a later call resumes from, so that an interrupted stage ends
  with the same weights as an uninterrupted one. Checkpoints are read with
  ``torch.load(..., weights_only=True)`` only.

Also here: the one train / validation split (:func:`split_indices`), training options from
TOML (:func:`read_options`) and :func:`torch_scope`, which scopes torch's global RNG and thread
count instead of setting them for the whole process.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metainv.errors import MetainvError
from metainv.files import write_bytes_atomic

logger = logging.getLogger(__name__)

#: Epoch callback: (stage name, epoch record) -> None.
EpochCallback = Callable[[str, dict[str, Any]], None]
#: Loss of one training batch: (row indices (B,), 0-based epoch) -> scalar tensor.
BatchLoss = Callable[[torch.Tensor, int], torch.Tensor]
SCHEDULES = ("plateau", "cosine")


@dataclass(frozen=True)
class LoopSettings:
    """Options of one stage of :func:`run_stage` (module docstring)."""

    epochs: int
    learning_rate: float
    batch_size: int
    seed: int = 0
    schedule: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 3
    final_learning_rate: float = 1e-5
    min_learning_rate: float = 0.0
    early_stopping_patience: int | None = None
    select_from_epoch: int = 0
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise MetainvError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")


@dataclass
class StageState:
    """Mutable state of one training stage (checkpointed every epoch)."""

    epoch: int = 0
    best_validation: float = float("inf")
    epochs_since_best: int = 0
    done: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def _scheduler(optimizer: torch.optim.Optimizer, settings: LoopSettings):
    if settings.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=settings.lr_factor, patience=settings.lr_patience
        )
    ratio = settings.final_learning_rate / settings.learning_rate
    epochs = max(settings.epochs, 1)

    def factor(epoch: int) -> float:
        return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * min(epoch / epochs, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def run_stage(
    name: str,
    module: torch.nn.Module,
    loss_fn: BatchLoss,
    n_train: int,
    validation_loss: Callable[[], float],
    settings: LoopSettings,
    checkpoint: Path | None = None,
    on_epoch: EpochCallback | None = None,
    annotate: Callable[[int], dict[str, Any]] | None = None,
) -> StageState:
    """Train ``module``'s trainable parameters on ``loss_fn(batch_index, epoch)`` (module
    docstring); ``validation_loss()`` runs in eval mode without gradients; ``annotate(epoch)``
    adds entries to each epoch's record. Resumes from ``checkpoint`` when it exists and writes
    it after every epoch (``None``: no checkpoints). Ends with the best validation weights."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, settings.learning_rate)
    scheduler = _scheduler(optimizer, settings)
    generator = torch.Generator().manual_seed(settings.seed)
    state = StageState()
    best_weights = _copy_state(module)
    if checkpoint is not None and checkpoint.exists():
        try:
            saved = torch.load(checkpoint, weights_only=True)
            module.load_state_dict(saved["module"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            best_weights = saved["best_weights"]
            if "generator" in saved:
                generator.set_state(saved["generator"])
            else:  # checkpoints written before the generator state was stored
                generator.manual_seed(settings.seed + 7919 * saved["state"]["epoch"])
            state = StageState(**saved["state"])
        except Exception as error:  # corrupt file, foreign pickle, changed architecture
            raise MetainvError(
                f"checkpoint {checkpoint} is corrupt or from another architecture "
                f"({_first_line(error)}); rerun with the options it was written with, or delete "
                f"it to restart the stage"
            ) from None
        # a finished stage continues when its epoch budget was raised since
        patience = settings.early_stopping_patience
        state.done = state.done and not (
            state.epoch < settings.epochs
            and (patience is None or state.epochs_since_best < patience)
        )
        logger.info("%s: resumed at epoch %d", name, state.epoch)
    while not state.done and state.epoch < settings.epochs:
        start = time.perf_counter()
        module.train()
        total, count = 0.0, 0
        for index in torch.randperm(n_train, generator=generator).split(settings.batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(index, state.epoch)
            loss.backward()
            if settings.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
            optimizer.step()
            total += loss.item() * len(index)
            count += len(index)
        module.eval()
        with torch.no_grad():
            validation = float(validation_loss())
        if settings.schedule == "plateau":
            scheduler.step(validation)
        else:
            scheduler.step()
        epoch = state.epoch
        state.epoch += 1
        if epoch >= settings.select_from_epoch and validation < state.best_validation:
            state.best_validation, state.epochs_since_best = validation, 0
            best_weights = _copy_state(module)
        else:
            state.epochs_since_best += 1
        learning_rate_now = optimizer.param_groups[0]["lr"]
        record: dict[str, Any] = {
            "epoch": state.epoch,
            "train_loss": total / max(count, 1),
            "validation_loss": validation,
            "learning_rate": learning_rate_now,
            "seconds": round(time.perf_counter() - start, 3),
        }
        if annotate is not None:
            record.update(annotate(epoch))
        state.history.append(record)
        patience = settings.early_stopping_patience
        state.done = (
            (patience is not None and state.epochs_since_best >= patience)
            or learning_rate_now < settings.min_learning_rate
            or state.epoch >= settings.epochs
        )
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint, module, optimizer, scheduler, best_weights, state, generator
            )
        if on_epoch is not None:
            on_epoch(name, record)
    if math.isfinite(state.best_validation):
        module.load_state_dict(best_weights)
    module.eval()
    return state


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines if "size mismatch" in line), None)
    text = detail or (lines[0] if lines else type(error).__name__)
    return text if len(text) <= 200 else text[:197] + "..."


def _save_checkpoint(path, module, optimizer, scheduler, best_weights, state, generator) -> None:
    buffer = io.BytesIO()
    torch.save(
        {
            "module": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "best_weights": best_weights,
            "state": asdict(state),
            "generator": generator.get_state(),
        },
        buffer,
    )
    write_bytes_atomic(path, buffer.getvalue())


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train / validation split of ``range(n)``: sorted int64 index arrays, at least one
    row each when ``n >= 2``."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(validation_fraction * n)), n - 1) if n >= 2 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def read_options(path: Path) -> dict[str, Any]:
    """Training options from a TOML file as a dict (a clear error for invalid TOML)."""
    import tomllib

    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as error:
        raise MetainvError(f"{path} is not valid TOML: {error}") from None


def tuples(section: Mapping[str, Any]) -> dict[str, Any]:
    """``section`` with JSON / TOML lists turned back into the tuples of frozen configs."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


@contextmanager
def torch_scope(seed: int | None = None, threads: int | None = None) -> Iterator[None]:
    """Within the block, torch's global CPU RNG is seeded with ``seed`` and torch uses
    ``threads`` intra-op threads; both are restored on exit (``None``: left as they are)."""
    previous = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)
