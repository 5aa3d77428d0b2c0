"""``sslbench`` command line. Each sub-command lives in its own module and registers on ``app``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time

from sslbench.cli import bench, data, export, figures, leaderboard, listing, metrics, probe, run  # noqa: E402,F401  (register commands)
from sslbench.cli.app import app, console, err_console  # noqa: E402
from sslbench.engine import distributed  # noqa: E402
from sslbench.errors import SslbenchError  # noqa: E402


def main() -> None:
    console.quiet = not distributed.is_main()  # under torchrun, rank 0 alone prints tables and progress
    try:
        app()
    except SslbenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    finally:  # typer exits through SystemExit, so this runs on success and on error alike
        distributed.shutdown()
