"""Root typer application; sub-commands live in sibling modules and register here.

Start-up is lazy: ``metainv --help`` and ``metainv --version`` import no command module (and so
no torch, scipy, trimesh or matplotlib); the command modules are imported the first time a
command is resolved (:data:`COMMANDS` names each command's module and one-line summary for the
root help). Parser errors are one line (``error: ...``, exit 2) like every other error.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer import _click as click  # typer's own (vendored) click
from typer.core import TyperCommand, TyperGroup

from metainv.cli._errors import EXIT_BAD_INPUT, debug_enabled, describe, one_line, set_debug
from metainv.resources import set_memory_limit
from metainv.version import VERSION

#: Root command -> (module under metainv.cli that registers it, one-line summary for --help).
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("_data", "Sample designs of FAMILY and label them by FE."),
    "design": ("_design", "Design microstructures whose FE stiffness matches TARGET."),
    "demo": ("_demo", "Design truss lattices for the bone3 target and show them."),
    "homogenize": ("_designs", "Effective stiffness of a design (FE homogenization)."),
    "export": ("_designs", "Export a finite block of a design (STL mesh, JSON graph, PNG)."),
    "process": ("_process", "Additive processes: list them, check a design's printability."),
    "grade": ("_grade", "Functionally graded lattice: JSON graph, STL, VTU, PNG."),
    "topopt": ("_topopt", "Minimize compliance of a graded lattice and de-homogenize it."),
    "stiffness": ("_stiffness", "Check a stiffness target and draw its elastic surface."),
    "laws": ("_laws", "Material laws of topology optimization: list, regenerate data."),
    "train": ("_models", "Train forward and inverse models."),
    "evaluate": ("_models", "Evaluate trained models against FE data."),
    "serve": ("_serve", "Web app: check targets, run designs, view and grade results."),
    "scan": ("_scan", "Micro-CT scans: stiffness, stiffness maps, graded implants."),
}
#: Modules that add sub-commands to another module's group (imported with all the others).
EXTRA_MODULES = ("_spinodoid",)

_loaded = False


def load_commands() -> None:
    """Import every command module (each registers its commands on :data:`app`)."""
    global _loaded
    if _loaded:
        return
    for module in dict.fromkeys([*(m for m, _ in COMMANDS.values()), *EXTRA_MODULES]):
        importlib.import_module(f"metainv.cli.{module}")
    _loaded = True


class MetainvGroup(TyperGroup):
    """The root group: commands loaded on first use, one-line errors for everything."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*COMMANDS, *super().list_commands(ctx)]))

    def _load_into_self(self) -> None:
        load_commands()
        full = typer.main.get_command(app)
        for name, command in getattr(full, "commands", {}).items():
            self.commands.setdefault(name, command)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        # not loaded yet, so not resolved for a run (resolve_command loads): the root --help
        # lists the command by its summary, importing nothing
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1])

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] in COMMANDS and args[0] not in self.commands:
            self._load_into_self()
        return super().resolve_command(ctx, args)

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if args is None:
            args = sys.argv[1:]
        args = hoist_global_options(list(args))
        # per invocation (the app may run several times in one process, e.g. in tests)
        set_debug("--debug" in args[: _first_command_index(args)])
        set_memory_limit(None)
        try:
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except typer.Exit as done:
            code = done.exit_code
        except click.exceptions.UsageError as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # the help is already printed
                return _exit(error.exit_code, standalone_mode)
            hint = ""
            if error.ctx is not None and error.ctx.command_path:
                hint = f" (see `{error.ctx.command_path} --help`)"
            click.echo(f"error: {one_line(error.format_message())}{hint}", err=True)
            code = EXIT_BAD_INPUT
        except click.exceptions.ClickException as error:
            click.echo(f"error: {one_line(error.format_message())}", err=True)
            code = error.exit_code
        except typer.Abort:
            click.echo("error: aborted", err=True)
            code = 1
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            code = 130
        except Exception as error:
            if debug_enabled():
                raise
            click.echo(f"error: {describe(error)}", err=True)
            code = EXIT_BAD_INPUT
        else:
            code = result if isinstance(result, int) else 0
        return _exit(code, standalone_mode)


def _exit(code: int, standalone_mode: bool) -> int:
    if standalone_mode:
        sys.exit(code)
    return code


#: Root options also accepted after the command (``metainv design ... --debug``).
GLOBAL_FLAGS = ("--debug",)
GLOBAL_OPTIONS = ("--max-memory",)


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with the global options given after the command moved before it (no command
    defines options of these names); ``--`` ends the scan."""
    start = _first_command_index(args)
    front, rest, index = args[:start], [], start
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg in GLOBAL_FLAGS or (arg.split("=", 1)[0] in GLOBAL_OPTIONS and "=" in arg):
            front.append(arg)
        elif arg in GLOBAL_OPTIONS and index + 1 < len(args):
            front.extend(args[index : index + 2])
            index += 1
        else:
            rest.append(arg)
        index += 1
    return front + rest


def _first_command_index(args: list[str]) -> int:
    """Index of the command name in ``args`` (skipping root options and their values)."""
    index = 0
    while index < len(args):
        if args[index] in GLOBAL_OPTIONS:
            index += 2
        elif args[index].startswith("-"):
            index += 1
        else:
            return index
    return len(args)


app = typer.Typer(
    name="metainv",
    cls=MetainvGroup,
    help="Inverse design of architected metamaterials.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"metainv {VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        help="Show the full traceback of an error (also METAINV_DEBUG=1).",
    ),
    max_memory: str = typer.Option(
        None,
        "--max-memory",
        metavar="SIZE",
        help="Refuse requests estimated above SIZE of memory, e.g. 8GB (also "
        "METAINV_MAX_MEMORY; default half the machine's memory).",
    ),
) -> None:
    """Inverse design of architected metamaterials."""
    if debug:
        set_debug(True)
    if max_memory is not None:
        set_memory_limit(max_memory)


def main() -> None:
    """Console-script entry point."""
    app()
