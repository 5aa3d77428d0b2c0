"""``sslbench data inspect|render|convert``: check a data folder before training on it, or convert it
to the plain images/ + labels/ folder format."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from skimage.segmentation import find_boundaries

from sslbench.cli.app import app, console, err_console
from sslbench.cli.options import Json, renamed
from sslbench.data.base import Sample
from sslbench.data.card import CardBuilder, resolution_warning
from sslbench.data.catalogue import fetch as fetch_archive
from sslbench.data.catalogue import load_catalogue, unpacked_root
from sslbench.data.detect import FORMATS, dataset_from_path, detect_format
from sslbench.data.io import FileDataset, count_nuclei, write_label_map
from sslbench.errors import ConfigError, DataError
from sslbench.registry import closest_hint

data_app = typer.Typer(no_args_is_help=True, help="Inspect a data folder, render its labels for checking, "
                                                 "convert it to images/ + labels/, or fetch a public dataset.")
app.add_typer(data_app, name="data")

OVERLAY_COLOUR = (0, 255, 0)  # green: stands out on pink/purple H&E
Reader = Annotated[str, typer.Option("--reader", help=f"Force a reader ({', '.join(FORMATS)}). Default: detected "
                                                    "from the layout.")]
#: --format chooses an output format everywhere else
ReaderAsFormat = Annotated[str, typer.Option("--format", hidden=True, help="Deprecated: use --reader.")]


def _dataset(path: Path, reader: str | None, format: str | None) -> FileDataset:
    return dataset_from_path(path, renamed("--reader", reader, "--format", format))


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Data warnings as one rich line each on stderr (stdout stays clean for --json)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                err_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False, soft_wrap=True)


def _samples(dataset: FileDataset, what: str) -> Iterator[Sample]:
    columns = (TextColumn(f"{what} [bold]{{task.fields[name]}}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(what, total=len(dataset), name="")
        for entry in dataset.entries:
            progress.update(task, name=str(entry[0]))
            yield dataset.load_entry(entry)
            progress.advance(task)


@data_app.command("inspect")
def inspect(
    path: Path = typer.Argument(..., help="Data folder (MoNuSeg, images/+labels/, or any images)."),
    reader: Reader = None,
    as_json: Json = False,
    against: Path = typer.Option(None, "--against", help="Training data folder: warn if PATH is at another "
                                                         "resolution (magnification or nucleus size)."),
    format: ReaderAsFormat = None,
) -> None:
    """Detect the format, read and validate every file, print sizes and nucleus counts, then the
    dataset's card (nuclei per image, median nucleus area, magnification, licence, citation)."""
    with _warnings_to_stderr():
        dataset = _dataset(path, reader, format)
        builder = CardBuilder(dataset)
        rows = []
        for s in _samples(dataset, "reading"):
            builder.add(s)
            rows.append({"name": s.name, "height": s.image.shape[0], "width": s.image.shape[1],
                         "nuclei": count_nuclei(s.labels), "annotation": s.annotation or None})
        card = builder.card()
        mismatch = resolution_warning(card, _card(against), str(path), str(against)) if against else None
    if mismatch:
        err_console.print(f"[yellow]warning:[/] {mismatch}", highlight=False, soft_wrap=True)
    total = sum(row["nuclei"] or 0 for row in rows)
    if as_json:
        print(json.dumps({"format": dataset.format, "images": rows, "total_nuclei": total, "card": card,
                          **({"resolution_warning": mismatch} if against else {})}, indent=2))
        return
    labelled = sum(row["nuclei"] is not None for row in rows)
    table = Table(title=f"{path} ({dataset.format})", show_footer=True)
    table.add_column("image", footer=f"{len(rows)} images, {labelled} labelled")
    table.add_column("height × width", justify="right")
    table.add_column("annotation read")
    table.add_column("nuclei", justify="right", footer=f"{total:,}")
    for row in rows:
        nuclei = "unlabelled" if row["nuclei"] is None else f"{row['nuclei']:,}"
        table.add_row(row["name"], f"{row['height']} × {row['width']}", _annotation_kind(row["annotation"]), nuclei)
    console.print(table)
    console.print(_card_table(card))


def _card(path: Path) -> dict:
    """The card of the training data ``path`` (read in full: its nucleus areas are needed)."""
    builder = CardBuilder(dataset_from_path(path))
    for sample in _samples(builder.dataset, "reading training data"):
        builder.add(sample)
    return builder.card()


