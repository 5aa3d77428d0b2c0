"""Where the public nuclei datasets come from, and a resumable, checksum-verified download of them.

The built-in catalogue lists what is known without network access: official pages and direct URLs,
the archive type and the layout it unpacks to. No SHA-256 here was checked against a real download
from this project (no network): TNBC's is the one torch-em's loader checks on every download, and
the rest are unknown (None). A download without a known checksum is refused unless the caller passes
``verify=False``.
Datasets whose licence needs a login or an acceptance list the steps instead of a URL. A JSON file
(``--catalogue`` or $SSLBENCH_DATA_CATALOGUE: {name: {field: value}}) adds or replaces entries, e.g.
a local mirror with its checksum."""

from __future__ import annotations

import http.client
import json
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from sslbench.data.io import file_sha256
from sslbench.errors import ConfigError, DataError

CATALOGUE_ENV = "SSLBENCH_DATA_CATALOGUE"
CHUNK = 1 << 16
ARCHIVES = ("zip", "tar")  # tar: any compression tarfile reads (gz, bz2, xz)


@dataclass(frozen=True)
class Source:
    name: str
    format: str  # the reader for what it unpacks to
    layout: str  # what the archive unpacks to
    license: str
    page: str  # the official page
    urls: tuple[str, ...] = ()  # official URL first, then known mirrors; () = manual steps only
    sha256: str | None = None  # None: not verified from here
    archive: str = "zip"
    steps: str = ""  # a login or licence acceptance is needed: what to do by hand

    @property
    def file_name(self) -> str:
        return Path(self.urls[0].split("?")[0]).name if self.urls else ""


_WARWICK = "https://warwick.ac.uk/fac/cross_fac/tia/data"
CATALOGUE = {s.name: s for s in (
    Source("tnbc", "tnbc", "TNBC_NucleiSegmentation/Slide_XX/*.png + GT_XX/*.png (binary masks)",
           "see the Zenodo record (not verified here)", "https://doi.org/10.5281/zenodo.1175282",
           urls=("https://zenodo.org/record/1175282/files/TNBC_NucleiSegmentation.zip",),
           # torch-em's (torch_em/data/datasets/histopathology/tnbc.py), for this Zenodo file
           sha256="da708c3a988f4ad4b9bbb9283b387faf703f0bc0e5e689927306bd27ea13a57f"),
    Source("nuinsseg", "nuinsseg", "<organ>/tissue images/*.png + label masks modify/*.tif + vague areas/",
           "CC BY 4.0", "https://doi.org/10.5281/zenodo.10518968",
           urls=("https://zenodo.org/records/10518968/files/NuInsSeg.zip",)),
    Source("monuseg", "monuseg", "MoNuSeg 2018 Training Data/Tissue Images/*.tif + Annotations/*.xml",
           "CC BY-NC-SA 4.0", "https://monuseg.grand-challenge.org/Data/",
           steps="open the page, follow the Google Drive links for the training and test data, download both "
                 "zips and unzip them into --to."),
    Source("monusac", "monusac", "<patient>/<image>.svs + <image>.xml", "CC BY-NC-SA 4.0 (not verified here)",
           "https://monusac-2020.grand-challenge.org/Data/",
           steps="sign in to grand-challenge.org, open the page, download the training and testing zips "
                 "(Google Drive) and unzip them into --to."),
    Source("consep", "consep", "CoNSeP/Train|Test/Images/*.png + Labels/*.mat",
           "see the page (not verified here)", f"{_WARWICK}/hovernet/",
           steps="open the page, accept the data's terms, download consep.zip and unzip it into --to."),
    Source("pannuke", "pannuke", "Fold N/images/foldN/{images,types}.npy + Fold N/masks/foldN/masks.npy",
           "CC BY-NC-SA 4.0", f"{_WARWICK}/pannuke",
           steps="open the page, accept the non-commercial licence, download fold_1.zip, fold_2.zip and "
                 "fold_3.zip and unzip all three into --to."),
    Source("lizard", "lizard", "Lizard_Images1/, Lizard_Images2/, Lizard_Labels/Labels/*.mat",
           "CC BY-NC-SA 4.0 (not verified here)", f"{_WARWICK}/lizard/",
           steps="open the page, accept the licence, download lizard_images1.zip, lizard_images2.zip and "
                 "lizard_labels.zip and unzip all three into --to."),
)}


