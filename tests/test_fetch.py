"""The fetch stage against a real HTTP server on 127.0.0.1 and real directories.

The server serves a temp dir of tiny synthetic IDX files under several prefixes:
good/ (the published bytes), regz/ (same data, gzip'd differently), wrong/ (other
valid data), junk/ (not gzip), plus routes that stall, fail with 503, or fail once.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cnnstudy.registry import DATASETS, DIGITS, FILENAMES, ROLES, Dataset, FileSpec
from cnnstudy.errors import FetchError, StudyError
from cnnstudy.fetch import MANIFEST, UnknownDatasetError, fetch_dataset, resolve_dataset
from cnnstudy.files import read_json
from cnnstudy.params import REPO_ROOT

OUTPUTS = sorted([*FILENAMES.values(), MANIFEST])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def idx_bytes(role: str, seed: int) -> bytes:
    """A valid IDX file: 3 images of 4x4 pixels, or 3 labels."""
    if role.endswith("images"):
        return struct.pack(">IIII", 0x803, 3, 4, 4) + bytes((seed + i) % 256 for i in range(48))
    return struct.pack(">II", 0x801, 3) + bytes((seed + i) % 10 for i in range(3))


RAW = {role: idx_bytes(role, seed=i) for i, role in enumerate(ROLES)}
GZ = {role: gzip.compress(data, mtime=0) for role, data in RAW.items()}


def make_dataset(mirrors=(), gz=True, raw=True) -> Dataset:
    files = tuple(FileSpec(role, FILENAMES[role], sha256(GZ[role]) if gz else None,
                           sha256(RAW[role]) if raw else None) for role in ROLES)
    return Dataset("tiny", "synthetic test data", files, tuple(mirrors), DIGITS)


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        prefix = self.path.split("/")[1]
        if prefix == "stall-headers":
            server.release.wait(10)  # accept the connection, never answer
            return
        if prefix == "stall-body":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b")
            self.wfile.flush()
            server.release.wait(10)
            return
        if prefix == "down" or (prefix == "flaky" and server.requests.count(self.path) == 1):
            self.send_error(503)
            return
        if prefix == "flaky":
            self.path = self.path.replace("/flaky/", "/good/", 1)
        super().do_GET()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Mirror directories on disk, and the base URL of a server serving them."""
    root = tmp_path_factory.mktemp("site")
    for name, content in {
        "good": GZ,
        "regz": {r: gzip.compress(d, compresslevel=1, mtime=123456) for r, d in RAW.items()},
        "wrong": {r: gzip.compress(idx_bytes(r, seed=99), mtime=0) for r in ROLES},
        "junk": {r: b"<html>Moved</html>" for r in ROLES},
    }.items():
        (root / name).mkdir()
        for role, data in content.items():
            (root / name / FILENAMES[role]).write_bytes(data)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    server.requests, server.release = [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/", server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def base(site):
    site[2].requests.clear()
    return site[1]


def assert_good_output(out: Path, manifest: dict, source: str) -> None:
    assert sorted(os.listdir(out)) == OUTPUTS  # and no temp file left behind
    assert read_json(out / MANIFEST) == manifest
    assert manifest["dataset"] == "tiny"
    for role in ROLES:
        name = FILENAMES[role]
        assert gzip.decompress((out / name).read_bytes()) == RAW[role]
        entry = manifest["files"][name]
        assert entry["sha256_gz"] == sha256((out / name).read_bytes())
        assert entry["sha256_raw"] == sha256(RAW[role])
        assert entry["source"] == source


def refused_url() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# ------------------------------------------------------------------ success
@pytest.mark.parametrize("suffix", ["good/", "good"])  # with and without the trailing slash
def test_http_mirror(tmp_path, base, suffix):
    out = tmp_path / "raw"
    manifest = fetch_dataset(make_dataset([base + suffix]), out)
    assert_good_output(out, manifest, base + suffix)
    assert manifest["files"][FILENAMES["train_images"]]["sha256_gz"] == sha256(GZ["train_images"])


def test_404_then_good_mirror(tmp_path, base, site):
    manifest = fetch_dataset(make_dataset([base + "missing/", base + "good/"]), tmp_path)
    assert_good_output(tmp_path, manifest, base + "good/")
    # A 404 is final: no retry.
    assert site[2].requests.count("/missing/" + FILENAMES["train_images"]) == 1


def test_wrong_bytes_then_good_mirror(tmp_path, base):
    manifest = fetch_dataset(make_dataset([base + "wrong/", base + "good/"]), tmp_path)
    assert_good_output(tmp_path, manifest, base + "good/")


def test_5xx_is_retried_once(tmp_path, base, site):
    manifest = fetch_dataset(make_dataset([base + "flaky/"]), tmp_path, retries=1)
    assert_good_output(tmp_path, manifest, base + "flaky/")
    assert site[2].requests.count("/flaky/" + FILENAMES["train_labels"]) == 2


def test_regzipped_copy_passes_on_raw_checksum(tmp_path, base):
    manifest = fetch_dataset(make_dataset([base + "regz/"]), tmp_path)
    assert_good_output(tmp_path, manifest, base + "regz/")
    name = FILENAMES["train_images"]
    assert manifest["files"][name]["sha256_gz"] != sha256(GZ["train_images"])
    # With only the gzip checksum registered, the same copy is rejected.
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_dataset(make_dataset([base + "regz/"], raw=False), tmp_path / "gz-only")


def test_file_url_and_directory_mirrors(tmp_path, site, monkeypatch):
    root = site[0]
    for mirror in [(root / "good").as_uri(), str(root / "good"), str(root / "good") + "/"]:
        out = tmp_path / str(abs(hash(mirror)))
        assert_good_output(out, fetch_dataset(make_dataset([mirror]), out), mirror)
    monkeypatch.chdir(root)  # a relative directory is relative to the working directory
    out = tmp_path / "relative"
    assert_good_output(out, fetch_dataset(make_dataset(["good"]), out), "good")


def test_extra_mirrors_are_tried_first(tmp_path, base, site):
    dataset = make_dataset([base + "good/"])
    manifest = fetch_dataset(dataset, tmp_path / "a", extra_mirrors=[str(site[0] / "regz")])
    assert_good_output(tmp_path / "a", manifest, str(site[0] / "regz"))
    assert site[2].requests == []  # the built-in mirror was never asked
    # A failing extra mirror falls through to the built-in one.
    manifest = fetch_dataset(dataset, tmp_path / "b", extra_mirrors=[str(tmp_path / "nowhere")])
    assert_good_output(tmp_path / "b", manifest, base + "good/")


def test_overwrites_existing_output(tmp_path, base):
    (tmp_path / FILENAMES["train_images"]).write_bytes(b"stale")
    (tmp_path / MANIFEST).write_text("{}")
    manifest = fetch_dataset(make_dataset([base + "good/"]), tmp_path)
    assert_good_output(tmp_path, manifest, base + "good/")


# ------------------------------------------------------------------ failure
def test_all_mirrors_fail_one_error_naming_each(tmp_path, base, site):
    refused = refused_url()
    mirrors = {
        base + "missing/": "HTTP 404",
        base + "wrong/": "checksum mismatch: expected sha256_gz",
        base + "junk/": "not valid gzip data",
        base + "down/": "HTTP 503 Service Unavailable (2 attempts)",
        refused: "connection refused (2 attempts)",
        str(tmp_path / "nowhere"): "no such directory",
        (site[0] / "missing").as_uri(): "no such directory",
        "ftp://example.org/mnist/": "unsupported URL scheme ftp://",
    }
    out = tmp_path / "raw"
    with pytest.raises(FetchError) as info:
        fetch_dataset(make_dataset(mirrors), out, timeout=5)
    message = str(info.value)
    assert FILENAMES["train_images"] in message.splitlines()[0]
    for mirror, reason in mirrors.items():
        assert f"  - {mirror}: {reason}" in message
    assert not out.exists() or os.listdir(out) == []  # no partial or temp file


def test_failure_leaves_existing_output_untouched(tmp_path, site):
    # A mirror with the first two files only: the third fails after two were fetched.
    partial = tmp_path / "partial"
    partial.mkdir()
    for role in ROLES[:2]:
        (partial / FILENAMES[role]).write_bytes(GZ[role])
    out = tmp_path / "raw"
    out.mkdir()
    (out / FILENAMES["train_images"]).write_bytes(b"old")
    (out / MANIFEST).write_text('{"old": true}')
    with pytest.raises(FetchError, match=f"missing file {partial / FILENAMES['test_images']}"):
        fetch_dataset(make_dataset([str(partial)]), out)
    assert sorted(os.listdir(out)) == sorted([FILENAMES["train_images"], MANIFEST])
    assert (out / FILENAMES["train_images"]).read_bytes() == b"old"


@pytest.mark.parametrize("route", ["stall-headers/", "stall-body/"])
def test_stalled_server_is_a_timeout(tmp_path, base, route):
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 0\.5 s \(2 attempts\)"):
        fetch_dataset(make_dataset([base + route]), tmp_path, timeout=0.5, retries=1)
    assert time.monotonic() - start < 5
    assert os.listdir(tmp_path) == []


def test_unknown_dataset_name():
    assert resolve_dataset("fashion-mnist") is DATASETS["fashion-mnist"]
    with pytest.raises(UnknownDatasetError) as info:
        resolve_dataset("mnits")
    assert isinstance(info.value, StudyError)
    assert "'mnits'" in str(info.value)
    assert all(name in str(info.value) for name in DATASETS)


# ------------------------------------------------------------------ the real thing
def test_bundled_mnist_sample(tmp_path):
    dataset = DATASETS["mnist-sample"]
    manifest = fetch_dataset(dataset, tmp_path)
    assert sorted(os.listdir(tmp_path)) == OUTPUTS
    for spec in dataset.files:
        data = (tmp_path / spec.filename).read_bytes()
        assert sha256(data) == spec.sha256_gz == manifest["files"][spec.filename]["sha256_gz"]
        assert sha256(gzip.decompress(data)) == spec.sha256_raw
        # Recorded relative to the repo so the DVC output is the same in every checkout.
        assert manifest["files"][spec.filename]["source"] == "data/bundled/mnist-sample"


def test_stage_script_imports_no_keras():
    code = ("import runpy, sys; runpy.run_path(sys.argv[1]); "
            "assert not {'keras', 'tensorflow'} & set(sys.modules), 'stage imports keras'")
    subprocess.run([sys.executable, "-c", code, str(REPO_ROOT / "stages" / "fetch.py")], check=True)
