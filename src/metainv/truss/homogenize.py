r"""Periodic homogenization of truss lattices with Timoshenko beams.

Every strut is a linear elastic Timoshenko beam of circular cross-section with rigid joints
(spec ``truss.md`` section 4; SI Sec. 1 "Homogenization"). Each periodic node carries a
displacement fluctuation ``w`` (3) and a rotation ``theta`` (3), both periodic. Under a
macroscopic strain ``eps`` (Voigt, engineering shears) the end of strut ``k`` that lies in the
neighbouring cell moves relative to its start by

.. math:: \Delta u_k = \varepsilon\, \ell_k + w_b - w_a, \qquad \ell_k = F (X_b + o_k - X_a),

so the energy of the cell is a quadratic form in ``z = (w, theta, eps)``. Condensing the
fluctuations (static condensation, one node's ``w`` fixed against rigid translation):

.. math:: V\, C = K_{\varepsilon\varepsilon} - K_{\varepsilon f} K_{ff}^{-1} K_{f\varepsilon},

exactly, by a batched dense Cholesky factorization. The beam matrix is written without a choice
of local axes: for a circular section only the axis ``t`` matters, with the projectors
``t t^T`` (stretch, torsion) and ``I - t t^T`` (bending, shear) and the rotation-induced transverse
displacement ``theta x t``.

All designs of one batch share a topology, so they share the assembly plan (index maps) and are
assembled and solved together in torch (float64). The same code is differentiable with respect
to the lattice vectors ``F`` and the strut diameter (autograd through the Cholesky solve).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.spatial import cKDTree

from metainv.errors import MetainvError
from metainv.truss.lattice import (
    PeriodicLattice,
    canonical_topology,
    periodic_lattice,
    strut_diameter,
)

if TYPE_CHECKING:
    from metainv.truss.design import TrussDesign

logger = logging.getLogger(__name__)

#: Number of generalized degrees of freedom per node: fluctuation (3) and rotation (3).
_NODE_DOFS = 6


@dataclass(frozen=True)
class BeamMaterial:
    """Isotropic base material of the struts.

    youngs_modulus: E_b (any unit; results are in the same unit; 1.0 gives C normalized by E_b)
    poisson_ratio:  nu_b (spec: 0.3)
    shear_correction: Timoshenko shear coefficient kappa; ``None`` uses Cowper's value for a
        solid circle, ``kappa = 6 (1 + nu) / (7 + 6 nu)``.
    """

    youngs_modulus: float = 1.0
    poisson_ratio: float = 0.3
    shear_correction: float | None = None

    def __post_init__(self) -> None:
        if not self.youngs_modulus > 0:
            raise MetainvError(f"youngs_modulus must be positive, got {self.youngs_modulus}")
        if not -1.0 < self.poisson_ratio < 0.5:
            raise MetainvError(f"poisson_ratio must lie in (-1, 0.5), got {self.poisson_ratio}")
        if self.shear_correction is not None and not self.shear_correction > 0:
            raise MetainvError(f"shear_correction must be positive, got {self.shear_correction}")

    @property
    def shear_modulus(self) -> float:
        return self.youngs_modulus / (2.0 * (1.0 + self.poisson_ratio))

    @property
    def kappa(self) -> float:
        if self.shear_correction is not None:
            return self.shear_correction
        nu = self.poisson_ratio
        return 6.0 * (1.0 + nu) / (7.0 + 6.0 * nu)


@dataclass(frozen=True)
class HomogenizationResult:
    """Effective stiffness of one lattice.

    C: (6, 6) Voigt stiffness in units of the material's Young's modulus (normalized when E_b = 1)
    relative_density: strut volume fraction (node overlap ignored), dimensionless
    strut_diameter: uniform strut diameter, in the length unit of the reference cell
    n_nodes, n_struts: size of the periodic lattice
    """

    C: np.ndarray
    relative_density: float
    strut_diameter: float
    n_nodes: int
    n_struts: int


@dataclass(frozen=True)
class _AssemblyPlan:
    """Index maps shared by every design of one topology.

    frac_vectors: (m, 3) reference strut vectors X_b + o - X_a
    scatter_index: (m * 324,) position in the flattened (M, M) system of each entry of the
        flattened (m, 18, 18) extended element matrices
    size: M = 6 n + 6: the node dofs (w, theta) node by node, then the six macroscopic strains
        last, so that the trailing 6x6 block of the Cholesky factor is the Schur complement
    cell_scale: the plan's cell is the lattice's cell shrunk by this factor per axis (see
        :func:`primitive_half_cells`); the physical lattice vectors are ``F / cell_scale``
    """

    frac_vectors: np.ndarray
    scatter_index: np.ndarray
    size: int
    cell_scale: int


def _assembly_plan(lattice: PeriodicLattice, reduce_cell: bool = True) -> _AssemblyPlan:
    cell_scale = 1
    if reduce_cell:
        lattice, cell_scale = primitive_half_cells(lattice)
    n = lattice.n_nodes
    start, end = lattice.struts[:, 0], lattice.struts[:, 1]
    frac_vectors = lattice.nodes[end] + lattice.offsets - lattice.nodes[start]
    node_dof = np.arange(_NODE_DOFS * n).reshape(n, _NODE_DOFS)
    eps_dofs = _NODE_DOFS * n + np.arange(6)
    dof_index = np.concatenate(
        [node_dof[start], node_dof[end], np.broadcast_to(eps_dofs, (len(start), 6))], axis=1
    )
    size = _NODE_DOFS * n + 6
    scatter_index = (dof_index[:, :, None] * size + dof_index[:, None, :]).ravel()
    return _AssemblyPlan(frac_vectors, scatter_index, size, cell_scale)


@functools.lru_cache(maxsize=2048)
def _cached_plan(topology: tuple[tuple[int, int], ...], reduce_cell: bool) -> _AssemblyPlan:
    return _assembly_plan(periodic_lattice(topology), reduce_cell)


def _plan_for(lattice: PeriodicLattice, reduce_cell: bool = True) -> _AssemblyPlan:
    if lattice.topology:
        return _cached_plan(tuple(lattice.topology), reduce_cell)
    return _assembly_plan(lattice, reduce_cell)


def _strain_map(strut: torch.Tensor) -> torch.Tensor:
    r"""Linear map ``M(l)`` with ``eps l = M(l) eps_voigt`` (engineering shears).

    Shapes: strut (..., 3) -> (..., 3, 6).
    """
    l1, l2, l3 = strut.unbind(-1)
    zero = torch.zeros_like(l1)
    rows = [
        [l1, zero, zero, zero, l3 / 2, l2 / 2],
        [zero, l2, zero, l3 / 2, zero, l1 / 2],
        [zero, zero, l3, l2 / 2, l1 / 2, zero],
    ]
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def _skew(t: torch.Tensor) -> torch.Tensor:
    """Cross-product matrix ``[t]_x`` (..., 3, 3) of vectors (..., 3)."""
    t1, t2, t3 = t.unbind(-1)
    zero = torch.zeros_like(t1)
    return torch.stack(
        [
            torch.stack([zero, -t3, t2], dim=-1),
            torch.stack([t3, zero, -t1], dim=-1),
            torch.stack([-t2, t1, zero], dim=-1),
        ],
        dim=-2,
    )


def beam_stiffness(
    strut: torch.Tensor, diameter: torch.Tensor, material: BeamMaterial
) -> torch.Tensor:
    r"""Timoshenko beam stiffness (..., 12, 12) on ``(u_a, theta_a, u_b, theta_b)``.

    strut: (..., 3) physical strut vectors (start to end); diameter: (...) broadcastable.

    Circular section: ``A = pi d^2/4``, ``I = pi d^4/64``, ``J = 2 I``; shear parameter
    ``Phi = 12 E I / (kappa G A L^2)``. With ``t = l / L``, ``P = t t^T``, ``Q = I - P`` and
    ``S = -[t]_x`` (so that ``S theta = theta x t`` is the transverse displacement a rotation
    induces per unit length), the energy is

    - stretching ``EA/L |P (u_b - u_a)|^2 / 2``, torsion ``GJ/L |P (theta_b - theta_a)|^2 / 2``,
    - bending + shear: the classical 4x4 Timoshenko matrix
      ``EI/((1+Phi) L^3) [[12, 6L, -12, 6L], [6L, (4+Phi)L^2, -6L, (2-Phi)L^2], ...]``
      acting on ``(Q u_a, S theta_a, Q u_b, S theta_b)`` in both transverse directions at once.
    """
    E, G = material.youngs_modulus, material.shear_modulus
    length = torch.linalg.vector_norm(strut, dim=-1)
    t = strut / length[..., None]
    area = torch.pi * diameter**2 / 4
    inertia = torch.pi * diameter**4 / 64
    phi = 12 * E * inertia / (material.kappa * G * area * length**2)

    P = t[..., :, None] * t[..., None, :]
    Q = torch.eye(3, dtype=strut.dtype) - P
    S = -_skew(t)

    axial = (E * area / length)[..., None, None] * P
    torsion = (G * 2 * inertia / length)[..., None, None] * P
    c = (E * inertia / ((1 + phi) * length**3))[..., None, None]
    L = length[..., None, None]
    ph = phi[..., None, None]
    # Bending blocks on (Q u, S theta); S^T Q = S^T, Q S = S, S^T S = Q.
    uu = c * 12 * Q + axial
    ut = c * 6 * L * S  # u-theta blocks: 6L Q S = 6L S
    tt_same = c * (4 + ph) * L**2 * Q + torsion
    tt_other = c * (2 - ph) * L**2 * Q - torsion
    tu = ut.transpose(-1, -2)
    rows = [
        [uu, ut, -uu, ut],
        [tu, tt_same, -tu, tt_other],
        [-uu, -ut, uu, -ut],
        [tu, tt_other, -tu, tt_same],
    ]
    return torch.cat([torch.cat(row, dim=-1) for row in rows], dim=-2)


def _extended_stiffness(element: torch.Tensor, strain_map: torch.Tensor) -> torch.Tensor:
    """Element matrix (..., 18, 18) on ``(w_a, theta_a, w_b, theta_b, eps)``.

    The strain enters only through the end displacement, ``u_b = w_b + M(l) eps``, i.e.
    ``q = G z`` with ``G = [I_12 | E_b M]``; returns ``G^T K G``.
    """
    K_qe = element[..., :, 6:9] @ strain_map  # (..., 12, 6)
    K_ee = strain_map.transpose(-1, -2) @ K_qe[..., 6:9, :]
    top = torch.cat([element, K_qe], dim=-1)
    bottom = torch.cat([K_qe.transpose(-1, -2), K_ee], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def _assemble(
    plan: _AssemblyPlan,
    lattice_vectors: torch.Tensor,
    diameters: torch.Tensor,
    material: BeamMaterial,
) -> torch.Tensor:
    """Global systems (B, M, M) on (node dofs, eps) for B affine maps of one topology.

    diameters: (B, m) strut diameters of the plan's struts, or (B, 1) for uniform struts.

    Rigid translations are the only null space of the node block (for a lattice that is not a
    mechanism). They are removed by a spring ``alpha |w_0|^2 / 2`` on node 0: the condensed
    energy is unchanged *exactly*, whatever ``alpha > 0``, because for any minimizer ``w`` the
    translate ``w - w_0`` is a minimizer too and leaves the spring unstretched.
    """
    batch = lattice_vectors.shape[0]
    frac = torch.as_tensor(plan.frac_vectors, dtype=lattice_vectors.dtype)
    struts = torch.einsum("bij,mj->bmi", lattice_vectors, frac)  # (B, m, 3)
    element = beam_stiffness(struts, diameters, material)
    extended = _extended_stiffness(element, _strain_map(struts)).reshape(batch, -1)
    target = torch.as_tensor(plan.scatter_index, dtype=torch.long)
    K = torch.zeros(batch, plan.size * plan.size, dtype=lattice_vectors.dtype)
    K = K.index_add(1, target, extended).reshape(batch, plan.size, plan.size)
    diagonal = K.diagonal(dim1=1, dim2=2)
    spring = diagonal[:, :-6].detach().mean(dim=1, keepdim=True)
    diagonal[:, :3] += spring
    return K


def _mechanism_error(lattice: PeriodicLattice) -> MetainvError:
    return MetainvError(
        f"lattice {lattice.topology or '(custom)'} is a mechanism: its stiffness is singular"
    )


def homogenize_lattice_torch(
    lattice: PeriodicLattice,
    lattice_vectors: torch.Tensor,
    diameter: torch.Tensor,
    material: BeamMaterial = BeamMaterial(),
    reduce_cell: bool = True,
) -> torch.Tensor:
    r"""Effective Voigt stiffness (B, 6, 6) of one topology under B affine maps (differentiable).

    lattice_vectors: (B, 3, 3) matrices F (columns = lattice vectors, x = F X), float64
    diameter: (B,) strut diameters in the physical length unit
    reduce_cell: solve on the smallest periodic cell (:func:`primitive_half_cells`); the result is
        the same, only cheaper (a 2x2x2 tessellation costs 512x less)

    With the strains ordered last, the Cholesky factor of the whole system
    ``[[K_ff, K_fe], [K_ef, K_ee]] = L L^T`` has the trailing block
    ``L_ee L_ee^T = K_ee - K_ef K_ff^{-1} K_fe = V C`` (exact static condensation).
    """
    plan = _plan_for(lattice, reduce_cell)
    cell_vectors = lattice_vectors / plan.cell_scale
    K = _assemble(plan, cell_vectors, diameter[:, None], material)
    factor, info = torch.linalg.cholesky_ex(K)
    if bool((info != 0).any()):
        raise _mechanism_error(lattice)
    trailing = factor[:, -6:, -6:]
    volume = torch.linalg.det(cell_vectors).abs()
    return trailing @ trailing.transpose(-1, -2) / volume[:, None, None]


def homogenize_lattice(
    lattice: PeriodicLattice,
    lattice_vectors: np.ndarray,
    diameter: np.ndarray | float,
    material: BeamMaterial = BeamMaterial(),
    batch_size: int | None = None,
    reduce_cell: bool = True,
) -> np.ndarray:
    """Effective Voigt stiffness of lattices with uniform struts: :func:`lattice_stiffness` with
    every strut of design ``b`` of diameter ``diameter[b]``, solved on the smallest periodic
    cell when ``reduce_cell`` (as in :func:`homogenize_lattice_torch`; valid because uniform
    diameters are invariant under the half-cell translations).

    lattice_vectors: (3, 3) or (B, 3, 3); diameter: scalar or (B,). Returns (6, 6) or (B, 6, 6).
    """
    F = np.asarray(lattice_vectors, dtype=np.float64)
    single = F.ndim == 2
    d = np.array(
        np.broadcast_to(np.asarray(diameter, dtype=np.float64), (F.reshape(-1, 9).shape[0],))
    )
    plan = _plan_for(lattice, reduce_cell)
    out = _stiffness(plan, lattice, F.reshape(-1, 3, 3), d[:, None], material, batch_size)
    return out[0] if single else out


def lattice_stiffness(
    lattice: PeriodicLattice,
    lattice_vectors: np.ndarray,
    strut_diameters: np.ndarray,
    material: BeamMaterial = BeamMaterial(),
    batch_size: int | None = None,
) -> np.ndarray:
    """Effective Voigt stiffness of a periodic Timoshenko-beam lattice with one diameter per
    strut (the beam kernel of this module; non-differentiable, in-place LAPACK Cholesky).

    lattice: the periodic cell (nodes in fractional coordinates, struts, offsets)
    lattice_vectors: (3, 3) or (B, 3, 3) matrices F (columns = lattice vectors, x = F X), in the
        physical length unit
    strut_diameters: (n_struts,) or (B, n_struts) diameters of ``lattice.struts``, same unit
    material: strut material; the result is in the unit of its Young's modulus

    Returns ``C`` (6, 6) or (B, 6, 6). Batches are split so that the dense systems stay below
    about 64 MB.
    """
    F = np.asarray(lattice_vectors, dtype=np.float64)
    single = F.ndim == 2
    F = F.reshape(-1, 3, 3)
    d = np.asarray(strut_diameters, dtype=np.float64)
    if d.shape[-1] != lattice.n_struts:
        raise MetainvError(
            f"expected one diameter per strut ({lattice.n_struts}), got shape {d.shape}"
        )
    d = np.array(np.broadcast_to(d, (F.shape[0], lattice.n_struts)))
    out = _stiffness(_plan_for(lattice, reduce_cell=False), lattice, F, d, material, batch_size)
    return out[0] if single else out


def _stiffness(
    plan: _AssemblyPlan,
    lattice: PeriodicLattice,
    lattice_vectors: np.ndarray,
    diameters: np.ndarray,
    material: BeamMaterial,
    batch_size: int | None,
) -> np.ndarray:
    """``C`` (B, 6, 6) from the lattice vectors (B, 3, 3) of ``lattice`` and the diameters
    (B, m) of the plan's struts (or (B, 1), uniform)."""
    F = np.ascontiguousarray(lattice_vectors) / plan.cell_scale
    chunk = batch_size or max(1, int(64e6 / (8 * plan.size * plan.size)))
    out = np.empty((F.shape[0], 6, 6))
    with torch.no_grad():
        for lo in range(0, F.shape[0], chunk):
            K = _assemble(
                plan,
                torch.from_numpy(F[lo : lo + chunk]),
                torch.from_numpy(np.ascontiguousarray(diameters[lo : lo + chunk])),
                material,
            )
            out[lo : lo + chunk] = _condense(K.numpy(), lattice)
    out /= np.abs(np.linalg.det(F))[:, None, None]
    return out


