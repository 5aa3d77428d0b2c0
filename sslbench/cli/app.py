"""The typer application every ``sslbench`` sub-command registers on."""

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
