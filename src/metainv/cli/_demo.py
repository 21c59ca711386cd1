"""``metainv demo``: the end-to-end job of ``make demo`` on shipped defaults.

Inverse design for the built-in bone3 target (bovine trabecular bone, Ti-6Al-4V base material,
114 GPa) with the shipped truss model: admissibility check, 10,000 candidates, the five best
distinct designs verified and refined by FE, STL and elastic-surface comparisons.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from metainv.cli._app import app
from metainv.cli._errors import fail, handle_errors
from metainv.cli._stiffness import print_report
from metainv.targets import read_target
from metainv.tensors import check_stiffness
from metainv.viz import plot_elastic_surface

DEMO_TARGET = "bone3"


@app.command("demo")
@handle_errors
def demo_command(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the demo outputs."),
    samples: int = typer.Option(10_000, "--samples", help="Candidates drawn."),
    top: int = typer.Option(5, "--top", help="Distinct designs verified and refined by FE."),
) -> None:
    """Design truss lattices for the bone3 target (GPa, Ti-6Al-4V, 114 GPa) and show them."""
    from metainv.truss.learn.artifacts import load_models
    from metainv.truss.learn.inverse import DesignSettings, design_for_target, write_design_outputs

    console = Console()
    target = read_target(DEMO_TARGET)
    report = check_stiffness(target.stiffness)
    print_report(target, report)
    if not report.admissible:
        raise fail(f"{DEMO_TARGET} is not admissible: " + "; ".join(report.failures))
    plot_elastic_surface(
        target.stiffness, out / f"{DEMO_TARGET}_surface.png", title=f"{DEMO_TARGET} target"
    )
    start = time.perf_counter()
    candidates = design_for_target(
        load_models(),
        target.stiffness,
        DesignSettings(samples=samples, top=top),
        on_step=lambda message: console.print(f"  {message}"),
    )
    write_design_outputs(target.stiffness, candidates, out)
    table = Table(title=f"bone3 designs ({time.perf_counter() - start:.0f} s) -> {out}")
    for column in ("#", "topology (S,t) x3", "rho", "NMSE forward", "NMSE FE", "files"):
        table.add_column(column, justify="right")
    for rank, candidate in enumerate(candidates, start=1):
        table.add_row(
            str(rank),
            " ".join(f"{s},{t}" for s, t in candidate.design.topology),
            f"{candidate.design.relative_density:.4f}",
            f"{candidate.nmse_forward:.4f}",
            f"{candidate.nmse_fe:.4f}",
            f"candidate_{rank:02d}.stl / _surface.png",
        )
    console.print(table)
    console.print(f"designs: {out / 'designs.json'}")
