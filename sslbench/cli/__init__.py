"""``sslbench`` command line. Each sub-command lives in its own module and registers on ``app``."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from typing import Annotated

import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time

from sslbench.cli import (  # noqa: E402,F401  (register commands)
    bench, data, doctor, export, figures, leaderboard, listing, metrics, predict, probe, run, status)
from sslbench import __version__  # noqa: E402
from sslbench.cli.app import app, console, err_console, warn  # noqa: E402
from sslbench.data.io import DataWarning  # noqa: E402
from sslbench.engine import distributed  # noqa: E402
from sslbench.errors import SslbenchError  # noqa: E402

UsageError = typer.BadParameter.__mro__[1]  # click's (vendored by newer typer): any bad command line
show_tracebacks = False  # --debug: main() prints the traceback behind a one-line error


def print_version(asked: bool) -> None:
    if asked:
        console.print(f"sslbench {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def global_options(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=print_version,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="After a one-line error, also print its full traceback "
                                                        "(to report a bug).")] = False,
) -> None:
    global show_tracebacks
    show_tracebacks = debug


def print_traceback(exc: BaseException) -> None:
    """The traceback of ``exc`` with the causes that its one-line message left out (``raise ... from None``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__suppress_context__ = False
        exc = exc.__cause__ or exc.__context__
    err_console.print_exception()


def show_data_warnings_in_one_line() -> None:
    """A fixed-up annotation is one yellow line naming the file, not Python's two-line warning
    with the source line that raised it."""
    python_default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            warn(str(message))
        else:
            python_default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main() -> None:
    show_data_warnings_in_one_line()
    # SIGTERM (kill, timeout, a scheduler's stop) as Ctrl-C: local bench tasks are cancelled, not left
    # running to race a re-run, and the process group is shut down. SIGINT too, where it came in ignored
    # (a script's background job): local tasks would inherit that and never stop on their SIGINT
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.default_int_handler)
    console.quiet = not distributed.is_main()  # under torchrun, rank 0 alone prints tables and progress
    try:
        # not standalone: a bad option raises here and is printed in one line like every other error
        code = app(standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `sslbench`: the help, as in standalone mode
            exc.show()
            sys.exit(2)
        command = f" {exc.ctx.info_name}" if exc.ctx is not None and exc.ctx.parent is not None else ""
        err_console.print(f"[bold red]error:[/] {exc.format_message()} (sslbench{command} --help lists the options)",
                          highlight=False, soft_wrap=True)
        code = 2
    except SslbenchError as exc:
        if show_tracebacks:
            print_traceback(exc)
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        code = 2
    except typer.Abort:  # Ctrl-C
        err_console.print("Aborted.")
        code = 1
    finally:  # on success and on error alike
        distributed.shutdown()
    sys.exit(code if isinstance(code, int) else 0)