def _condense(K: np.ndarray, lattice: PeriodicLattice) -> np.ndarray:
    """``V C`` (B, 6, 6) from systems K (B, M, M), factorized in place (K is overwritten).

    K is symmetric, so the transpose of each C-ordered matrix is the same matrix in Fortran
    order and LAPACK factorizes it without a copy; the trailing 6x6 block of the upper factor
    ``K = U^T U`` gives ``U_ee^T U_ee = V C``.
    """
    out = np.empty((K.shape[0], 6, 6))
    for b in range(K.shape[0]):
        factor, info = _potrf(K[b].T, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            raise _mechanism_error(lattice)
        trailing = np.triu(factor[-6:, -6:])
        out[b] = trailing.T @ trailing
    return out


def homogenize(
    design: TrussDesign, material: BeamMaterial = BeamMaterial()
) -> HomogenizationResult:
    """Effective stiffness of one truss design (full affine map ``F = R2 V R1 U``)."""
    from metainv.truss.design import deformation_gradient

    lattice = periodic_lattice(design.topology)
    F = deformation_gradient(design)
    diameter = float(strut_diameter(lattice, F, design.relative_density))
    C = homogenize_lattice(lattice, F, diameter, material)
    return HomogenizationResult(
        C=C,
        relative_density=float(design.relative_density),
        strut_diameter=diameter,
        n_nodes=lattice.n_nodes,
        n_struts=lattice.n_struts,
    )


def homogenize_many(
    designs: Sequence[TrussDesign],
    material: BeamMaterial = BeamMaterial(),
) -> np.ndarray:
    """Effective stiffness (N, 6, 6) of many designs, batched by topology."""
    from metainv.truss.design import deformation_gradient

    out = np.empty((len(designs), 6, 6))
    groups: dict[tuple, list[int]] = {}
    for position, design in enumerate(designs):
        groups.setdefault(canonical_topology(design.topology), []).append(position)
    for topology, positions in groups.items():
        lattice = periodic_lattice(topology)
        F = np.stack([deformation_gradient(designs[p]) for p in positions])
        rho = np.array([designs[p].relative_density for p in positions])
        diameter = strut_diameter(lattice, F, rho)
        out[positions] = homogenize_lattice(lattice, F, diameter, material)
    return out


def primitive_half_cells(
    lattice: PeriodicLattice, tol: float = 1e-9
) -> tuple[PeriodicLattice, int]:
    """The smallest cell of ``lattice`` obtained by undoing 2x2x2 tessellations.

    A lattice that is invariant under the three half-cell translations (e.g. a compound whose
    three components all have ``t = 2``, or ``S1 t1 + S1 t2``) is the 2x2x2 tessellation of its
    sub-cell ``[0, 1/2)^3``; the sub-cell, rescaled to the unit cube, describes the same infinite
    lattice with 8 times fewer nodes and struts. Repeated while possible.

    Returns ``(lattice, scale)``: the physical lattice vectors of the returned cell are ``F/scale``.
    """
    scale = 1
    while True:
        halved = _halve(lattice, tol)
        if halved is None:
            return lattice, scale
        lattice, scale = halved, 2 * scale


def _strut_keys(nodes: np.ndarray, struts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Translation-invariant description (m, 6): midpoint modulo the cell and the sign-fixed
    strut vector, for matching strut sets."""
    start = nodes[struts[:, 0]]
    vector = nodes[struts[:, 1]] + offsets - start
    midpoint = (start + vector / 2) % 1.0
    first = vector[np.arange(len(vector)), np.argmax(np.abs(vector) > 1e-12, axis=1)]
    vector = np.where(first[:, None] < 0, -vector, vector)
    return np.concatenate([midpoint, vector + 2.0], axis=1)


def _halve(lattice: PeriodicLattice, tol: float) -> PeriodicLattice | None:
    """The sub-cell [0, 1/2)^3 rescaled to the unit cube, or None if not a 2x2x2 tessellation."""
    nodes, struts, offsets = lattice.nodes, lattice.struts, lattice.offsets
    if lattice.n_nodes % 8 or lattice.n_struts % 8:
        return None
    node_tree = cKDTree(nodes, boxsize=1.0)
    keys = _strut_keys(nodes, struts, offsets)
    strut_tree = cKDTree(keys, boxsize=[1.0, 1.0, 1.0, 8.0, 8.0, 8.0])
    for shift in np.eye(3) / 2:
        if node_tree.query((nodes + shift) % 1.0)[0].max() > tol:
            return None
        shifted = keys.copy()
        shifted[:, :3] = (shifted[:, :3] + shift) % 1.0
        if strut_tree.query(shifted)[0].max() > tol:
            return None
    # Each sub-cell strut, translated so that its start lies in [0, 1/2)^3, then scaled by 2.
    start = nodes[struts[:, 0]]
    end = nodes[struts[:, 1]] + offsets
    translation = np.floor(2 * start + tol) / 2
    start, end = 2 * (start - translation), 2 * (end - translation)
    sub_nodes = 2 * nodes[np.all(nodes < 0.5 - tol, axis=1)]
    sub_tree = cKDTree(sub_nodes, boxsize=1.0)
    start_index = sub_tree.query(start % 1.0)[1]
    end_index = sub_tree.query(end % 1.0)[1]
    sub_offsets = np.rint(end - sub_nodes[end_index]).astype(np.int64)
    sub_offsets -= np.rint(start - sub_nodes[start_index]).astype(np.int64)
    sub_struts = np.stack([start_index, end_index], axis=1)
    sub_keys = _strut_keys(sub_nodes, sub_struts, sub_offsets)
    _, first = np.unique(np.round(sub_keys, 8), axis=0, return_index=True)
    if len(sub_nodes) * 8 != lattice.n_nodes or len(first) * 8 != lattice.n_struts:
        return None
    first = np.sort(first)
    return PeriodicLattice(sub_nodes, sub_struts[first], sub_offsets[first], ())