def load_catalogue(path: str | Path | None = None) -> dict[str, Source]:
    """The built-in catalogue with the entries of the JSON file ``path`` (else $SSLBENCH_DATA_CATALOGUE)
    added or replacing built-ins."""
    path = path or os.environ.get(CATALOGUE_ENV)
    catalogue = dict(CATALOGUE)
    if not path:
        return catalogue
    try:
        extra = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"catalogue {path}: cannot be read ({exc}); pass a JSON file {{name: {{field: value}}}}.") from None
    known = {f.name for f in fields(Source)}
    for name, entry in extra.items():
        unknown = set(entry) - known
        if unknown:
            raise ConfigError(f"catalogue {path}: entry '{name}' has unknown field(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(known - {'name'}))}.")
        base = catalogue.get(name)
        merged = {**({f.name: getattr(base, f.name) for f in fields(Source)} if base else {}), **entry, "name": name}
        merged["urls"] = tuple(merged.get("urls", ()))
        try:
            catalogue[name] = Source(**merged)
        except TypeError as exc:
            raise ConfigError(f"catalogue {path}: entry '{name}' is incomplete ({exc}).") from None
    return catalogue


def _download(url: str, part: Path, progress: Callable[[int, int | None], None]) -> None:
    """Append ``url``'s bytes to ``part``, resuming after what it already holds (HTTP Range)."""
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and done:  # nothing left to send: already complete
            return
        raise
    with response:
        if done and response.status != 206:  # the server ignored Range: start again
            done = 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length else None
        progress(done, total)
        with part.open("ab" if done else "wb") as file:
            while chunk := response.read(CHUNK):
                file.write(chunk)
                done += len(chunk)
                progress(done, total)
    if total is not None and done < total:
        raise ConnectionError(f"connection closed after {done:,} of {total:,} bytes")


def fetch(source: Source, to: Path, verify: bool = True,
          progress: Callable[[int, int | None], None] = lambda done, total: None) -> Path:
    """Download ``source``'s archive into ``to`` (resuming a partial one), check its SHA-256, unpack
    it there; returns ``to``. A mismatch deletes the download; an interruption keeps it to resume."""
    if not source.urls:
        raise ConfigError(f"{source.name} needs a manual download: {source.steps} (page: {source.page})")
    if source.archive not in ARCHIVES:
        raise ConfigError(f"{source.name}: archive type '{source.archive}' unknown; use one of {', '.join(ARCHIVES)}.")
    if verify and source.sha256 is None:
        raise ConfigError(f"{source.name}: no SHA-256 is known for {source.file_name}, so its download cannot be "
                          "verified; pass --no-verify to download it unverified, or add the checksum with --catalogue.")
    to.mkdir(parents=True, exist_ok=True)
    archive = to / source.file_name
    part = archive.with_name(archive.name + ".part")
    errors = []
    for url in source.urls:
        try:
            _download(url, part, progress)
            break
        except (OSError, http.client.HTTPException) as exc:  # URLError, a reset, a short body
            errors.append(f"{url}: {exc}")
    else:
        kept = f"; {part.stat().st_size:,} bytes kept in {part}, run the same command again to resume" \
            if part.exists() and part.stat().st_size else ""
        raise DataError(f"{source.name}: download failed ({'; '.join(errors)}){kept}.")
    if verify and (digest := file_sha256(part)) != source.sha256:
        part.unlink()
        raise DataError(f"{source.name}: {source.file_name} has SHA-256 {digest}, expected {source.sha256}; the "
                        "download was deleted: fetch it again, or from another mirror.")
    part.replace(archive)
    _unpack(archive, to)
    return to


def _unpack(archive: Path, to: Path) -> None:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.namelist():  # zipfile keeps '..' out; absolute names are refused here
                    if Path(member).is_absolute():
                        raise DataError(f"{archive}: member {member} has an absolute path; not unpacked.")
                zipped.extractall(to)
        else:
            with tarfile.open(archive, "r:*") as tarred:
                tarred.extractall(to, filter="data")  # refuses links and paths leaving ``to``
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise DataError(f"{archive}: cannot be unpacked ({exc}); delete it and fetch again.") from None
    archive.unlink()


def unpacked_root(to: Path) -> Path:
    """Where the data lies after unpacking: ``to``, or its one sub-folder when the archive held a folder."""
    children = [p for p in to.iterdir() if not p.name.startswith(".")]
    return children[0] if len(children) == 1 and children[0].is_dir() else to

