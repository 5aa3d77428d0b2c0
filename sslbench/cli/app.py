"""The typer application every ``sslbench`` sub-command registers on."""

import contextlib
import json
import sys

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Benchmark self-supervised pretext tasks for nuclei instance segmentation.")
console = Console()
err_console = Console(stderr=True)


def warn(message: str) -> None:
    """One yellow line on stderr: something was left out, the command goes on."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def json_on_stdout(as_json: bool):
    """With --json, whatever the work prints (progress bars, notes) goes to stderr, so stdout carries only
    the JSON printed after it (rich consoles write to the sys.stdout of the moment)."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def print_json(value) -> None:
    """A command's result on stdout as one JSON document (paths and other objects as text)."""
    typer.echo(json.dumps(value, indent=2, default=str))
