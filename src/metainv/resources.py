"""Resource guards: memory (and time) estimates of the expensive requests, refused above a limit
before anything is allocated, and sane lower bounds on resolutions.

The limit is :func:`memory_limit`: ``set_memory_limit`` (the CLI's ``--max-memory``), else the
environment variable ``METAINV_MAX_MEMORY`` (``8GB``, ``512MiB``, a number of bytes), else
:data:`DEFAULT_FRACTION` of the machine's physical memory. Estimates are calibrated on this
code's peak resident memory (voxel FE: about 5 kB per voxel at 24^3-40^3) with a margin.
"""

from __future__ import annotations

import os
import re

from metainv.errors import MetainvError

#: Default limit: this fraction of the machine's physical memory.
DEFAULT_FRACTION = 0.5
ENV_VAR = "METAINV_MAX_MEMORY"
#: Peak bytes per voxel of voxel FE homogenization (stiffness matrix, AMG, six load cases).
VOXEL_FE_BYTES = 6000
#: Seconds per voxel of voxel FE homogenization on one core (order of magnitude).
VOXEL_FE_SECONDS = 2.5e-4
#: Peak bytes per grid sample of marching-cubes export (fields, masks, triangles).
VOXEL_MESH_BYTES = 200
#: Fewest voxels per cell edge for FE homogenization: coarser grids are the solid's stiffness
#: (``1``) or a few voxels' caricature of the design.
MIN_FE_RESOLUTION = 8
#: Fewest samples per cell edge for a marching-cubes export.
MIN_MESH_RESOLUTION = 4
#: Polygon sides of a strut: at least a triangle, at most a smooth circle.
SEGMENT_RANGE = (3, 256)
#: Peak bytes per mesh triangle of the strut mesher (manifold3d booleans, trimesh).
TRIANGLE_BYTES = 400
#: Peak bytes per element of ``topopt`` (optimizer and the de-homogenized part's mesh; measured
#: 2.0 GB at 40x20x8 and 6.2 GB at 80x40x8 elements, about 0.22 MB per element).
TOPOPT_ELEMENT_BYTES = 250_000
#: Peak bytes per sampled design of ``design`` (candidates, forward predictions).
DESIGN_SAMPLE_BYTES = 20_000

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_limit: int | None = None


def parse_size(text: str | int | float) -> int:
    """Bytes of a size such as ``8GB``, ``512 MiB``, ``2e9`` (a one-line error otherwise)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(
            r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text)
        )
        if not match or match.group(2).lower() not in _UNITS:
            raise MetainvError(
                f"invalid memory size {text!r}: expected a number with an optional unit "
                f"(B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 8GB"
            )
        value, unit = float(match.group(1)), match.group(2).lower()
    size = value * _UNITS[unit]
    if not size > 0 or size > 2**62:
        raise MetainvError(f"invalid memory size {text!r}: must be positive and finite")
    return int(size)


def format_size(size: float) -> str:
    """``size`` bytes in a short human unit (``1.5 GiB``)."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{int(size)} B"


def format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.3g} days"


def physical_memory() -> int:
    """The machine's physical memory in bytes (16 GiB when it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - non-POSIX
        return 16 * 2**30


def set_memory_limit(limit: str | int | float | None) -> None:
    """Set the limit for this process (``None``: back to the environment or the default)."""
    global _limit
    _limit = None if limit is None else parse_size(limit)


def memory_limit() -> int:
    """The memory limit in bytes (module docstring)."""
    if _limit is not None:
        return _limit
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return parse_size(env)
    return int(DEFAULT_FRACTION * physical_memory())


def check_memory(estimate: float, request: str, hint: str, seconds: float | None = None) -> None:
    """Refuse ``request`` (a phrase naming the option) when ``estimate`` bytes exceed the limit."""
    limit = memory_limit()
    if estimate > limit:
        took = f" and about {format_seconds(seconds)}" if seconds is not None else ""
        raise MetainvError(
            f"{request} needs about {format_size(estimate)} of memory{took}, above the limit of "
            f"{format_size(limit)} (--max-memory or {ENV_VAR}); {hint}"
        )


def _positive_int(value: object, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise MetainvError(f"{option} must be a whole number, got {value!r}")
    return int(value)


def check_fe_resolution(resolution: object, option: str = "--resolution") -> int:
    """A voxel-FE resolution (voxels per cell edge) within the lower bound and memory limit."""
    n = _positive_int(resolution, option)
    if n < MIN_FE_RESOLUTION:
        why = "the solid's stiffness" if n == 1 else "a grid that does not resolve the design"
        raise MetainvError(
            f"{option} must be at least {MIN_FE_RESOLUTION} voxels per cell edge for FE "
            f"homogenization, got {n} ({why})"
        )
    check_memory(
        VOXEL_FE_BYTES * float(n) ** 3,
        f"voxel FE at {option} {n} ({n}^3 voxels)",
        "lower --resolution",
        seconds=VOXEL_FE_SECONDS * float(n) ** 3,
    )
    return n


def check_mesh_resolution(resolution: object, cells: int = 1, option: str = "--resolution") -> int:
    """A marching-cubes resolution (samples per cell edge) for a block of ``cells`` cells."""
    n = _positive_int(resolution, option)
    if n < MIN_MESH_RESOLUTION:
        raise MetainvError(
            f"{option} must be at least {MIN_MESH_RESOLUTION} samples per cell edge, got {n}"
        )
    check_memory(
        VOXEL_MESH_BYTES * float(n) ** 3 * max(1, cells),
        f"a mesh at {option} {n} ({n}^3 samples per cell, {cells} cells)",
        "lower --resolution or export fewer cells",
    )
    return n


def check_segments(segments: object, nodes: int, struts: int) -> int:
    """Strut polygon sides within :data:`SEGMENT_RANGE` and the memory limit."""
    n = _positive_int(segments, "--segments")
    low, high = SEGMENT_RANGE
    if n < low:
        raise MetainvError(f"--segments must be at least {low}, got {n}")
    if n > high:
        raise MetainvError(f"--segments must be at most {high} polygon sides, got {n}")
    triangles = nodes * n * n + struts * 4 * n
    check_memory(
        TRIANGLE_BYTES * float(triangles),
        f"--segments {n} ({nodes} joints, {struts} struts, about {triangles:,} triangles)",
        "lower --segments or export fewer cells",
    )
    return n


def check_elements(elements: tuple[int, ...], option: str = "--nel") -> tuple[int, ...]:
    """Finite-element counts per axis: each at least 1, their product within the memory limit."""
    counts = tuple(_positive_int(value, option) for value in elements)
    if any(value < 1 for value in counts):
        raise MetainvError(f"{option} must be positive element counts, got {counts}")
    total = 1.0
    for value in counts:
        total *= value
    check_memory(
        TOPOPT_ELEMENT_BYTES * total,
        f"{option} {' '.join(map(str, counts))} ({total:,.0f} elements)",
        f"lower {option}",
    )
    return counts


def check_samples(samples: object, option: str = "--samples") -> int:
    """A number of sampled designs within the memory limit."""
    n = _positive_int(samples, option)
    if n < 1:
        raise MetainvError(f"{option} must be at least 1, got {n}")
    check_memory(DESIGN_SAMPLE_BYTES * float(n), f"{option} {n}", f"lower {option}")
    return n
