"""``sslbench`` command line. Each sub-command lives in its own module and registers on ``app``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time

from sslbench.cli import bench, data, export, figures, leaderboard, listing, metrics, run  # noqa: E402,F401  (register commands)
from sslbench.cli.app import app, err_console  # noqa: E402
from sslbench.errors import SslbenchError  # noqa: E402


def main() -> None:
    try:
        app()
    except SslbenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
