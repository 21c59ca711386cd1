"""Root typer application; sub-commands live in sibling modules and register here."""

from __future__ import annotations

import typer

from metainv.version import __version__

app = typer.Typer(
    name="metainv",
    help="Inverse design of architected metamaterials.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"metainv {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Inverse design of architected metamaterials."""


def main() -> None:
    """Console-script entry point."""
    app()
