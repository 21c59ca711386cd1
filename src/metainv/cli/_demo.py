"""``metainv demo``: the end-to-end job of ``make demo`` on shipped defaults."""

from __future__ import annotations

from pathlib import Path

import typer

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
) -> None:
    """Check the built-in bone3 target (GPa, Ti-6Al-4V base, 114 GPa) and draw its surface."""
    target = read_target(DEMO_TARGET)
    report = check_stiffness(target.stiffness)
    print_report(target, report)
    if not report.admissible:
        raise fail(f"{DEMO_TARGET} is not admissible: " + "; ".join(report.failures))
    surface = plot_elastic_surface(
        target.stiffness, out / f"{DEMO_TARGET}_surface.png", title=f"{DEMO_TARGET} target"
    )
    typer.echo(f"wrote {surface}")
