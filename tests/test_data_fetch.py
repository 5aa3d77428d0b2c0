"""``sslbench data fetch`` against a local HTTP server (127.0.0.1, Range support) serving archives the
tests build: a good one, a corrupt one, and one whose connection drops mid-body."""

import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from data_helpers import synthetic_samples, write_folder_set
from typer.testing import CliRunner

from sslbench.cli import app
from sslbench.data.catalogue import CATALOGUE, fetch, load_catalogue
from sslbench.errors import ConfigError, DataError


class Files(BaseHTTPRequestHandler):
    """Serves ``files`` {path: bytes}, honouring 'Range: bytes=N-'; a path in ``drop_after`` sends only
    that many body bytes (announcing the full length) and closes, once."""

    files: dict[str, bytes] = {}
    drop_after: dict[str, int] = {}
    ranges: list[str | None] = []

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        self.ranges.append(requested)
        start = int(requested.removeprefix("bytes=").rstrip("-")) if requested else 0
        self.send_response(206 if requested else 200)
        if requested:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = self.drop_after.pop(self.path, None)
        self.wfile.write(body[start:] if cut is None else body[start:start + cut])
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Files.files, Files.drop_after, Files.ranges = {}, {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def folder_zip(tmp_path) -> bytes:
    """A zip holding tiny/images + tiny/labels (the folder layout), with enough bytes to cut mid-way."""
    root = write_folder_set(tmp_path / "src" / "tiny", synthetic_samples(2, size=64))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zipped:
        for file in sorted(root.rglob("*")):
            if file.is_file():
                zipped.write(file, file.relative_to(root.parent).as_posix())
    return buffer.getvalue()


def catalogue_file(tmp_path, server, body: bytes, sha256: str | None) -> str:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({"tiny": {
        "format": "folder", "layout": "tiny/images + tiny/labels", "license": "CC0", "page": server,
        "urls": [f"{server}/gone/tiny.zip", f"{server}/tiny.zip"], "sha256": sha256, "archive": "zip"}}))
    return str(path)


def test_fetch_verifies_unpacks_and_detects_the_layout(tmp_path, server):
    body = folder_zip(tmp_path)
    Files.files["/tiny.zip"] = body
    catalogue = catalogue_file(tmp_path, server, body, hashlib.sha256(body).hexdigest())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["data", "fetch", "tiny", "--to", str(out), "--catalogue", catalogue])
    assert result.exit_code == 0, result.output
    assert "read as 'folder'" in result.stdout  # the first URL 404s, the mirror serves it
    assert sorted(p.name for p in (out / "tiny" / "labels").iterdir()) == ["synthetic_000.png", "synthetic_001.png"]
    assert not list(out.glob("*.zip*"))  # the archive is removed once unpacked


def test_checksum_mismatch_is_refused_and_the_download_deleted(tmp_path, server):
    body = folder_zip(tmp_path)
    Files.files["/tiny.zip"] = body[:-10] + b"corrupted!"
    source = load_catalogue(catalogue_file(tmp_path, server, body, hashlib.sha256(body).hexdigest()))["tiny"]
    with pytest.raises(DataError, match=r"tiny: tiny.zip has SHA-256 [0-9a-f]{64}, expected .* download was deleted"):
        fetch(source, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # neither the archive nor anything unpacked


def test_a_dropped_connection_resumes_with_a_range_request(tmp_path, server):
    body = folder_zip(tmp_path)
    Files.files["/tiny.zip"] = body
    Files.drop_after["/tiny.zip"] = len(body) // 3
    source = load_catalogue(catalogue_file(tmp_path, server, body, hashlib.sha256(body).hexdigest()))["tiny"]
    with pytest.raises(DataError, match=r"download failed .* bytes kept in .*tiny.zip.part, run the same command again"):
        fetch(source, tmp_path / "out")
    assert (tmp_path / "out" / "tiny.zip.part").stat().st_size == len(body) // 3
    seen = []
    fetch(source, tmp_path / "out", progress=lambda done, total: seen.append((done, total)))
    assert Files.ranges[-1] == f"bytes={len(body) // 3}-" and seen[0] == (len(body) // 3, len(body))
    assert seen[-1] == (len(body), len(body)) and (tmp_path / "out" / "tiny" / "images").is_dir()


def test_unknown_checksum_needs_no_verify(tmp_path, server):
    body = folder_zip(tmp_path)
    Files.files["/tiny.zip"] = body
    source = load_catalogue(catalogue_file(tmp_path, server, body, None))["tiny"]
    with pytest.raises(ConfigError, match="no SHA-256 is known for tiny.zip, so .* pass --no-verify"):
        fetch(source, tmp_path / "out")
    assert fetch(source, tmp_path / "out", verify=False).joinpath("tiny", "images").is_dir()


def test_datasets_behind_a_login_print_the_steps(tmp_path):
    result = CliRunner().invoke(app, ["data", "fetch", "pannuke", "--to", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert "needs a login or licence acceptance" in result.stdout and "fold_1.zip" in result.stdout
    assert not (tmp_path / "p").exists()
    assert [s.name for s in CATALOGUE.values() if s.sha256] == ["tnbc"]  # torch-em's; the others are unknown
    listing = CliRunner().invoke(app, ["data", "fetch"])
    assert "tnbc" in listing.stdout and "unknown" in listing.stdout
    unknown = CliRunner().invoke(app, ["data", "fetch", "pannuk"])
    assert "Did you mean 'pannuke'?" in str(unknown.exception)


def test_env_var_points_the_catalogue_elsewhere(tmp_path, server, monkeypatch):
    body = folder_zip(tmp_path)
    Files.files["/tiny.zip"] = body
    monkeypatch.setenv("SSLBENCH_DATA_CATALOGUE", catalogue_file(tmp_path, server, body, hashlib.sha256(body).hexdigest()))
    result = CliRunner().invoke(app, ["data", "fetch", "tiny", "--to", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "tiny" / "images" / "synthetic_000.png").is_file()
