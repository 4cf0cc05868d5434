"""The `matforge` command line: parse, call the library, render. No science lives here."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from matforge._version import __version__
from matforge.core.errors import MatforgeError
from matforge.core.progress import configure_logging, stderr_console


class _Group(TyperGroup):
    """Reports a MatforgeError (bad input) as one line on stderr and exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MatforgeError as exc:
            stderr_console().print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(1) from None
        finally:
            _compile_kernels_for_next_time()


def _compile_kernels_for_next_time() -> None:
    """CALPHAD programs this command ran on NumPy for want of compiled Numba kernels are
    compiled in a detached low-priority process, so the next run is faster (see
    `matforge.calphad.kernels`)."""
    import sys

    kernels = sys.modules.get("matforge.calphad.kernels")
    if kernels is None or not kernels.pending_kernels():
        return
    if not kernels.background_compile_wanted(sys.stderr.isatty()):
        return
    count = kernels.compile_in_background()
    if count:
        stderr_console().print(
            f"compiling {count} CALPHAD kernels in the background (numba, low priority); "
            "later runs use them",
            highlight=False,
        )


app = typer.Typer(
    cls=_Group,
    name="matforge",
    help="Machine-learning-driven inverse materials design.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"matforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars; warnings and errors only.")
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-v: debug).")
    ] = 0,
) -> None:
    configure_logging(verbose, quiet=quiet)


def _register() -> None:
    from matforge.cli import (
        active,
        calphad,
        causal,
        data,
        design,
        doctor,
        micro,
        mlip,
        pinn,
        plan,
        psp,
        transfer,
        xc,
    )

    app.command("doctor")(doctor.doctor)
    app.command("design")(design.design)
    app.add_typer(data.app, name="data")
    app.add_typer(calphad.app, name="calphad")
    app.add_typer(mlip.app, name="mlip")
    app.add_typer(active.app, name="active")
    app.add_typer(psp.app, name="psp")
    app.add_typer(pinn.app, name="pinn")
    app.add_typer(micro.app, name="micro")
    app.add_typer(plan.app, name="plan")
    app.add_typer(causal.app, name="causal")
    app.add_typer(transfer.app, name="transfer")
    app.add_typer(xc.app, name="xc")


_register()


def main() -> None:
    app()
