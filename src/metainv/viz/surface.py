"""Elastic surfaces: the directional Young's modulus ``E(d)`` of a stiffness, drawn in 3-D and in
the three coordinate planes (as in Bastek et al. 2022, Fig. 3).

The 3-D surface is the set of points ``E(d) d`` over unit directions ``d``, coloured by ``E(d)``;
the planar sections are the curves ``E(d)`` for ``d = cos(phi) e_a + sin(phi) e_b`` in the planes
e1-e2, e1-e3 and e2-e3, drawn in polar axes. Tensor math comes from :mod:`metainv.tensors`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from metainv.errors import MetainvError
from metainv.tensors import directional_youngs_modulus, sphere_directions

logger = logging.getLogger(__name__)

#: The coordinate planes of the sections: name -> (axis a, axis b), 0-based.
PLANES: dict[str, tuple[int, int]] = {"e1-e2": (0, 1), "e1-e3": (0, 2), "e2-e3": (1, 2)}

COLORMAP = "viridis"
LINE_STYLES = ({"color": "tab:blue", "linestyle": "-"}, {"color": "tab:orange", "linestyle": "--"})


def elastic_surface(
    C: np.ndarray, n_polar: int = 61, n_azimuth: int = 121
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``E(d) d`` (n_polar, n_azimuth, 3) of the elastic surface and ``E(d)`` (n_polar,
    n_azimuth) over a polar/azimuth grid of directions, for a stiffness ``C`` (6, 6)."""
    directions, _, _ = sphere_directions(n_polar, n_azimuth)
    moduli = _directional_moduli(C, directions.reshape(-1, 3)).reshape(directions.shape[:2])
    return moduli[..., None] * directions, moduli


def plane_section(
    C: np.ndarray, axes: tuple[int, int], n_angles: int = 361
) -> tuple[np.ndarray, np.ndarray]:
    """``E(d)`` (n_angles,) for ``d = cos(phi) e_a + sin(phi) e_b``, ``phi`` (n_angles,) in
    [0, 2 pi], with ``(a, b) = axes`` (0-based). Returns ``(phi, E)``."""
    angles = np.linspace(0.0, 2 * np.pi, n_angles)
    directions = np.zeros((n_angles, 3))
    directions[:, axes[0]] = np.cos(angles)
    directions[:, axes[1]] = np.sin(angles)
    return angles, _directional_moduli(C, directions)


def plot_elastic_surface(
    C: np.ndarray,
    out_path: str | Path,
    compare: np.ndarray | None = None,
    labels: tuple[str, str] = ("target", "design"),
    title: str | None = None,
    modulus_label: str = "E(d) / E_b",
) -> Path:
    """Draw the elastic surface of ``C`` (6, 6) and its three planar sections; save to a file.

    Args:
        C: Voigt stiffness (6, 6), e.g. normalized by the base modulus.
        out_path: image file; the format follows the suffix (``.png``, ``.pdf``, ``.svg``...).
            Missing parent folders are created.
        compare: a second stiffness (6, 6) drawn as a second surface and as a dashed line in
            every section (e.g. a design against its target).
        labels: legend names of ``C`` and ``compare``.
        title: figure title.
        modulus_label: colour-bar label (the unit of ``E``).

    Returns:
        The path written.

    Raises:
        MetainvError: for a stiffness that is not a finite, positive definite (6, 6) matrix
            (``E(d)`` must be positive in every direction) or an unknown image format.
    """
    out_path = Path(out_path)
    stiffnesses = [_as_stiffness(C, labels[0])]
    if compare is not None:
        stiffnesses.append(_as_stiffness(compare, labels[1]))

    figure = Figure(figsize=(12.0, 8.5))
    canvas = FigureCanvasAgg(figure)
    _check_format(canvas, out_path)

    surfaces = [elastic_surface(stiffness) for stiffness in stiffnesses]
    sections = [
        {plane: plane_section(stiffness, axes) for plane, axes in PLANES.items()}
        for stiffness in stiffnesses
    ]
    all_moduli = np.concatenate([moduli.ravel() for _, moduli in surfaces])
    norm = Normalize(vmin=float(all_moduli.min()), vmax=float(all_moduli.max()))
    extent = float(all_moduli.max())

    grid = figure.add_gridspec(
        2, 1, height_ratios=(1.35, 1.0), left=0.04, right=0.93, bottom=0.08, top=0.92, hspace=0.3
    )
    if len(surfaces) == 1:
        top = grid[0].subgridspec(1, 4, width_ratios=(0.6, 1.0, 0.04, 0.56), wspace=0.05)
        surface_slots, colorbar_slot = [top[0, 1]], top[0, 2]
    else:
        top = grid[0].subgridspec(1, 3, width_ratios=(1.0, 1.0, 0.04), wspace=0.05)
        surface_slots, colorbar_slot = [top[0, 0], top[0, 1]], top[0, 2]
    for slot, (points, moduli), label in zip(surface_slots, surfaces, labels, strict=False):
        axes = figure.add_subplot(slot, projection="3d")
        _draw_surface(axes, points, moduli, norm, extent)
        axes.set_title(label)
    colorbar_axes = figure.add_subplot(colorbar_slot.subgridspec(3, 1, height_ratios=(1, 4, 1))[1])
    colorbar = figure.colorbar(
        ScalarMappable(norm=norm, cmap=colormaps[COLORMAP]), cax=colorbar_axes
    )
    colorbar.set_label(modulus_label)

    bottom = grid[1].subgridspec(1, 3, wspace=0.35)
    radial_limit = 1.05 * max(float(moduli.max()) for s in sections for _, moduli in s.values())
    for k, (plane, (a, b)) in enumerate(PLANES.items()):
        axes = figure.add_subplot(bottom[0, k], projection="polar")
        for section, label, style in zip(sections, labels, LINE_STYLES, strict=False):
            angles, moduli = section[plane]
            axes.plot(angles, moduli, label=label, linewidth=1.8, **style)
        axes.set_rlim(0.0, radial_limit)
        axes.set_rlabel_position(135)
        axes.set_thetagrids((0, 90, 180, 270), (f"e{a + 1}", f"e{b + 1}", "", ""))
        axes.tick_params(axis="y", labelsize=7)
        axes.set_title(f"{plane} plane", pad=14)

    if len(sections) > 1:
        figure.legend(*axes.get_legend_handles_labels(), loc="lower center", ncol=2, frameon=False)
    if title:
        figure.suptitle(title)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out_path, dpi=150)
    except OSError as error:
        raise MetainvError(f"cannot write {out_path}: {error.strerror or error}") from None
    logger.info("wrote %s", out_path)
    return out_path


