"""``sslbench predict MODEL IMAGES --out DIR``: segment new images with the model a run trained, exactly
as the run scored its test images (its tiles, overlap, flips and chosen post-processing); with ground
truth, score them too."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import typer
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sslbench.cli.app import app, console, err_console
from sslbench.cli.data import file_stem, make_folder, overlay
from sslbench.cli.options import Device, Json, Plugins
from sslbench.cli.run import load_plugins_for_cli
from sslbench.data.base import Sample
from sslbench.data.io import (LABEL_SUFFIXES, check_pair, list_files, read_image, read_label_map, unique_stems,
                              write_label_map)
from sslbench.errors import ConfigError, DataError

#: one way to read an image: its name, and a call that reads it
Reader = tuple[str, Callable[[], Sample]]
OUTPUTS = ("labels", "overlays", "nuclei")


def _readers(images: Path, level: int | None, region: str | None) -> tuple[list[Reader], bool]:
    """How to read each image of IMAGES, and whether they come with ground truth (a labelled dataset)."""
    from sslbench.data.detect import dataset_from_path
    from sslbench.data.slide import Region, read_region

    if not images.exists():
        raise DataError(f"{images}: no such file or folder; pass an image, a folder of images or a slide.")
    if level is not None or region is not None:
        if images.is_dir():
            raise ConfigError(f"{images} is a folder; --level and --region read one slide (.svs or pyramidal TIFF).")
        window = None if region is None else Region.parse(region)
        level = level or 0
        pixels = read_region(images, level, window)  # now: a bad level or region stops before the model loads
        name = f"{images.stem}_level{level}" + ("" if window is None else f"_{str(window).replace(',', '_')}")
        return [(name, partial(Sample, name, pixels, None, str(images)))], False
    if images.is_file():
        return [(images.stem, lambda: Sample(images.stem, read_image(images), None, str(images)))], False
    dataset = dataset_from_path(images)
    return [(str(entry[0]), partial(dataset.load_entry, entry)) for entry in dataset.entries], \
        dataset.format != "unlabeled"


def _label_files(labels: Path, names: list[str]) -> dict[str, Path]:
    """--labels as {image name: label map}: a file for one image, else a folder of maps named after them."""
    if not labels.exists():
        raise DataError(f"{labels}: no such file or folder; pass a label map or a folder of them.")
    if labels.is_file():
        if len(names) != 1:
            raise ConfigError(f"--labels {labels} is one label map for {len(names)} images; pass a folder of "
                              "label maps named after the images.")
        return {names[0]: labels}
    found = unique_stems(list_files(labels, LABEL_SUFFIXES, recursive=True), labels)
    missing = [name for name in names if name not in found]
    if missing:
        raise DataError(f"{labels}: no label map for {len(missing)} of {len(names)} images (e.g. '{missing[0]}'); "
                        f"name each after its image ({', '.join(LABEL_SUFFIXES)}), or drop --labels.")
    return {name: found[name] for name in names}


def _with_labels(sample: Sample, path: Path) -> Sample:
    labels = read_label_map(path)
    check_pair(sample.image, labels, Path(sample.source), path)
    return Sample(sample.name, sample.image, labels, sample.source, str(path))


def _write_outputs(out: Path, sample: Sample, instances: np.ndarray, nuclei: dict[str, np.ndarray]) -> dict:
    """The label map, overlay and nuclei CSV of one image; their paths."""
    stem = file_stem(sample.name)
    label_map = write_label_map(out / "labels" / f"{stem}.png", instances)
    picture = out / "overlays" / f"{stem}.png"
    Image.fromarray(overlay(sample.image, instances)).save(picture)
    table = out / "nuclei" / f"{stem}.csv"
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(nuclei)
        formats = ("{:d}", "{:.2f}", "{:.2f}", "{:d}", "{:.4f}")
        writer.writerows([fmt.format(value) for fmt, value in zip(formats, row)] for row in zip(*nuclei.values()))
    return {"label_map": str(label_map), "overlay": str(picture), "nuclei_csv": str(table)}


@app.command()
def predict(
    model: Path = typer.Argument(..., help="A run folder of sslbench run, or its model.safetensors (with the "
                                           "run's config.json or a model.json beside it)."),
    images: Path = typer.Argument(..., help="An image, a folder of images, a labelled dataset (MoNuSeg, "
                                            "images/ + labels/: then scored too), or a slide with --level/--region."),
    out: Path = typer.Option(..., "--out", help="New folder: labels/<image>.png (16-bit instance ids), "
                                                "overlays/<image>.png and nuclei/<image>.csv."),
    labels: Path = typer.Option(None, help="Ground truth to score against: a label map (one image) or a folder "
                                           "of them named after the images."),
    level: int = typer.Option(None, min=0, help="Level of a pyramidal TIFF/.svs slide to read (0: full "
                                                "resolution). Default with --region: 0."),
    region: str = typer.Option(None, help="X,Y,W,H: the window of the level to segment, in its pixels "
                                          "(default: the whole level)."),
    device: Device = "auto",
    as_json: Json = False,
    plugin: Plugins = [],  # noqa: B006  (typer reads the default; it is never mutated)
) -> None:
    """Segment nuclei with a trained model: an instance label map, an outline overlay and a table of nuclei
    per image. Large images go in overlapping tiles whose probabilities are blended before the nuclei are
    found, so no nucleus is cut at a tile border."""
    from sslbench.eval.metrics import AGGREGATION_MODES, aggregate, image_counts
    from sslbench.eval.postprocess import nucleus_table
    from sslbench.pipeline.phases import instances_as_scored, predict_as_scored, resolve_device
    from sslbench.pipeline.trained import TrainedSegmenter

    load_plugins_for_cli(plugin)  # the model may be built on a plugin's backbone or head
    trained = TrainedSegmenter.locate(model)
    readers, labelled = _readers(images, level, region)
    if labels is not None and labelled:
        raise ConfigError(f"{images} is a labelled dataset, scored against its own labels; drop --labels.")
    truth = {} if labels is None else _label_files(labels, [name for name, _ in readers])
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; pass a new --out (nothing is overwritten).")
    torch_device = resolve_device(device)
    segmenter = trained.module(torch_device)
    for sub in OUTPUTS:
        make_folder(out / sub)
    rows, counts = [], []
    columns = (TextColumn("{task.description} [bold]{task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        image_task = progress.add_task("predicting", total=len(readers), name="")
        tile_task = progress.add_task("  tiles of", total=None, name="")
        for name, read in readers:
            progress.update(image_task, name=name)
            progress.reset(tile_task, total=None, name=name)
            sample = read() if name not in truth else _with_labels(read(), truth[name])
            probs = predict_as_scored(segmenter, sample.image, trained.cfg, torch_device,
                                      lambda done, total: progress.update(tile_task, completed=done, total=total))
            instances = instances_as_scored(probs, trained.cfg, trained.postprocess)
            row = {"name": name, "height": instances.shape[0], "width": instances.shape[1],
                   "nuclei": int(instances.max()),
                   **_write_outputs(out, sample, instances, nucleus_table(instances, probs))}
            if sample.labels is not None:
                counts.append(image_counts(sample.labels, instances))
                row["scores"] = counts[-1].metrics()
            rows.append(row)
            progress.advance(image_task)
    scores = {mode: aggregate(counts, mode) for mode in AGGREGATION_MODES} if counts else None
    if as_json:
        typer.echo(json.dumps({"model": str(trained.weights), "postprocess": trained.postprocess_record(),
                               "out": str(out), "images": rows, "scores": scores}))
    else:
        console.print(_table(trained, out, rows, scores))


def _table(trained, out: Path, rows: list[dict], scores: dict | None) -> Table:
    from sslbench.eval.metrics import DEFAULT_AGGREGATION, METRIC_KEYS

    postprocess = trained.postprocess_record()
    chosen = ", ".join(f"{key}={value}" for key, value in postprocess["values"].items())
    table = Table(title=f"sslbench predict — {trained.weights}",
                  caption=f"Post-processing: {chosen} ({postprocess['chosen_on']}). Written to "
                          f"{out}/{{{','.join(OUTPUTS)}}}." + (" Scores: fractions in [0, 1]." if scores else ""),
                  caption_justify="left")
    metric_keys = METRIC_KEYS if scores else ()
    for column in ("image", "width × height", "nuclei", *metric_keys):
        table.add_column(column, justify="left" if column == "image" else "right")
    for row in rows:
        table.add_row(row["name"], f"{row['width']} × {row['height']}", f"{row['nuclei']:,}",
                      *(f"{row['scores'][k]:.4f}" if "scores" in row else "–" for k in metric_keys))
    if scores:
        table.add_row(f"[bold]all ({DEFAULT_AGGREGATION})[/]", "", "",
                      *(f"[bold]{scores[DEFAULT_AGGREGATION][k]:.4f}[/]" for k in metric_keys))
    return table
