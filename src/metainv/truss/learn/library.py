r"""Rotation-aware design library: stored lattices looked up in the target's material frame.

The paper's lookup-table baseline (SI Sec. 3.G, :mod:`metainv.data.lookup`) compares stiffness
tensors as they are, so a library lattice that matches the target up to a rotation is missed.
Here every library row is stored in its *material frame* ``Q_r`` (:func:`metainv.tensors.
material_frame`), and so is the target (``Q_t``). A row's NMSE against the target in these frames
is the NMSE of the rotated row ``Bond(Q_t Q_r^T) C_r`` against ``C_t``; the design that has this
stiffness is the row's design with its outer rotation replaced (main Eq. 1, ``F = R2 V R1 U``):

.. math:: R_2 \leftarrow Q_t \, Q_r^T R_2 ,

everything else (topology, ``rho, U, V, R1``) unchanged. The stored ``Q_r^T R_2`` makes a lookup a
matrix product plus one rotation per target.

Search: with ``w`` the Frobenius weights of the 21 constants (1 on the diagonal, 2 off it: the
NMSE sums all 36 Voigt entries), directions ``u = sqrt(w) c21(Q^T C) / ||C||_F`` and norms
``n = ||C||_F``,

.. math:: \mathrm{NMSE}(t, r) = 1 + (n_r / n_t)^2 - 2 (n_r / n_t)\, u_t \cdot u_r ,

so the nearest rows of a chunk of targets are one ``(B, 21) x (21, M)`` product. Voigt norms
change under rotation (Bond matrices are not orthogonal), so ``n`` and the NMSE are those *in the
material frames*: a proxy for the ranking; the candidates are then compared by the forward model
in the target's own frame. The directions
are stored in float16 (relative error 5e-4, far below the NMSE between neighbours, ~5e-3), the
designs in float16 too: the library seeds the forward-model polish
(:func:`metainv.truss.learn.inverse.polish_with_forward`), which removes such rounding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load_file, save

from metainv.errors import MetainvError
from metainv.files import write_bytes_atomic
from metainv.tensors import (
    c21_from_matrix,
    canonical_stiffness,
    material_frame,
    matrix_from_c21,
    rotate_stiffness,
    rotation_from_6d,
    sixd_from_rotation,
)
from metainv.truss.learn.data import TrussTensors
from metainv.truss.learn.models import topology_onehot

#: File name of a library inside a model folder.
LIBRARY = "library.safetensors"
#: Largest (targets x rows) score block computed at once (float32: 128 MB).
_BLOCK_ELEMENTS = 1 << 25
#: Rows per target kept by the fast score and re-ranked by the exact difference.
_SHORTLIST = 8


def frobenius_weights(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(21,) weights of the 21 constants in the Frobenius norm of the 6x6: 1 diagonal, 2 off."""
    return c21_from_matrix(2.0 - torch.eye(6, dtype=dtype))


@dataclass(frozen=True)
class DesignLibrary:
    """M lattice designs with their FE stiffness, indexed in the material frame.

    direction (M, 21) float16: ``sqrt(w) c21(Q^T C) / ||C||_F`` (module docstring);
    norm (M,) float32: ``||Q^T C||_F`` of the normalized stiffness (C / base modulus);
    cells, tessellations (M, 3) uint8: cell types 1..7 and tessellations 1..2;
    geometry (M, 7) float16: ``rho, U1..U3, V1..V3`` (rho relative density, stretches);
    R1 (M, 6) float16: 6-D representation of ``R1``;
    R2_material (M, 6) float16: 6-D representation of ``Q^T R2``.
    """

    direction: torch.Tensor
    norm: torch.Tensor
    cells: torch.Tensor
    tessellations: torch.Tensor
    geometry: torch.Tensor
    R1: torch.Tensor
    R2_material: torch.Tensor

    def __len__(self) -> int:
        return self.norm.shape[0]


class LibraryMatch(NamedTuple):
    """Nearest rows per target: ``rows`` (B, k) int64, ``nmse`` (B, k) float32 (ascending)."""

    rows: torch.Tensor
    nmse: torch.Tensor


def build_library(data: TrussTensors, max_rows: int | None = None, seed: int = 0) -> DesignLibrary:
    """A library of the rows of ``data`` (a seeded random subset of ``max_rows`` when given)."""
    if max_rows is not None and max_rows < 1:
        raise MetainvError(f"a design library needs at least one row, got max_rows={max_rows}")
    if max_rows is not None and max_rows < len(data):
        generator = torch.Generator().manual_seed(seed)
        data = data.subset(torch.randperm(len(data), generator=generator)[:max_rows].sort()[0])
    frame, canonical = canonical_stiffness(data.C.double())
    norm = canonical.flatten(1).norm(dim=-1)
    direction = c21_from_matrix(canonical) * frobenius_weights(torch.float64).sqrt()
    direction = direction / norm[:, None]
    R2_material = frame.transpose(-1, -2) @ data.R2.double()
    geometry = torch.cat([data.rho[:, None], data.U, data.V], dim=-1)
    return DesignLibrary(
        direction=direction.to(torch.float16),
        norm=norm.float(),
        cells=data.cells.to(torch.uint8),
        tessellations=data.tessellations.to(torch.uint8),
        geometry=geometry.to(torch.float16),
        R1=sixd_from_rotation(data.R1.double()).to(torch.float16),
        R2_material=sixd_from_rotation(R2_material).to(torch.float16),
    )


def save_library(library: DesignLibrary, path: str | Path, metadata: dict | None = None) -> None:
    """Write ``library`` as safetensors; ``metadata`` (JSON-able) goes into the header."""
    tensors = {f.name: getattr(library, f.name).contiguous() for f in fields(library)}
    header = {"rows": str(len(library)), "metadata": json.dumps(metadata or {}, sort_keys=True)}
    write_bytes_atomic(path, save(tensors, metadata=header))


