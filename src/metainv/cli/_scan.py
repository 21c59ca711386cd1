"""``metainv scan ...``: micro-CT scans to stiffness (:mod:`metainv.scan`).

``scan demo`` writes the shipped bone-like demo image, ``scan homogenize`` the apparent
stiffness of a scan (JSON usable as a ``design`` target, elastic-surface PNG) and ``scan map``
a stiffness map over windows of a larger scan (and, with ``--implant``, a graded lattice).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from metainv.cli._app import app
from metainv.cli._errors import handle_errors
from metainv.errors import MetainvError
from metainv.files import check_output_file, write_bytes_atomic, write_text_atomic
from metainv.resources import format_seconds, format_size

scan_app = typer.Typer(help="Micro-CT scans: stiffness, stiffness maps.", no_args_is_help=True)
app.add_typer(scan_app, name="scan")

SCAN_HELP = "3-D image: .npy, .tif/.tiff (or a folder of slices), .mat, .nii(.gz), .raw + .json."
CROP_HELP = "Cubic region X,Y,Z,N (origin voxel and edge); default the whole (cubic) scan."
SEGMENT_HELP = "otsu (default), binary (a 0/1 image) or a grey threshold (solid: value >= it)."
TISSUE_HELP = "Young's modulus of the bone tissue, e.g. 10GPa (a bare number: C / E_tissue)."
BOUNDARY_HELP = (
    "affine (kinematic), periodic, static (traction); repeat to compare (first: JSON C)."
)
VOID_HELP = (
    "Ersatz modulus of marrow voxels over the tissue's; 0 (default) removes the marrow "
    "(static then uses 1e-3)."
)


def _void(ratio: float) -> float | None:
    if ratio < 0 or ratio > 1:
        raise MetainvError(f"--void-modulus-ratio must lie in [0, 1], got {ratio}")
    return None if ratio == 0 else ratio


def _crop(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise MetainvError(f"--crop must be 4 whole numbers X,Y,Z,N, got {text!r}") from None


@scan_app.command("demo")
@handle_errors
def demo_command(
    out: Path = typer.Option(..., "--out", help="The .npy file to write."),
    size: int = typer.Option(96, "--size", help="Edge of the cube in voxels."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random field."),
) -> None:
    """Write the deterministic bone-like demo scan (grey uint8, graded BV/TV along x1)."""
    from metainv.scan.demo import demo_scan

    if out.suffix != ".npy":
        raise MetainvError(f"--out must be a .npy file, got {out}")
    check_output_file(out)
    buffer = io.BytesIO()
    np.save(buffer, demo_scan(size, seed))
    write_bytes_atomic(out, buffer.getvalue())
    Console(stderr=True).print(f"[green]wrote[/] {out} ({size}^3 voxels, uint8)")


@scan_app.command("homogenize")
@handle_errors
def homogenize_command(
    scan: Path = typer.Argument(..., help=SCAN_HELP),
    out: Path = typer.Option(None, "--out", help="JSON to write (a valid `design` target)."),
    png: Path = typer.Option(None, "--png", help="Elastic-surface image to write."),
    crop: str = typer.Option(None, "--crop", help=CROP_HELP),
    segmentation: str = typer.Option("otsu", "--segment", "--threshold", help=SEGMENT_HELP),
    coarsen: int = typer.Option(1, "--coarsen", help="Coarsen by this factor per axis."),
    voxel_size: float = typer.Option(None, "--voxel-size", help="Voxel edge (file's, else 1)."),
    key: str = typer.Option(None, "--key", help="Variable of a .mat file."),
    tissue_modulus: str = typer.Option("1", "--tissue-modulus", help=TISSUE_HELP),
    poisson: float = typer.Option(0.3, "--poisson", help="Poisson ratio of the tissue."),
    boundary: list[str] = typer.Option(["affine"], "--boundary", help=BOUNDARY_HELP),
    void_ratio: float = typer.Option(0.0, "--void-modulus-ratio", help=VOID_HELP),
    base_modulus: str = typer.Option(
        None, "--base-modulus", help="Printed material's modulus recorded in the JSON, e.g. 114GPa."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON document."),
) -> None:
    """Apparent stiffness (21 constants), BV/TV, connectivity, orthotropic fit and MIL fabric."""
    from metainv.scan import homogenize_scan_file

    for path in (out, png):
        if path is not None:
            check_output_file(path)
    console = Console(stderr=True)

    def on_estimate(n: int, memory: float, seconds: float) -> None:
        console.print(
            f"{n}^3 voxels: about {format_size(memory)} of memory and "
            f"{format_seconds(seconds)} on one core"
        )

    document, result = homogenize_scan_file(
        scan,
        crop=_crop(crop),
        segmentation=segmentation,
        coarsening=coarsen,
        voxel_size=voxel_size,
        key=key,
        tissue_modulus=tissue_modulus,
        poisson_ratio=poisson,
        boundaries=boundary,
        void_modulus_ratio=_void(void_ratio),
        base_modulus=base_modulus,
        on_estimate=on_estimate,
    )
    if out is not None:
        write_text_atomic(out, json.dumps(document, indent=2) + "\n")
    if png is not None:
        from metainv.viz import plot_elastic_surface

        compare = [b for b in result.stiffness if b != result.primary]
        plot_elastic_surface(
            result.C,
            png,
            compare=result.stiffness[compare[0]] if compare else None,
            labels=(result.primary, compare[0] if compare else ""),
            title=f"{scan.name}: apparent stiffness",
            modulus_label=f"E(d) [{document['unit']}]",
        )
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    _print_summary(document, out, png)


def _print_summary(document: dict, out: Path | None, png: Path | None) -> None:
    record = document["scan"]
    table = Table(title=f"{record['file']} ({'x'.join(map(str, record['shape']))} voxels)")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("BV/TV", f"{record['bv_tv']:.4f}")
    table.add_row("largest body share", f"{record['largest_body_share']:.4f}")
    if record["fabric"] is not None:
        table.add_row(
            "degree of anisotropy (MIL)", f"{record['fabric']['degree_of_anisotropy']:.3f}"
        )
    table.add_row("distance to orthotropic", f"{record['orthotropic']['relative_distance']:.3g}")
    for b, c21 in record["C21"].items():
        diag = [c21[i] for i in (0, 6, 11, 15, 18, 20)]
        table.add_row(f"{b}: C11 C22 C33 C44 C55 C66", " ".join(f"{v:.4g}" for v in diag))
    Console().print(table)
    written = [str(p) for p in (out, png) if p is not None]
    if written:
        Console(stderr=True).print(f"[green]wrote[/] {', '.join(written)} (unit {record['unit']})")


@scan_app.command("map")
@handle_errors
def map_command(
    scan: Path = typer.Argument(..., help=SCAN_HELP),
    out: Path = typer.Option(..., "--out", help="Folder: windows/, map.npz, map.vtu, map.json."),
    window: int = typer.Option(..., "--window", help="Window edge in (coarsened) voxels."),
    stride: int = typer.Option(..., "--stride", help="Step between windows in voxels."),
    crop: str = typer.Option(None, "--crop", help="Region X,Y,Z,NX,NY,NZ (default: all)."),
    segmentation: str = typer.Option("otsu", "--segment", "--threshold", help=SEGMENT_HELP),
    coarsen: int = typer.Option(1, "--coarsen", help="Coarsen by this factor per axis."),
    voxel_size: float = typer.Option(None, "--voxel-size", help="Voxel edge (file's, else 1)."),
    key: str = typer.Option(None, "--key", help="Variable of a .mat file."),
    tissue_modulus: str = typer.Option("1", "--tissue-modulus", help=TISSUE_HELP),
    poisson: float = typer.Option(0.3, "--poisson", help="Poisson ratio of the tissue."),
    boundary: str = typer.Option("affine", "--boundary", help="affine, periodic or static."),
    void_ratio: float = typer.Option(0.0, "--void-modulus-ratio", help=VOID_HELP),
    workers: int = typer.Option(1, "--workers", help="Windows computed in parallel."),
    backend: str = typer.Option("local", "--backend", help="local (processes) or dask."),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address."),
) -> None:
    """Stiffness map over windows of a scan (resumable: finished windows are kept)."""
    from metainv.scan.homogenize import prepare_scan, tissue_unit
    from metainv.scan.maps import stiffness_map

    value, unit = tissue_unit(tissue_modulus)
    prepared = prepare_scan(scan, _crop(crop), segmentation, coarsen, voxel_size, key, cube=False)
    console = Console(stderr=True)

    def on_window(index: int, total: int, reused: bool) -> None:
        console.print(f"window {index + 1}/{total}{' (kept)' if reused else ''}")

    record = {**prepared.options, "unit": unit}
    summary = stiffness_map(
        prepared.solid,
        out,
        window,
        stride,
        value,
        poisson,
        boundary,
        _void(void_ratio),
        prepared.voxel_size,
        record,
        on_window,
        workers,
        backend,
        scheduler,
    )
    grid = "x".join(map(str, summary["grid"]))
    console.print(f"[green]wrote[/] {out}/map.npz, map.vtu, map.json ({grid} windows, {unit})")


@scan_app.command("implant")
@handle_errors
def implant_command(
    map_folder: Path = typer.Argument(..., help="Folder of `metainv scan map` (map.json)."),
    out: Path = typer.Option(..., "--out", help="Folder: designs/ per window, part/ (STL...)."),
    base_modulus: str = typer.Option(
        None, "--base-modulus", help="Printed material's Young's modulus, e.g. 114GPa."
    ),
    family: str = typer.Option("truss", "--family", help="Family with a grade function."),
    cell_voxels: float = typer.Option(
        None, "--cell-voxels", help="Lattice cell edge in map voxels.", show_default="the stride"
    ),
    zeta: float = typer.Option(0.5, "--zeta", help="RBF transition width (SI Eq. 14)."),
    samples: int = typer.Option(None, "--samples", help="Candidates drawn per window (truss)."),
    refine: bool = typer.Option(
        None, "--refine/--no-refine", help="Polish by FE (truss).", show_default="the family's"
    ),
    force: bool = typer.Option(False, "--force", help="Replace a previous part."),
) -> None:
    """Design each window of a stiffness map and grade a lattice between them (STL)."""
    from metainv.scan.implant import graded_implant

    console = Console(stderr=True)
    given = {"refine": refine, "samples": samples}
    options = {name: value for name, value in given.items() if value is not None}
    summary = graded_implant(
        map_folder,
        out,
        base_modulus,
        family,
        cell_voxels,
        zeta,
        force,
        on_step=lambda message: console.print(message),
        design_options=options,
    )
    parts = [f"STL watertight: {summary.get('stl', {}).get('watertight')}"]
    if "cells" in summary:
        parts.insert(0, f"{summary['cells']} cells")
    if "local_check" in summary:
        parts.append(f"local check max NMSE {summary['local_check']['max_nmse']:.3g}")
    console.print(f"[green]wrote[/] {out}/part ({', '.join(parts)})")
