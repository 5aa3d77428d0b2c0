"""The typer application every ``sslbench`` sub-command registers on."""

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Benchmark self-supervised pretext tasks for nuclei instance segmentation.")
console = Console()
err_console = Console(stderr=True)