def load_library(path: str | Path) -> DesignLibrary:
    """Read a library written by :func:`save_library`."""
    path = Path(path)
    if not path.exists():
        raise MetainvError(f"no design library at {path}")
    try:
        tensors = load_file(str(path))
    except Exception as error:  # safetensors' SafetensorError, OSError, ...
        reason = " ".join(str(error).split()) or type(error).__name__
        raise MetainvError(f"{path} is corrupt or truncated ({reason})") from None
    missing = {f.name for f in fields(DesignLibrary)} - set(tensors)
    if missing:
        raise MetainvError(f"{path} is not a design library (missing {', '.join(sorted(missing))})")
    return DesignLibrary(**{f.name: tensors[f.name] for f in fields(DesignLibrary)})


def _target_directions(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Material frames (B, 3, 3), directions (B, 21) and norms (B,) of targets (B, 6, 6)."""
    targets = targets.detach().double()
    frame, canonical = canonical_stiffness(targets)
    norm = canonical.flatten(1).norm(dim=-1)
    direction = c21_from_matrix(canonical) * frobenius_weights(torch.float64).sqrt()
    return frame, (direction / norm[:, None]).float(), norm.float()


def nearest_rows(library: DesignLibrary, targets: torch.Tensor, k: int = 1) -> LibraryMatch:
    """The ``k`` library rows nearest to each target (B, 6, 6) by NMSE up to a rotation."""
    if targets.ndim != 3 or targets.shape[-2:] != (6, 6):
        raise MetainvError(f"targets must have shape (B, 6, 6), got {tuple(targets.shape)}")
    if not 1 <= k <= len(library):
        raise MetainvError(f"k must be in 1..{len(library)} (library rows), got {k}")
    _, direction, norm = _target_directions(targets)
    if not torch.all(norm > 0):
        raise MetainvError("a target stiffness is all zeros: its NMSE is undefined")
    # |n_t u_t - n_r u_r|^2 = |v_r|^2 - 2 (n_t u_t).v_r + n_t^2 with v_r = n_r u_r
    scaled = library.direction.float() * library.norm[:, None]
    squared = library.norm.pow(2)
    query = direction * norm[:, None]
    step = max(1, _BLOCK_ELEMENTS // len(library))
    shortlist = min(len(library), max(k, _SHORTLIST))
    rows, errors = [], []
    for lo in range(0, len(targets), step):
        score = torch.addmm(squared[None, :], query[lo : lo + step], scaled.T, alpha=-2.0)
        index = torch.topk(score, shortlist, dim=1, largest=False).indices
        # re-ranked by the differences themselves: the expanded score loses a close match's
        # small NMSE to cancellation (first order in the float16 rounding of the directions)
        difference = query[lo : lo + step, None, :] - scaled[index]
        error = difference.pow(2).sum(-1) / norm[lo : lo + step, None].pow(2)
        error, order = torch.sort(error, dim=1)
        rows.append(torch.gather(index, 1, order)[:, :k])
        errors.append(error[:, :k])
    return LibraryMatch(torch.cat(rows), torch.cat(errors))


def library_outputs(
    library: DesignLibrary, rows: torch.Tensor, targets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Designs of library ``rows`` (N,) rotated onto ``targets`` (N, 6, 6), as inverse-model
    outputs: ``onehot`` (N, 27), ``rho`` (N,), ``U, V`` (N, 3), ``R1, R2`` (N, 3, 3), float32."""
    frame = material_frame(targets.detach().double())
    geometry = library.geometry[rows].float()
    R2_material = rotation_from_6d(library.R2_material[rows].double())
    return {
        "onehot": topology_onehot(
            library.cells[rows].long(), library.tessellations[rows].long()
        ).float(),
        "rho": geometry[:, 0],
        "U": geometry[:, 1:4],
        "V": geometry[:, 4:7],
        "R1": rotation_from_6d(library.R1[rows].double()).float(),
        "R2": (frame @ R2_material).float(),
    }


def library_stiffness(
    library: DesignLibrary, rows: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """FE stiffness (N, 6, 6) float64 of the designs :func:`library_outputs` returns: the stored
    material-frame stiffness of ``rows`` (N,) rotated into each target's frame (no network)."""
    frame = material_frame(targets.detach().double())
    weights = frobenius_weights(torch.float64).sqrt()
    c21 = library.direction[rows].double() * library.norm[rows, None].double() / weights
    return rotate_stiffness(matrix_from_c21(c21), frame)


def library_designs(
    library: DesignLibrary, targets: torch.Tensor, k: int = 1
) -> tuple[dict[str, torch.Tensor], LibraryMatch]:
    """The ``k`` nearest library designs per target, rotated onto it: outputs as in
    :func:`library_outputs` with N = B k (target-major), and the match."""
    match = nearest_rows(library, targets, k)
    repeated = targets.repeat_interleave(k, dim=0)
    return library_outputs(library, match.rows.reshape(-1), repeated), match


def library_size_bytes(library: DesignLibrary) -> int:
    """Bytes of the library's arrays (what it adds to a model folder)."""
    return sum(
        getattr(library, f.name).numel() * getattr(library, f.name).element_size()
        for f in fields(library)
    )


__all__ = [
    "LIBRARY",
    "DesignLibrary",
    "LibraryMatch",
    "build_library",
    "frobenius_weights",
    "library_designs",
    "library_outputs",
    "library_size_bytes",
    "library_stiffness",
    "load_library",
    "nearest_rows",
    "save_library",
]
