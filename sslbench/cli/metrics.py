"""``sslbench metrics GT PRED``: score predicted instance label maps against ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from sslbench.cli.app import app, console
from sslbench.cli.options import AggregationMode, Json, renamed
from sslbench.data.io import LABEL_SUFFIXES, read_label_map
from sslbench.errors import ConfigError, DataError
from sslbench.eval.metrics import DEFAULT_AGGREGATION, METRIC_KEYS, ImageCounts, aggregate, image_counts


def _label_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in LABEL_SUFFIXES:
            continue
        if path.stem in files:
            raise DataError(f"{folder}: '{files[path.stem].name}' and '{path.name}' share the stem "
                            f"'{path.stem}'; keep one label map per image.")
        files[path.stem] = path
    if not files:
        raise DataError(f"{folder}: no label maps ({', '.join(LABEL_SUFFIXES)}) found.")
    return files


def _pairs(gt: Path, pred: Path) -> list[tuple[str, Path, Path]]:
    for path in (gt, pred):
        if not path.exists():
            raise DataError(f"{path}: no such file or folder; check the path.")
    if gt.is_dir() != pred.is_dir():
        raise ConfigError(f"GT '{gt}' and PRED '{pred}' must both be files or both be folders.")
    if not gt.is_dir():
        return [(gt.stem, gt, pred)]
    gt_files, pred_files = _label_files(gt), _label_files(pred)
    missing, extra = sorted(gt_files.keys() - pred_files), sorted(pred_files.keys() - gt_files)
    if missing or extra:
        raise DataError(f"folders do not match by file stem: GT without prediction: {', '.join(missing) or '-'}; "
                        f"prediction without GT: {', '.join(extra) or '-'}. Name each prediction like its GT.")
    return [(stem, gt_files[stem], pred_files[stem]) for stem in sorted(gt_files)]


def _score(gt_path: Path, pred_path: Path, iou_threshold: float, centroid_radius: float) -> ImageCounts:
    gt_map, pred_map = read_label_map(gt_path), read_label_map(pred_path)
    try:
        return image_counts(gt_map, pred_map, iou_threshold, centroid_radius)
    except DataError as exc:  # e.g. a shape mismatch: name the files
        raise DataError(f"{gt_path} vs {pred_path}: {exc}") from None


@app.command("metrics")
def metrics(
    gt: Path = typer.Argument(..., help="Ground-truth label map (.png/.tif/.npy), or a folder of them."),
    pred: Path = typer.Argument(..., help="Predicted label map, or a folder matched to GT by file stem."),
    as_json: Json = False,
    aggregation: AggregationMode = typer.Option(None, show_default=DEFAULT_AGGREGATION, help="Folder aggregation: "
                                                "'per_image_mean' averages the per-image values (as the MoNuSeg "
                                                "challenge ranks); 'summed' sums C and U (and TP/FP/FN) over all "
                                                "images, then divides."),
    iou_threshold: float = typer.Option(0.5, min=0.0, max=1.0, help="IoU above which a GT/prediction pair counts for PQ/DQ/SQ."),
    centroid_radius: float = typer.Option(12.0, min=0.0, help="Detection F1: largest centroid distance (pixels) of a "
                                          "matched GT/prediction pair (HoVer-Net: 12)."),
    mode: AggregationMode = typer.Option(None, hidden=True, help="Deprecated: use --aggregation."),
) -> None:
    """Score instance label maps: AJI, AJI+, PQ/DQ/SQ, pixel Dice and detection F1 (fractions in [0, 1])."""
    aggregation = renamed("--aggregation", aggregation, "--mode", mode, DEFAULT_AGGREGATION)
    pairs = _pairs(gt, pred)
    counts = [_score(g, p, iou_threshold, centroid_radius) for _, g, p in pairs]
    per_image = [{"name": name, **c.metrics()} for (name, _, _), c in zip(pairs, counts)]
    folders = gt.is_dir()
    result = aggregate(counts, aggregation) if folders else counts[0].metrics()
    if as_json:
        if folders:
            result = {**result, "aggregation": aggregation, "per_image": per_image}
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"instance metrics (IoU threshold {iou_threshold:g}, centroid radius {centroid_radius:g} px)")
    table.add_column("image")
    for key in METRIC_KEYS:
        table.add_column(key, justify="right")
    for row in per_image:
        table.add_row(row["name"], *(f"{row[k]:.4f}" for k in METRIC_KEYS))
    if folders:
        table.add_row(f"[bold]all ({aggregation})[/]", *(f"[bold]{result[k]:.4f}[/]" for k in METRIC_KEYS))
    console.print(table)