def _draw_surface(
    axes: object, points: np.ndarray, moduli: np.ndarray, norm: Normalize, extent: float
) -> None:
    """Surface ``E(d) d`` coloured by ``E`` with equal axis scales."""
    colors = colormaps[COLORMAP](norm(moduli))
    axes.plot_surface(  # type: ignore[attr-defined]
        points[..., 0],
        points[..., 1],
        points[..., 2],
        facecolors=colors,
        rstride=1,
        cstride=1,
        linewidth=0,
        antialiased=False,
        shade=False,
    )
    for setter in ("set_xlim", "set_ylim", "set_zlim"):
        getattr(axes, setter)(-extent, extent)
    axes.set_box_aspect((1, 1, 1))  # type: ignore[attr-defined]
    axes.set_xlabel("e1")  # type: ignore[attr-defined]
    axes.set_ylabel("e2")  # type: ignore[attr-defined]
    axes.set_zlabel("e3")  # type: ignore[attr-defined]
    axes.tick_params(labelsize=7)  # type: ignore[attr-defined]
    axes.locator_params(nbins=4)  # type: ignore[attr-defined]


def _as_stiffness(C: np.ndarray, label: str) -> np.ndarray:
    """A finite (6, 6) float array whose ``E(d)`` is positive everywhere, or a MetainvError."""
    try:
        matrix = np.asarray(C, dtype=float)
    except (TypeError, ValueError):
        raise MetainvError(f"cannot plot {label}: entries are not numbers") from None
    if matrix.shape != (6, 6):
        raise MetainvError(f"cannot plot {label}: expected a 6x6 stiffness, got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise MetainvError(f"cannot plot {label}: the stiffness has NaN or infinite entries")
    if np.linalg.eigvalsh((matrix + matrix.T) / 2)[0] <= 0:
        raise MetainvError(
            f"cannot plot {label}: the stiffness is not positive definite, so E(d) is not "
            "positive in every direction"
        )
    return matrix


def _directional_moduli(C: np.ndarray, directions: np.ndarray) -> np.ndarray:
    return np.asarray(directional_youngs_modulus(C, directions))


def _check_format(canvas: FigureCanvasAgg, out_path: Path) -> None:
    supported = canvas.get_supported_filetypes()
    suffix = out_path.suffix.lower().lstrip(".")
    if suffix not in supported:
        raise MetainvError(
            f"cannot write {out_path}: unknown image format {out_path.suffix or '(no suffix)'}; "
            f"use one of {', '.join('.' + name for name in sorted(supported))}"
        )
