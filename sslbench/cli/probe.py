"""``sslbench probe``: what frozen pretrained encoders know about nuclei count and size."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sslbench.cli.app import app, console, err_console
from sslbench.cli.options import Device, Json, Plugins
from sslbench.cli.run import load_plugins_for_cli
from sslbench.errors import DataError


def encoder_files(paths: list[Path]) -> list[Path]:
    """Encoder .safetensors files; a run folder gives its encoder, a bench folder every encoder in it."""
    from sslbench.pipeline.run_folder import RunFolder

    found = []
    for path in paths:
        if path.is_dir():
            run_encoder = RunFolder(path).encoder.path
            found += [run_encoder] if run_encoder.is_file() else sorted((path / "encoders").glob("*.safetensors"))
        else:
            found.append(path)
    missing = [p for p in found if not p.is_file()]
    if missing or not found:
        raise DataError(f"{missing[0] if missing else paths[0]}: no encoder here; pass encoder .safetensors files, "
                        "run folders or bench folders.")
    return found


@app.command()
def probe(
    encoders: list[Path] = typer.Argument(..., help="Encoder .safetensors files, run folders or bench folders."),
    data: Path = typer.Option(None, help="Labelled images to probe on. Default: the smoke preset's synthetic data."),
    crop: int = typer.Option(128, min=32, help="Crop side in pixels."),
    crops_per_image: int = typer.Option(32, min=2, help="Seeded random crops per labelled image."),
    scales: list[int] = typer.Option(None, help="Sides of the zoomed / resampled views for the blur share "
                                                "(repeat the option). Default: 3/4, 1/2, 1/4, 1/8 of --crop."),
    seed: int = typer.Option(0, help="Seeds the crops (the same crops for every encoder)."),
    device: Device = "auto",
    as_json: Json = False,
    plugin: Plugins = [],  # noqa: B006  (typer reads the default; it is never mutated)
) -> None:
    """Linear probes of frozen encoders: leave-one-image-out R² of nucleus count and mean log nucleus
    area per crop, from the encoder's pooled deepest features (scratch encoders are the baseline), and
    the blur share: how much of the density-map drop on a zoomed view blur alone reproduces."""
    from sslbench.config import load_component
    from sslbench.eval.probe import TARGETS, default_scales, probe_encoder
    from sslbench.pipeline.artifact import EncoderArtifact
    from sslbench.pipeline.data import load_samples
    from sslbench.pipeline.phases import resolve_device

    load_plugins_for_cli(plugin)  # an encoder may be built on a plugin's backbone
    torch_device = resolve_device(device)
    scales = scales or default_scales(crop)
    files = encoder_files(encoders)
    samples = load_samples(dict(load_component("preset", "smoke").data) if data is None else
                           {"type": "path", "path": str(data)}, None)
    labelled = sum(s.labelled for s in samples)
    scores = {}
    # ticks per image (seconds each at real sizes, minutes per encoder); on stderr, so --json's stdout
    # stays one object
    columns = (TextColumn("probing [bold]{task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("probing", total=len(files) * labelled, name="")
        for path in files:
            progress.update(task, name=path.name)
            encoder, metadata = EncoderArtifact(path).module()
            scores[str(path)] = {"pretext": metadata.get("pretext"),
                                 **probe_encoder(encoder, samples, crop, crops_per_image, seed, scales, torch_device,
                                                 on_image=lambda: progress.advance(task))}
    if as_json:
        typer.echo(json.dumps(scores))
        return
    table = Table(title=f"frozen-encoder probes: {crops_per_image} crops of {crop}² per image, {labelled} images",
                  caption="R²: leave-one-image-out, a ridge regression on pooled deepest features. Blur share "
                          "at side s: (native − resampled) / (native − zoomed) mean activation of the density "
                          "map; 0: responds to content, 1: to sharpness (– where zooming does not lower it)",
                  caption_justify="left")
    for column in ("encoder", "pretext", *(f"R² {t}" for t in TARGETS), *(f"blur share {s}" for s in scales)):
        table.add_column(column, justify="left" if column in ("encoder", "pretext") else "right", overflow="fold")
    # file stems when they tell the encoders apart (a bench folder's are strategy-s<seed>): a narrow
    # terminal or a redirect would fold whole paths over many lines
    stems = [Path(p).stem for p in scores]
    labels = stems if len(set(stems)) == len(stems) else list(scores)
    for label, row in zip(labels, scores.values()):
        shares = ("–" if v is None else f"{v:.2f}" for v in row["blur_share"].values())
        table.add_row(label, str(row["pretext"]), *(f"{row[t]:.3f}" for t in TARGETS), *shares)
    console.print(table)
