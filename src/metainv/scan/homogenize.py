"""Apparent stiffness of a segmented scan by voxel FE, with morphometry, and its JSON form.

The cube of voxels is homogenized by :func:`metainv.voxel.homogenize_voxels_detailed` under
one or more boundary conditions: ``affine`` (kinematic, the upper bound), ``periodic`` and
``static`` (uniform traction, the lower bound); ``C_affine >= C_periodic >= C_static``.
Linear elasticity has no length scale, so the stiffness does not depend on the voxel size; it
is in the units of the tissue modulus.

The JSON document (:func:`scan_document`) is a valid stiffness target
(:mod:`metainv.targets`): ``C`` (6x6) in ``unit`` (the unit the tissue modulus was given in, or
``normalized`` for a bare number: ``C / E_tissue``), optionally the printed material's
``base_modulus``, and the whole record of the scan under ``scan`` (file, SHA-256, options,
every boundary condition's 21 constants, BV/TV, connectivity, orthotropic fit, fabric).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import MetainvError
from metainv.resources import VOXEL_FE_BYTES, VOXEL_FE_SECONDS, check_memory
from metainv.scan.io import image_format, read_image
from metainv.scan.morphometry import Fabric, bv_tv, fabric_tensor, largest_body_share
from metainv.scan.segment import coarsen, crop_box, crop_cube, segment
from metainv.targets import NORMALIZED, parse_modulus
from metainv.tensors import C21_NAMES, c21_from_matrix, closest_orthotropic
from metainv.version import VERSION
from metainv.voxel import BOUNDARY_CONDITIONS, homogenize_voxels_detailed

#: Memory per voxel over :data:`metainv.resources.VOXEL_FE_BYTES`: with an ersatz marrow every
#: node is an unknown (measured at 40^3 on the demo scan: 6.7 kB affine, 7.5 kB static).
MEMORY_FACTORS = {"affine": 1.2, "periodic": 1.2, "static": 1.35}
#: Time over :data:`metainv.resources.VOXEL_FE_SECONDS` (static: about 3x the CG iterations).
TIME_FACTORS = {"affine": 1.0, "periodic": 2.0, "static": 3.0}
#: Ersatz marrow of the static BC when the marrow is otherwise removed.
STATIC_VOID_MODULUS_RATIO = 1e-3


@dataclass(frozen=True)
class PreparedScan:
    """A scan ready for FE: ``solid`` (n, n, n) bool (axis 0 along x1); ``voxel_size`` the edge
    of one FE voxel (after coarsening; file units, 1 when unknown); ``options`` what was done
    (file, SHA-256, format, shape, crop, segmentation, threshold, coarsening)."""

    solid: np.ndarray
    voxel_size: float
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScanHomogenization:
    """Result of :func:`homogenize_scan`.

    stiffness: boundary condition -> Voigt ``C`` (6, 6) in the units of the tissue modulus.
    primary: the first boundary condition asked for (the one a design targets).
    bv_tv: bone volume fraction; largest_body_share: largest solid component / solid.
    frame: material frame ``Q`` (3, 3) of the primary ``C`` (columns: orthotropy axes);
    orthotropic: the closest orthotropic ``C`` (6, 6) in that frame; orthotropic_distance:
    relative Frobenius distance (Mandel) of ``C`` to it.
    fabric: MIL fabric (``None`` where undefined: a solid block).
    solves: boundary condition -> unknowns, CG iterations and seconds.
    """

    stiffness: dict[str, np.ndarray]
    primary: str
    bv_tv: float
    largest_body_share: float
    frame: np.ndarray
    orthotropic: np.ndarray
    orthotropic_distance: float
    fabric: Fabric | None
    solves: dict[str, dict[str, Any]]

    @property
    def C(self) -> np.ndarray:
        """The primary boundary condition's stiffness (6, 6)."""
        return self.stiffness[self.primary]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (of every slice, in order, for a folder of TIFF slices)."""
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for item in files:
        with open(item, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def prepare_scan(
    path: str | Path,
    crop: Sequence[int] | None = None,
    segmentation: str | float = "otsu",
    coarsening: int = 1,
    voxel_size: float | None = None,
    key: str | None = None,
    cube: bool = True,
) -> PreparedScan:
    """Read, crop, segment and coarsen a scan (:mod:`metainv.scan.segment`).

    voxel_size: edge of a scan voxel (overrides the file's; default the file's, else 1).
    cube: the region must be a cube (``crop`` X,Y,Z,N or a cubic scan); else ``crop`` may be
    a box X,Y,Z,NX,NY,NZ (stiffness maps).
    """
    image = read_image(path, key=key)
    region = crop_cube(image.values, crop) if cube else crop_box(image.values, crop)
    segmented = segment(region, segmentation)
    solid = coarsen(segmented.solid, coarsening)
    size = voxel_size if voxel_size is not None else image.voxel_size
    if size is not None and not (np.isfinite(size) and size > 0):
        raise MetainvError(f"--voxel-size must be a positive number, got {size}")
    options = {
        "file": str(path),
        "sha256": file_sha256(path),
        "format": "tiff folder" if Path(path).is_dir() else image_format(path),
        "image_shape": list(image.values.shape),
        "crop": None if crop is None else [int(c) for c in crop],
        "segmentation": segmented.method,
        "threshold": segmented.threshold,
        "coarsen": int(coarsening),
        "voxel_size": None if size is None else float(size) * int(coarsening),
        "shape": list(solid.shape),
    }
    return PreparedScan(
        solid=solid, voxel_size=1.0 if size is None else float(size) * coarsening, options=options
    )


def estimate_homogenization(n: int, boundaries: Sequence[str]) -> tuple[float, float]:
    """``(peak bytes, seconds on one core)`` of homogenizing an ``n^3`` cube under
    ``boundaries`` (one after the other: the memory is the largest single solve)."""
    voxels = float(n) ** 3
    memory = max(MEMORY_FACTORS[b] for b in boundaries)
    return VOXEL_FE_BYTES * voxels * memory, VOXEL_FE_SECONDS * voxels * sum(
        TIME_FACTORS[b] for b in boundaries
    )


def check_boundaries(boundaries: Sequence[str]) -> tuple[str, ...]:
    """The boundary conditions, validated and without repeats (order kept)."""
    if not boundaries:
        raise MetainvError(
            f"give at least one boundary condition ({', '.join(BOUNDARY_CONDITIONS)})"
        )
    for b in boundaries:
        if b not in BOUNDARY_CONDITIONS:
            raise MetainvError(
                f"unknown boundary condition {b!r} (expected: {', '.join(BOUNDARY_CONDITIONS)})"
            )
    return tuple(dict.fromkeys(boundaries))


def homogenize_scan(
    solid: np.ndarray,
    tissue_modulus: float = 1.0,
    poisson_ratio: float = 0.3,
    boundaries: Sequence[str] = ("affine",),
    void_modulus_ratio: float | None = None,
    voxel_size: float = 1.0,
    solver: str = "amg",
    check_resources: bool = True,
) -> ScanHomogenization:
    """Apparent stiffness and morphometry of a segmented cube (module docstring).

    Args:
        solid: (n, n, n) bool, axis 0 along x1.
        tissue_modulus: Young's modulus of the bone tissue (``C`` is in its units).
        poisson_ratio: Poisson ratio of the tissue.
        boundaries: ``affine``, ``periodic``, ``static``; the first is the primary one.
        void_modulus_ratio: ersatz modulus of marrow voxels over the tissue's, or ``None``
            (default): no marrow elements (about 5 times faster at the same C to 1e-5 on the
            demo scan; bone islands that the BC does not hold are dropped). The static BC loads
            every boundary face and so always needs an ersatz marrow: it uses
            :data:`STATIC_VOID_MODULUS_RATIO` when this is ``None``.
        voxel_size: edge of a voxel, for the MIL lengths.
        check_resources: refuse (MetainvError) above the memory limit before solving.
    """
    boundaries = check_boundaries(boundaries)
    solid = np.asarray(solid)
    if solid.ndim != 3 or len(set(solid.shape)) != 1 or solid.dtype != bool:
        raise MetainvError(f"expected a cubic (n, n, n) boolean image, got {solid.shape}")
    n = solid.shape[0]
    if check_resources:
        memory, seconds = estimate_homogenization(n, boundaries)
        check_memory(
            memory,
            f"homogenizing a {n}^3 scan ({', '.join(boundaries)})",
            "crop a smaller region (--crop) or coarsen it (--coarsen 2)",
            seconds,
        )
    if not solid.any():
        raise MetainvError("the segmented scan has no bone voxel (check --segment/--threshold)")
    stiffness, solves = {}, {}
    for b in boundaries:
        ratio = void_modulus_ratio
        if b == "static" and ratio is None:
            ratio = STATIC_VOID_MODULUS_RATIO
        try:
            result = homogenize_voxels_detailed(
                solid, tissue_modulus, poisson_ratio, b, ratio, solver
            )
        except MetainvError as error:
            if "did not converge" not in str(error):
                raise
            raise MetainvError(
                f"{b} boundary conditions: {error} (the marrow's ersatz modulus ratio "
                f"{ratio:g} is too soft for this solver; try --void-modulus-ratio 1e-3)"
            ) from None
        stiffness[b] = result.C
        solves[b] = {
            "unknowns": result.n_unknowns,
            "cg_iterations": list(result.stats.iterations),
            "seconds": round(sum(result.seconds.values()), 3),
            "void_modulus_ratio": ratio,
        }
    Q, ortho, distance = closest_orthotropic(stiffness[boundaries[0]])
    try:
        fabric = fabric_tensor(solid, voxel_size)
    except MetainvError:
        fabric = None
    return ScanHomogenization(
        stiffness=stiffness,
        primary=boundaries[0],
        bv_tv=bv_tv(solid),
        largest_body_share=largest_body_share(solid),
        frame=Q,
        orthotropic=ortho,
        orthotropic_distance=distance,
        fabric=fabric,
        solves=solves,
    )


def tissue_unit(tissue_modulus: float | str) -> tuple[float, str]:
    """``(value, unit)`` of a tissue modulus: ``"10GPa"`` -> ``(10, "GPa")``; a bare number is
    ``normalized`` (C is then ``C / E_tissue`` for ``1``)."""
    value, unit = parse_modulus(tissue_modulus, what="tissue modulus")
    return value, unit or NORMALIZED


def scan_document(
    prepared: PreparedScan,
    result: ScanHomogenization,
    tissue_modulus: float | str,
    poisson_ratio: float,
    base_modulus: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The JSON document of a homogenized scan: a stiffness target plus the ``scan`` record."""
    value, unit = tissue_unit(tissue_modulus)
    file_name = Path(str(prepared.options.get("file", "scan"))).name
    stem = file_name.split(".")[0] or "scan"
    document: dict[str, Any] = {
        "name": name or stem,
        "description": (
            f"apparent stiffness of the scan {file_name} by voxel FE "
            f"({result.primary} boundary conditions), tissue modulus {tissue_modulus}"
        ),
        "unit": unit,
        "C": np.round(result.C, 12).tolist(),
        "source": f"metainv {VERSION} scan homogenize {file_name} sha256:"
        f"{prepared.options.get('sha256', '')[:16]}",
    }
    if base_modulus is not None:
        document["base_modulus"] = base_modulus
    document["scan"] = {
        **prepared.options,
        "tissue_modulus": value,
        "tissue_poisson_ratio": float(poisson_ratio),
        "unit": unit,
        "boundary": result.primary,
        "C21_names": list(C21_NAMES),
        "C21": {b: c21_from_matrix(C).tolist() for b, C in result.stiffness.items()},
        "bv_tv": result.bv_tv,
        "largest_body_share": result.largest_body_share,
        "orthotropic": {
            "frame": result.frame.tolist(),
            "C": result.orthotropic.tolist(),
            "relative_distance": result.orthotropic_distance,
        },
        "fabric": None if result.fabric is None else result.fabric.to_dict(),
        "solves": result.solves,
    }
    return document