def _card_table(card: dict) -> Table:
    table = Table(title="dataset card", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    unknown = "[dim]unknown[/]"
    area = card["median_nucleus_area_px"]
    for field, value in [
        ("images", f"{card['images']:,} ({card['labelled']:,} labelled)"),
        ("sizes", ", ".join(f"{size} ({n})" for size, n in card["sizes"].items())),
        ("nuclei", f"{card['nuclei']:,}"),
        ("nuclei per image", "-" if card["nuclei_per_image"] is None else f"{card['nuclei_per_image']:g}"),
        ("median nucleus area", "-" if area is None else f"{area:g} px"),
        ("magnification", card["magnification"] or unknown),
        ("classes", ", ".join(card["classes"]) or "-"),
        ("tissues", ", ".join(f"{t} ({n})" for t, n in card["tissues"].items()) or "-"),
        ("licence", card["license"] or unknown),
        ("citation", card["citation"] or unknown),
    ]:
        table.add_row(field, value)
    return table


def _annotation_kind(path: str | None) -> str:
    """'XML' or 'label map' and the folder it lay in (the file is named after the image), or '-'
    (unlabelled or generated)."""
    if not path:
        return "-"
    return f"{'XML' if path.lower().endswith('.xml') else 'label map'} in {Path(path).parent.name}/"


def overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The image with every nucleus outline (both sides of shared edges) painted in OVERLAY_COLOUR."""
    out = image.copy()
    out[find_boundaries(labels, mode="inner") & (labels > 0)] = OVERLAY_COLOUR
    return out


@data_app.command("render")
def render(
    path: Path = typer.Argument(..., help="Data folder (MoNuSeg or images/+labels/)."),
    out: Path = typer.Option(..., "--out", help="Folder for <name>_labels.png|tif and <name>_overlay.png."),
    reader: Reader = None,
    format: ReaderAsFormat = None,
) -> None:
    """Write each labelled image's instance map (16-bit PNG, TIFF above 65535 ids) and an outline overlay."""
    with _warnings_to_stderr():
        dataset = _dataset(path, reader, format)
        make_folder(out)
        written = unlabelled = 0
        for sample in _samples(dataset, "rendering"):
            if sample.labels is None:
                unlabelled += 1
                continue
            stem = out / file_stem(sample.name)
            write_label_map(stem.with_name(stem.name + "_labels"), sample.labels)
            outlined = overlay(sample.image, sample.labels)
            Image.fromarray(outlined).save(stem.with_name(stem.name + "_overlay.png"))
            written += 1
    console.print(f"wrote label maps and overlays for {written} labelled images to {out}"
                  + (f"; {unlabelled} unlabelled images have nothing to render" if unlabelled else ""),
                  highlight=False)


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {folder} ({exc.strerror}); pass a writable --out.") from None


def file_stem(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name)  # nested unlabeled names hold '/'


@data_app.command("convert")
def convert(
    path: Path = typer.Argument(..., help="Data folder in any supported format (e.g. MoNuSeg with XML)."),
    out: Path = typer.Option(..., "--out", help="New folder: images/<name>.png and labels/<name>.png|tif."),
    reader: Reader = None,
    format: ReaderAsFormat = None,
) -> None:
    """Rewrite a dataset as lossless PNG images + instance label maps (the folder format): XML is
    rasterised once, and the copy is smaller than LZW TIFFs. Unlabelled images keep no label map."""
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; pass a new --out (nothing is overwritten).")
    with _warnings_to_stderr():
        dataset = _dataset(path, reader, format)
        for sub in ("images", "labels"):
            make_folder(out / sub)
        labelled = dropped = 0
        for sample in _samples(dataset, "converting"):
            dropped += sample.classes is not None or sample.ignore is not None
            stem = file_stem(sample.name)
            Image.fromarray(sample.image).save(out / "images" / f"{stem}.png", compress_level=9)
            if sample.labels is not None:
                write_label_map(out / "labels" / stem, sample.labels)
                labelled += 1
    if dropped:
        err_console.print(f"[yellow]warning:[/] the folder format keeps instances only: the class maps and "
                          f"ambiguous-area masks of {dropped} images were not written; score classes or ignore "
                          f"areas on {path} itself.", highlight=False, soft_wrap=True)
    console.print(f"wrote {len(dataset)} images ({labelled} with label maps) to {out}; "
                  f"use it as --data {out}", highlight=False)


@data_app.command("fetch")
def fetch(
    name: str = typer.Argument(None, help="Dataset name; leave out to list the catalogue."),
    to: Path = typer.Option(None, "--to", help="Folder to download and unpack into."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Accept a download whose SHA-256 is unknown "
                                                             "or does not match (not recommended)."),
    catalogue: Path = typer.Option(None, "--catalogue", envvar="SSLBENCH_DATA_CATALOGUE",
                                   help="JSON file of extra or replacing entries {name: {field: value}}."),
) -> None:
    """Download a public dataset (resumable, SHA-256 checked) and unpack it into the layout its reader
    expects; where its licence needs a login or acceptance, print the steps instead."""
    sources = load_catalogue(catalogue)
    if name is None:
        table = Table(title="data catalogue")
        for column in ("name", "reader", "licence", "how"):
            table.add_column(column)
        for source in sources.values():
            how = "manual: " + source.page if source.steps else ("download" + ("" if source.sha256 else
                                                                               " (checksum unknown)"))
            table.add_row(source.name, source.format, source.license, how)
        console.print(table)
        return
    if name not in sources:
        raise ConfigError(f"unknown dataset '{name}'.{closest_hint(name, sources)} Known: {', '.join(sources)}.")
    source = sources[name]
    if source.steps:
        console.print(f"{source.name} ({source.license}) needs a login or licence acceptance, so it is not "
                      f"downloaded here:\n  1. {source.page}\n  2. {source.steps}\n  3. sslbench data inspect "
                      f"{to or 'DIR'}  (expects: {source.layout})", highlight=False, soft_wrap=True)
        return
    if to is None:
        raise ConfigError("pass --to DIR: the folder to download and unpack into.")
    columns = (TextColumn(f"{name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(name, total=None)
        fetch_archive(source, to, verify=not no_verify,
                      progress=lambda done, total: progress.update(task, completed=done, total=total))
    root = unpacked_root(to)
    try:
        found = f"read as '{detect_format(root)}'"
    except DataError:
        found = "no known layout found there"
    console.print(f"{name}: unpacked into {to} ({found}; expected {source.layout}); check it with "
                  f"sslbench data inspect {root}", highlight=False, soft_wrap=True)
