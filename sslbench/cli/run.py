"""``sslbench run``: pretrain, finetune and score one strategy, then print its leaderboard row."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sslbench.cli.app import app, console, json_on_stdout, print_json, warn
from sslbench.cli.options import (AllowSynthetic, Backbone, Compile, Data, Device, Head, Overrides, Plugins,
                                  Preset, TestData, Unlabeled, absolute)
from sslbench.engine import distributed
from sslbench.registry import load_plugins


def load_plugins_for_cli(plugins: list[str]) -> list[str]:
    """``registry.load_plugins``, a broken installed plugin as a warning line; returns the installed ones."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return load_plugins(plugins)
        finally:
            for warning in caught:
                warn(str(warning.message))


def attach_log_file(path: Path) -> logging.Handler:
    """The run's log file; under torchrun only rank 0 writes it (the others log nowhere)."""
    if not distributed.is_main():
        return logging.NullHandler()
    from sslbench.engine.loop import LOG_FORMAT

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("sslbench")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def validation_table(result: dict, title: str, caption: str) -> Table:
    """A --validate-only run: per-image-mean val AJI at each validation step (argmax classes), then with the
    post-processing chosen on the same images (optimistic: chosen and scored on them)."""
    table = Table(title=title, caption=caption)
    for header in ("Val AJI % at step " + " / ".join(str(v["step"]) for v in result["validation"]),
                   "Val AJI %, post-processing chosen on val", "Chosen", "Finetune s"):
        table.add_column(header, justify="right")
    chosen = result["postprocess"]
    table.add_row(" / ".join(f"{100 * v['aji']:.2f}" for v in result["validation"]) or "—",
                  f"{100 * chosen['val_aji_per_image_mean']:.2f}" if chosen else "— (no grid)",
                  ", ".join(f"{k} {v}" for k, v in chosen.get("values", {}).items()) or "—",
                  f"{result['seconds']['finetune']:.0f}")
    return table


def default_out_dir(pretext: str) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{pretext}"


@app.command()
def run(
    pretext: Annotated[str, typer.Option(help="Pretext task or strategy (sslbench list pretexts).")] = "instance_aware",
    preset: Preset = "smoke",
    data: Data = None,
    test_data: TestData = None,
    allow_synthetic: AllowSynthetic = False,
    unlabeled: Unlabeled = None,
    backbone: Backbone = None,
    head: Head = None,
    device: Device = "auto",
    seed: Annotated[int, typer.Option(min=0, help="Seeds data splits, sampling and initialisation.")] = 0,
    out: Annotated[Path, typer.Option(help="Run folder. Default: runs/<time>-<pretext>.")] = None,
    compile_: Compile = False,
    plugin: Plugins = [],  # noqa: B006  (typer reads the default; it is never mutated)
    set_: Overrides = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's result record (metrics.json's content "
                                                         "and the run folder) as JSON instead of a table; "
                                                         "progress goes to stderr.")] = False,
    validate_only: Annotated[bool, typer.Option(
        "--validate-only", help="Stop after the validation images (checkpoint and post-processing chosen, scored): "
                                "score no test image, for choosing a recipe. Pass --test-data all the same, so the "
                                "split is the one a full run draws; score the fixed choice once later with "
                                "`sslbench predict RUN_FOLDER TEST_DATA --out DIR`.")] = False,
) -> None:
    """Pretrain an encoder, finetune ResUNet on it, score AJI on held-out images.

    Re-running the same command with the same --out resumes an interrupted run from its last
    checkpoint; a finished run folder is never overwritten."""
    from sslbench.bench.leaderboard import run_table, strategy_label
    from sslbench.config import paper_value, resolve_run_config
    from sslbench.engine.accel import describe_arithmetic
    from sslbench.pipeline.run import run_job
    from sslbench.pipeline.run_folder import RunFolder

    load_plugins_for_cli(plugin)
    cfg = resolve_run_config(pretext, preset=preset, backbone=backbone, head=head, seed=seed, device=device,
                             data=absolute(data), test_data=absolute(test_data), unlabeled=absolute(unlabeled),
                             allow_synthetic=allow_synthetic, validate_only=validate_only,
                             overrides=[*set_, *(["engine.compile=True"] if compile_ else [])])
    folder = RunFolder(out or default_out_dir(pretext))
    folder.create()
    folder.check_same_config(cfg)
    if point := folder.resume_point():
        with json_on_stdout(as_json):
            console.print(f"Resuming the unfinished run in {folder.path}: {point}.", highlight=False, soft_wrap=True)
    handler = attach_log_file(folder.log)
    try:
        with json_on_stdout(as_json):
            result = run_job(cfg, folder.path)
    except Exception as exc:  # the log file of a long run must say why it stopped
        logging.getLogger("sslbench").error("run stopped: %s: %s", type(exc).__name__, exc)
        raise
    finally:
        logging.getLogger("sslbench").removeHandler(handler)
        handler.close()
    if as_json:
        print_json({"run_folder": str(folder.path), "overlay": str(folder.overlay), **result})
        return
    data_name = "synthetic H&E (built-in)" if data is None else str(data)
    if result["test"] is None:
        console.print(validation_table(result, f"sslbench run --validate-only — {pretext}",
                                       f"Data: {data_name}; preset {preset}; seed {seed}; "
                                       f"{describe_arithmetic(result['arithmetic'])}. No test image was scored."))
        console.print(f"Run folder: {folder.path}")
        return
    test_name = f"the labelled images of {test_data}" if test_data else "held-out test images"
    paper = "Paper: MoNuSeg 2018 test set, Tables 2–3"
    if data is None:  # beside the paper's, a synthetic number would read as a reproduction
        paper += " — a reference, not a comparison: numbers on synthetic data do not reproduce it"
    caption = (f"Data: {data_name}; preset {preset}; seed {seed}; device {result['device']} "
               f"({describe_arithmetic(result['arithmetic'])}: another arithmetic lands elsewhere, "
               "docs/reliability.md#seeding). "
               f"AJI: mean of the per-image AJI over {len(result['images']['test'])} {test_name} "
               f"(as the MoNuSeg challenge ranks; metrics.json also has the summed variant). {paper}.")
    console.print(run_table([{"label": strategy_label(pretext), "paper_aji": paper_value(pretext), **result}],
                            title=f"sslbench run — {pretext}", caption=caption, reference_only=data is None))
    console.print(f"Run folder: {folder.path}")
    console.print(f"Overlay of a test image: {folder.overlay}")