def homogenize_scan_file(
    path: str | Path,
    crop: Sequence[int] | None = None,
    segmentation: str | float = "otsu",
    coarsening: int = 1,
    voxel_size: float | None = None,
    key: str | None = None,
    tissue_modulus: float | str = 1.0,
    poisson_ratio: float = 0.3,
    boundaries: Sequence[str] = ("affine",),
    void_modulus_ratio: float | None = None,
    base_modulus: str | None = None,
    solver: str = "amg",
    on_estimate: Any = None,
) -> tuple[dict[str, Any], ScanHomogenization]:
    """Read, prepare and homogenize a scan file; returns ``(document, result)``.

    ``on_estimate(n, bytes, seconds)`` is called with the estimate before solving (after the
    memory check has passed).
    """
    value, _ = tissue_unit(tissue_modulus)
    prepared = prepare_scan(path, crop, segmentation, coarsening, voxel_size, key)
    boundaries = check_boundaries(boundaries)
    n = prepared.solid.shape[0]
    memory, seconds = estimate_homogenization(n, boundaries)
    check_memory(
        memory,
        f"homogenizing a {n}^3 scan ({', '.join(boundaries)})",
        "crop a smaller region (--crop) or coarsen it (--coarsen 2)",
        seconds,
    )
    if on_estimate is not None:
        on_estimate(n, memory, seconds)
    result = homogenize_scan(
        prepared.solid,
        value,
        poisson_ratio,
        boundaries,
        void_modulus_ratio,
        prepared.voxel_size,
        solver,
        check_resources=False,
    )
    document = scan_document(prepared, result, tissue_modulus, poisson_ratio, base_modulus)
    document["scan"]["estimate"] = {"bytes": memory, "seconds": seconds}
    return document, result
