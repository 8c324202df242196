"""Fault injection for the fetch stage: hostile mirrors on 127.0.0.1 and on disk.

Each server misbehaves in one way (drips a byte a second, streams without
Content-Length past the expected size, announces too much); each local mirror is
wrong in one way (a regular file, a FIFO, a symlink to /dev/zero, a loop). Every
case must end in seconds with a clear reason and leave the output folder as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cnnstudy.registry import DATASETS, DIGITS, FILENAMES, ROLES, Dataset, FileSpec
from cnnstudy.errors import FetchError
from cnnstudy.fetch import MANIFEST, fetch_dataset
from cnnstudy.files import atomic_path, remove_stale_temps
from cnnstudy.params import REPO_ROOT
from proc_helpers import communicate_or_explain


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def idx_bytes(role: str) -> bytes:
    if role.endswith("images"):
        return struct.pack(">IIII", 0x803, 2, 4, 4) + bytes(range(32))
    return struct.pack(">II", 0x801, 2) + bytes([3, 7])


RAW = {role: idx_bytes(role) for role in ROLES}
GZ = {role: gzip.compress(data, mtime=0) for role, data in RAW.items()}
BIG = 200_000  # what the misbehaving servers send: far more than any tiny file's cap


def tiny_dataset(mirrors=(), raw_checksum=True) -> Dataset:
    files = tuple(FileSpec(role, FILENAMES[role], sha256(GZ[role]), sha256(RAW[role]) if raw_checksum else None,
                           len(GZ[role]), len(RAW[role])) for role in ROLES)
    return Dataset("tiny", "synthetic", files, tuple(mirrors), DIGITS)


class Hostile(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        kind, name = self.path.strip("/").split("/", 1)
        role = next(r for r, f in FILENAMES.items() if f == name)
        self.server.hits.append(self.path)
        try:
            if kind == "good":
                self._send(GZ[role], length=True)
            elif kind == "drip":  # headers at once, then one byte a second
                self.send_response(200)
                self.send_header("Content-Length", str(len(GZ[role])))
                self.end_headers()
                for byte in GZ[role]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if self.server.stop.wait(1.0):
                        return
            elif kind == "drip-headers":  # the status line arrives a byte at a time
                for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 100:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if self.server.stop.wait(0.5):
                        return
            elif kind == "endless":  # no Content-Length, keeps streaming
                self.send_response(200)
                self.end_headers()
                self.close_connection = True
                sent = 0
                while sent < BIG and not self.server.stop.is_set():
                    self.wfile.write(b"\0" * 4096)
                    sent += 4096
            elif kind == "announces-big":
                self.send_response(200)
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, body: bytes, length: bool):
        self.send_response(200)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    srv.daemon_threads = True
    srv.hits, srv.stop = [], threading.Event()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/", srv
    srv.stop.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def good_out(tmp_path):
    """An output folder holding a previous good fetch, to prove failures leave it alone."""
    out = tmp_path / "raw"
    out.mkdir()
    for role in ROLES:
        (out / FILENAMES[role]).write_bytes(GZ[role])
    (out / MANIFEST).write_text('{"previous": true}\n')
    return out


def assert_unchanged(out: Path) -> None:
    assert sorted(os.listdir(out)) == sorted([*FILENAMES.values(), MANIFEST])  # no temp files either
    assert (out / MANIFEST).read_text() == '{"previous": true}\n'
    for role in ROLES:
        assert (out / FILENAMES[role]).read_bytes() == GZ[role]


def test_slow_drip_is_stopped_by_the_deadline(server, good_out):
    base, _ = server
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"gave up after \d+ s, the deadline"):
        fetch_dataset(tiny_dataset([base + "drip/"]), good_out, timeout=5, deadline=2.5)
    assert time.monotonic() - start < 8  # one file's deadline, not the ~20 s the drip would take
    assert_unchanged(good_out)


def test_slow_headers_are_stopped_by_the_deadline(server, tmp_path):
    base, _ = server
    start = time.monotonic()
    with pytest.raises(FetchError, match="deadline"):
        fetch_dataset(tiny_dataset([base + "drip-headers/"]), tmp_path, timeout=5, deadline=2.0)
    assert time.monotonic() - start < 8
    assert os.listdir(tmp_path) == []


def test_slow_mirror_falls_through_to_the_next_with_a_warning(server, tmp_path, capsys):
    base, _ = server
    manifest = fetch_dataset(tiny_dataset([base + "drip/", base + "good/"]), tmp_path, timeout=5, deadline=1.5)
    assert manifest["files"][FILENAMES["train_labels"]]["source"] == base + "good/"
    err = capsys.readouterr().err
    assert f"mirror {base}drip/: gave up after" in err and f"used {base}good/ instead" in err


def test_stream_without_length_stops_at_the_expected_size(server, good_out):
    base, srv = server
    with pytest.raises(FetchError, match="sent more than the [0-9,]+ bytes expected; stopped there"):
        fetch_dataset(tiny_dataset([base + "endless/"], raw_checksum=False), good_out, timeout=5)
    assert_unchanged(good_out)


def test_announced_size_over_the_cap_is_refused_before_reading(server, tmp_path):
    base, _ = server
    with pytest.raises(FetchError, match="announces 1,000,000,000,000 bytes, more than the"):
        fetch_dataset(tiny_dataset([base + "announces-big/"]), tmp_path, timeout=5)


def test_cap_allows_a_recompressed_copy_only_with_a_raw_checksum():
    spec = DATASETS["fashion-mnist"].file("train_images")
    assert spec.size_raw == 47_040_016
    assert spec.size_raw < spec.max_download_bytes < spec.size_raw * 1.01
    mnist = DATASETS["mnist"].file("train_images")
    assert mnist.max_download_bytes == mnist.size_gz == 9_912_422


def test_every_registry_file_has_its_size():
    for dataset in DATASETS.values():
        for spec in dataset.files:
            assert spec.size_raw, (dataset.name, spec.filename)
            assert spec.size_gz or spec.sha256_raw, (dataset.name, spec.filename)


def test_bundled_sample_sizes_match_the_registry():
    dataset = DATASETS["mnist-sample"]
    for spec in dataset.files:
        path = Path(dataset.mirrors[0]) / spec.filename
        assert path.stat().st_size == spec.size_gz
        assert len(gzip.decompress(path.read_bytes())) == spec.size_raw


def test_gzip_bomb_on_a_mirror_is_refused_without_hashing_it_all(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for role in ROLES:  # small on disk (fits the cap), 64 MiB once decompressed
        (mirror / FILENAMES[role]).write_bytes(gzip.compress(b"\0" * (64 << 20), compresslevel=9))
    dataset = Dataset("tiny", "synthetic", tuple(
        # A registry size large enough that the 65 KB bomb fits the download cap.
        FileSpec(r, FILENAMES[r], sha256(GZ[r]), sha256(RAW[r]), None, 100_000) for r in ROLES), (), DIGITS)
    start = time.monotonic()
    with pytest.raises(FetchError, match="decompresses to more than the .* gzip bomb"):
        fetch_dataset(dataset, tmp_path / "out", extra_mirrors=[str(mirror)])
    assert time.monotonic() - start < 5


def test_mirror_that_is_a_regular_file_is_reported_as_such(tmp_path):
    not_a_dir = tmp_path / "mirror.txt"
    not_a_dir.write_text("oops")
    with pytest.raises(FetchError, match=r"mirror.txt is a file, not a directory"):
        fetch_dataset(tiny_dataset(), tmp_path / "out", extra_mirrors=[str(not_a_dir)])


def test_failed_user_mirror_warns_when_a_later_one_succeeds(tmp_path, capsys):
    good = tmp_path / "good"
    tampered = tmp_path / "tampered"
    for folder, content in ((good, GZ), (tampered, {r: gzip.compress(RAW[r][:-1] + bytes([RAW[r][-1] ^ 1])) for r in ROLES})):
        folder.mkdir()
        for role in ROLES:
            (folder / FILENAMES[role]).write_bytes(content[role])
    fetch_dataset(tiny_dataset([str(good)]), tmp_path / "out", extra_mirrors=[str(tampered), str(tmp_path / "gone")])
    err = capsys.readouterr().err
    for role in ROLES:
        name = FILENAMES[role]
        assert f"warning: {name}: mirror {tampered}: checksum mismatch" in err
        assert f"warning: {name}: mirror {tmp_path / 'gone'}: no such directory" in err


def _mirror_with(tmp_path, role_entry):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for role in ROLES:
        if role == "train_images":
            role_entry(mirror / FILENAMES[role])
        else:
            (mirror / FILENAMES[role]).write_bytes(GZ[role])
    return mirror


@pytest.mark.parametrize("make, reason", [
    (lambda p: os.mkfifo(p), "is not a regular file"),  # would block on open
    (lambda p: p.symlink_to("/dev/zero"), "is not a regular file"),  # would never end
    (lambda p: p.symlink_to(p), "Too many levels of symbolic links"),
    (lambda p: p.mkdir(), "Is a directory|is not a regular file"),
    (lambda p: p.write_bytes(b"\0" * (BIG)), "holds 200,000 bytes, more than the"),
    (lambda p: p.write_bytes(b""), "not valid gzip data|checksum mismatch"),
], ids=["fifo", "dev-zero", "symlink-loop", "directory", "too-big", "empty"])
def test_hostile_file_in_a_local_mirror(tmp_path, make, reason):
    mirror = _mirror_with(tmp_path, make)
    start = time.monotonic()
    with pytest.raises(FetchError, match=reason):
        fetch_dataset(tiny_dataset(), tmp_path / "out", extra_mirrors=[str(mirror)])
    assert time.monotonic() - start < 5
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_stale_temp_files_of_a_killed_run_are_removed(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    for role in ROLES:
        (good / FILENAMES[role]).write_bytes(GZ[role])
    out = tmp_path / "out"
    out.mkdir()
    # What a SIGKILLed fetch leaves: a temp file beside each target.
    stale = out / f".{FILENAMES['train_images']}.abc123.tmp.gz"
    stale.write_bytes(b"partial")
    unrelated = out / "notes.txt"
    unrelated.write_text("mine")
    fetch_dataset(tiny_dataset([str(good)]), out)
    assert not stale.exists() and unrelated.read_text() == "mine"


def test_remove_stale_temps_matches_only_the_targets_temps(tmp_path):
    target = tmp_path / "model.keras"
    with atomic_path(target) as tmp:
        keep = tmp_path / ".other.keras.xyz.tmp.keras"
        keep.write_text("x")
        (tmp_path / ".model.keras.q1w2e3.tmp.keras").write_text("stale")
        assert [p.name for p in remove_stale_temps(target)] != []
        assert keep.exists()
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_killed_fetch_leaves_no_temp_and_next_run_cleans_up(server, tmp_path):
    """SIGKILL a real fetch stage mid-download (drip server), then SIGTERM one: no stray temp files."""
    base, _ = server
    out = tmp_path / "raw"
    script = (f"import sys; sys.path.insert(0, {str(REPO_ROOT / 'src')!r})\n"
              "from tests_helper_dataset import dataset\n")
    helper = tmp_path / "tests_helper_dataset.py"
    helper.write_text(
        "import gzip, hashlib, struct\n"
        "from cnnstudy.registry import DIGITS, FILENAMES, ROLES, Dataset, FileSpec\n"
        f"dataset = Dataset('tiny', 's', tuple(FileSpec(r, FILENAMES[r], 'a' * 64, None, 100, 100) for r in ROLES),"
        f" ({base + 'drip/'!r},), DIGITS)\n")
    code = script + ("from cnnstudy.stage import run\nfrom cnnstudy.fetch import fetch_dataset\n"
                     f"run(lambda: fetch_dataset(dataset, {str(out)!r}, timeout=30, deadline=60))\n")
    for sig, expect_temp in ((9, True), (15, False)):
        before = set(out.glob(".*.tmp*")) if out.exists() else set()
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        # Wait for this run's own temp file: it is downloading (and its handlers are set).
        while not (out.exists() and set(out.glob(".*.tmp*")) - before) and time.monotonic() < deadline:
            time.sleep(0.1)
        if before:
            assert not any(p.exists() for p in before)  # the killed run's temp file is gone
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = communicate_or_explain(proc, timeout=60)
        temps = list(out.glob(".*.tmp*"))
        if expect_temp:  # SIGKILL cannot be caught: the temp file stays until the next run
            assert temps
        else:
            assert proc.returncode == 130 and temps == [], err
            assert "Traceback" not in err and err.count("\n") == 1 and "interrupted" in err
