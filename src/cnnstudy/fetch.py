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
import http.client
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from cnnstudy.registry import DATASETS, Dataset, FileSpec
from cnnstudy.errors import FetchError
from cnnstudy.files import atomic_path, write_json
from cnnstudy.params import REPO_ROOT, ParamsError

MANIFEST = "manifest.json"
CHUNK = 1 << 20
PROGRESS_MIN_BYTES = 4 << 20  # smaller files finish before a bar would tell anyone anything


class UnknownDatasetError(ParamsError):
    """fetch.dataset names no entry of cnnstudy.datasets.DATASETS."""


class _MirrorError(Exception):
    """One mirror failed for one file; `retry` marks failures worth a second attempt."""

    def __init__(self, reason: str, retry: bool = False):
        super().__init__(reason)
        self.retry = retry


def resolve_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown data set {name!r} (fetch.dataset); known: {', '.join(DATASETS)}")
    return DATASETS[name]


def fetch_dataset(dataset: Dataset, out_dir: Path, extra_mirrors: Sequence[str] = (),
                  timeout: float = 30.0, retries: int = 1) -> dict:
    """Fetch and verify every file of `dataset` into `out_dir`; write and return the manifest."""
    out_dir = Path(out_dir)
    # The user's mirrors come first; a built-in one they repeat is not tried twice.
    mirrors = list(dict.fromkeys([*extra_mirrors, *dataset.mirrors]))
    files = {}
    with contextlib.ExitStack() as stack:
        # atomic_path renames each temp file onto its target when the stack closes
        # cleanly, and deletes them all if any file fails.
        for spec in dataset.files:
            tmp = stack.enter_context(atomic_path(out_dir / spec.filename))
            files[spec.filename] = _fetch_file(dataset, spec, mirrors, tmp, timeout, retries)
    manifest = {"dataset": dataset.name, "files": files}
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def _fetch_file(dataset: Dataset, spec: FileSpec, mirrors: list[str], dest: Path,
                timeout: float, retries: int) -> dict:
    if not (spec.sha256_gz or spec.sha256_raw):
        raise FetchError(f"{dataset.name}: {spec.filename} has no checksum in the registry; refusing to trust it")
    failures = []
    for mirror in mirrors:
        try:
            _get(mirror, spec.filename, dest, timeout, retries)
            hashes = _verify(spec, dest)
        except _MirrorError as exc:
            failures.append(f"  - {mirror}: {exc}")
            continue
        return {**hashes, "source": _source_name(mirror)}
    tried = "\n".join(failures) or "  (no mirrors configured)"
    raise FetchError(f"could not fetch {spec.filename} of data set {dataset.name!r}; "
                     f"mirrors tried:\n{tried}")


def _get(mirror: str, filename: str, dest: Path, timeout: float, retries: int) -> None:
    """Put `filename` from `mirror` into `dest` (overwriting it), or raise _MirrorError."""
    parts = urllib.parse.urlsplit(mirror)
    scheme = parts.scheme.lower() if "://" in mirror else ""  # "C:\data" is a path, not a scheme
    if scheme in ("http", "https"):
        url = (mirror if mirror.endswith("/") else mirror + "/") + urllib.parse.quote(filename)
        for attempt in range(1, retries + 2):
            try:
                return _download(url, dest, timeout)
            except _MirrorError as exc:
                if not exc.retry or attempt > retries:
                    suffix = f" ({attempt} attempts)" if attempt > 1 else ""
                    raise _MirrorError(f"{exc}{suffix}") from None
    elif scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _MirrorError(f"file:// URLs with a host ({parts.netloc}) are not supported")
        _copy(Path(urllib.request.url2pathname(parts.path)), filename, dest)
    elif scheme:
        raise _MirrorError(f"unsupported URL scheme {scheme}:// (use http(s)://, file:// or a directory)")
    else:
        _copy(Path(mirror).expanduser(), filename, dest)


def _download(url: str, dest: Path, timeout: float) -> None:
    # Opened outside the try: a local disk error is not a network error to retry.
    with open(dest, "wb") as out:
        try:
            # The timeout bounds the connect and each socket read, so a stalled server fails.
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                quiet = not sys.stderr.isatty() or (total is not None and total < PROGRESS_MIN_BYTES)
                with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                          disable=quiet, leave=False) as bar:
                    while chunk := resp.read(CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _MirrorError(f"HTTP {exc.code} {exc.reason}", retry=exc.code >= 500) from None
        except urllib.error.URLError as exc:
            raise _MirrorError(_describe(exc.reason, timeout), retry=True) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _MirrorError(_describe(exc, timeout), retry=True) from None
        if total is not None and out.tell() != total:
            raise _MirrorError(f"connection closed after {out.tell():,} of {total:,} bytes", retry=True)


def _describe(err: object, timeout: float) -> str:
    if isinstance(err, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return f"timed out after {timeout:g} s"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _copy(directory: Path, filename: str, dest: Path) -> None:
    if not directory.is_dir():
        raise _MirrorError(f"no such directory {directory}")
    src = directory / filename
    try:
        shutil.copyfile(src, dest)
    except FileNotFoundError:
        raise _MirrorError(f"missing file {src}") from None
    except OSError as exc:
        raise _MirrorError(f"cannot read {src}: {exc.strerror or exc}") from None


def _verify(spec: FileSpec, path: Path) -> dict:
    """Return both checksums of `path` if either matches the registry; else raise _MirrorError."""
    gz = _sha256(open(path, "rb"))
    try:
        raw, bad_gzip = _sha256(gzip.open(path, "rb")), None
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, truncated or corrupt
        raw, bad_gzip = None, str(exc) or type(exc).__name__
    if (spec.sha256_gz and gz == spec.sha256_gz) or (spec.sha256_raw and raw == spec.sha256_raw):
        return {"sha256_gz": gz, "sha256_raw": raw}
    if bad_gzip:
        raise _MirrorError(f"not valid gzip data ({bad_gzip})")
    expected = " or ".join(f"{k} {v[:12]}..." for k, v in
                           (("sha256_gz", spec.sha256_gz), ("sha256_raw", spec.sha256_raw)) if v)
    raise _MirrorError(f"checksum mismatch: expected {expected}; got sha256_gz {gz[:12]}..., sha256_raw {raw[:12]}...")


def _sha256(stream) -> str:
    digest = hashlib.sha256()
    with stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _source_name(mirror: str) -> str:
    # A directory inside the repo is recorded relative to it, so the manifest (a DVC
    # output) has the same bytes in every checkout.
    path = Path(mirror)
    if "://" not in mirror and path.is_absolute() and path.resolve().is_relative_to(REPO_ROOT):
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    return mirror
