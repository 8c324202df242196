"""The fetch stage: get a data set's four gzip'd IDX files from mirrors and verify them.

A mirror is an http(s):// base URL, a file:// URL or a local directory. Mirrors are
tried in order for each file; a file is accepted only if its gzip bytes match
sha256_gz or its decompressed bytes match sha256_raw. Nothing reaches the output
directory until all four files have passed: each is written to a temp file beside
its target, and every temp file is renamed into place only at the end, so a
failure leaves the directory exactly as it was (no partial, wrong or mixed files).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import sys
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Sequence

from cnnstudy.download import TransferError, copy_file, download
from cnnstudy.registry import DATASETS, Dataset, FileSpec
from cnnstudy.errors import FetchError
from cnnstudy.files import atomic_path, remove_stale_temps, write_json
from cnnstudy.params import ParamsError

MANIFEST = "manifest.json"
CHUNK = 1 << 20
# A mirror gets `timeout` plus one second per MIN_RATE bytes of the file's size cap,
# retries included: slower than ~50 kB/s on average, the next mirror is tried.
MIN_RATE = 50_000


class UnknownDatasetError(ParamsError):
    """fetch.dataset names no entry of cnnstudy.datasets.DATASETS."""


_MirrorError = TransferError  # one mirror failed for one file


def resolve_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown data set {name!r} (fetch.dataset); known: {', '.join(DATASETS)}")
    return DATASETS[name]


def fetch_dataset(dataset: Dataset, out_dir: Path, extra_mirrors: Sequence[str] = (),
                  timeout: float = 30.0, retries: int = 1, deadline: float | None = None) -> dict:
    """Fetch and verify every file of `dataset` into `out_dir`; write and return the manifest.

    `deadline` is the seconds one mirror gets for one file, retries included
    (default: `timeout` + the file's size cap / MIN_RATE).
    """
    out_dir = Path(out_dir)
    for spec in dataset.files:  # temp files a killed earlier run left behind
        remove_stale_temps(out_dir / spec.filename)
    # The user's mirrors come first; a built-in one they repeat is not tried twice.
    mirrors = list(dict.fromkeys([*extra_mirrors, *dataset.mirrors]))
    files = {}
    with contextlib.ExitStack() as stack:
        # atomic_path renames each temp file onto its target when the stack closes
        # cleanly, and deletes them all if any file fails.
        for spec in dataset.files:
            tmp = stack.enter_context(atomic_path(out_dir / spec.filename))
            seconds = deadline if deadline is not None else timeout + spec.max_download_bytes / MIN_RATE
            files[spec.filename] = _fetch_file(dataset, spec, mirrors, tmp, timeout, retries, seconds)
    manifest = {"dataset": dataset.name, "files": files}
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def _fetch_file(dataset: Dataset, spec: FileSpec, mirrors: list[str], dest: Path,
                timeout: float, retries: int, seconds: float) -> dict:
    if not (spec.sha256_gz or spec.sha256_raw):
        raise FetchError(f"{dataset.name}: {spec.filename} has no checksum in the registry; refusing to trust it")
    failures = []
    for mirror in mirrors:
        try:
            _get(mirror, spec, dest, timeout, retries, time.monotonic() + seconds)
            hashes = _verify(spec, dest)
        except _MirrorError as exc:
            failures.append(f"  - {mirror}: {exc}")
            continue
        for failure in failures:  # a mirror the user listed should not fail unnoticed
            print(f"warning: {spec.filename}: mirror {failure.strip()[2:]}; used {mirror} instead",
                  file=sys.stderr)
        return {**hashes, "source": _source_name(mirror)}
    tried = "\n".join(failures) or "  (no mirrors configured)"
    raise FetchError(f"could not fetch {spec.filename} of data set {dataset.name!r}; "
                     f"mirrors tried:\n{tried}")


def _get(mirror: str, spec: FileSpec, dest: Path, timeout: float, retries: int, deadline: float) -> None:
    """Put `spec.filename` from `mirror` into `dest` (overwriting it), or raise _MirrorError."""
    filename, cap = spec.filename, spec.max_download_bytes
    parts = urllib.parse.urlsplit(mirror)
    scheme = parts.scheme.lower() if "://" in mirror else ""  # "C:\data" is a path, not a scheme
    if scheme in ("http", "https"):
        url = (mirror if mirror.endswith("/") else mirror + "/") + urllib.parse.quote(filename)
        for attempt in range(1, retries + 2):
            try:
                return download(url, dest, timeout, deadline, cap)
            except _MirrorError as exc:
                if not exc.retry or attempt > retries:
                    suffix = f" ({attempt} attempts)" if attempt > 1 else ""
                    raise _MirrorError(f"{exc}{suffix}") from None
    elif scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _MirrorError(f"file:// URLs with a host ({parts.netloc}) are not supported")
        copy_file(Path(urllib.request.url2pathname(parts.path)), filename, dest, cap)
    elif scheme:
        raise _MirrorError(f"unsupported URL scheme {scheme}:// (use http(s)://, file:// or a directory)")
    else:
        copy_file(Path(mirror).expanduser(), filename, dest, cap)


def _verify(spec: FileSpec, path: Path) -> dict:
    """Return both checksums of `path` if either matches the registry; else raise _MirrorError."""
    gz = _sha256(open(path, "rb"))
    try:
        # Bounded: a small gzip bomb must not cost minutes of hashing zeros.
        raw, bad_gzip = _sha256(gzip.open(path, "rb"), spec.size_raw), None
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, truncated or corrupt
        raw, bad_gzip = None, str(exc) or type(exc).__name__
    if (spec.sha256_gz and gz == spec.sha256_gz) or (spec.sha256_raw and raw == spec.sha256_raw):
        return {"sha256_gz": gz, "sha256_raw": raw}
    if bad_gzip:
        raise _MirrorError(f"not valid gzip data ({bad_gzip})")
    expected = " or ".join(f"{k} {v[:12]}..." for k, v in
                           (("sha256_gz", spec.sha256_gz), ("sha256_raw", spec.sha256_raw)) if v)
    raise _MirrorError(f"checksum mismatch: expected {expected}; got sha256_gz {gz[:12]}..., sha256_raw {raw[:12]}...")


def _sha256(stream, max_bytes: int | None = None) -> str:
    digest, seen = hashlib.sha256(), 0
    with stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            seen += len(chunk)
            if max_bytes is not None and seen > max_bytes:
                raise _MirrorError(f"decompresses to more than the {max_bytes:,} bytes expected "
                                   f"(another file, or a gzip bomb)")
    return digest.hexdigest()


def _source_name(mirror: str) -> str:
    # A directory inside the repo is recorded relative to it, so the manifest (a DVC
    # output) has the same bytes in every checkout.
    path = Path(mirror)
    if "://" not in mirror and path.is_absolute() and path.resolve().is_relative_to(Path.cwd().resolve()):
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    return mirror
