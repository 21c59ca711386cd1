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

from metainv.api import design
from metainv.cli._app import app
from metainv.cli._design import candidates_table
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
    top: int = typer.Option(5, "--top", help="Designs kept (top + 3 verified by FE)."),
) -> None:
    """Design truss lattices for the bone3 target (GPa, Ti-6Al-4V, 114 GPa) and show them."""
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
    result = design(
        target,
        family="truss",
        samples=samples,
        top=top,
        on_step=lambda message: console.print(f"  {message}"),
    )
    result.write(out)
    title = f"bone3 designs ({time.perf_counter() - start:.0f} s) -> {out}"
    console.print(candidates_table(result, title))
    console.print(f"designs: {out / 'designs.json'}")
