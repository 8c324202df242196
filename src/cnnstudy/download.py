"""Bounded transfers for the fetch stage: every download has a deadline and a size cap.

A socket timeout alone bounds each read, not the file: a server that sends one
byte every few seconds never trips it. So each download also gets a deadline,
enforced by a watchdog that shuts the connection down, and a byte cap (the
registry's expected size) checked while streaming, whether or not the server
sends Content-Length. Local copies get the same cap, and refuse anything that is
not a regular file (a FIFO would block, /dev/zero would never end).
"""

from __future__ import annotations

import http.client
import os
import socket
import stat
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from cnnstudy.errors import output_error

CHUNK = 1 << 16
PROGRESS_MIN_BYTES = 4 << 20  # smaller files finish before a bar would tell anyone anything


class TransferError(Exception):
    """One transfer failed; `retry` marks failures worth a second attempt."""

    def __init__(self, reason: str, retry: bool = False):
        super().__init__(reason)
        self.retry = retry


class _Watchdog:
    """Shuts down every connection opened through its opener once `deadline` (monotonic) passes."""

    def __init__(self, deadline: float):
        self.connections: list[http.client.HTTPConnection] = []
        self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        for conn in self.connections:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv in the other thread
                except OSError:
                    pass

    def opener(self) -> urllib.request.OpenerDirector:
        watchdog = self

        def tracked(cls):
            def factory(host, **kwargs):
                conn = cls(host, **kwargs)
                watchdog.connections.append(conn)
                return conn
            return factory

        class Http(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(tracked(http.client.HTTPConnection), req)

        class Https(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(tracked(http.client.HTTPSConnection), req, context=self._context)

        return urllib.request.build_opener(Http, Https)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


def download(url: str, dest: Path, timeout: float, deadline: float, max_bytes: int) -> None:
    """GET `url` into `dest`; raise TransferError past `deadline` (time.monotonic()) or `max_bytes`."""
    started = time.monotonic()
    with open(dest, "wb") as out, _Watchdog(deadline) as watchdog:  # opened first: a disk error is not retried
        try:
            with watchdog.opener().open(url, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > max_bytes:
                    raise TransferError(f"announces {total:,} bytes, more than the {max_bytes:,} expected")
                quiet = not sys.stderr.isatty() or (total is not None and total < PROGRESS_MIN_BYTES)
                with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                          disable=quiet, leave=False) as bar:
                    # read1: return what has arrived, so the deadline is checked between drips too.
                    while chunk := resp.read1(min(CHUNK, max_bytes + 1 - out.tell())):
                        _write(out, chunk, dest)
                        bar.update(len(chunk))
                        if out.tell() > max_bytes:
                            raise TransferError(f"sent more than the {max_bytes:,} bytes expected; stopped there")
                        if time.monotonic() > deadline:
                            break
        except TransferError:
            raise
        except urllib.error.HTTPError as exc:
            exc.close()
            raise TransferError(f"HTTP {exc.code} {exc.reason}", retry=exc.code >= 500) from None
        except urllib.error.URLError as exc:
            if watchdog.fired:
                raise _too_slow(started, out.tell()) from None
            raise TransferError(describe(exc.reason, timeout), retry=True) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if watchdog.fired or time.monotonic() > deadline:
                raise _too_slow(started, out.tell()) from None
            raise TransferError(describe(exc, timeout), retry=True) from None
        if watchdog.fired or time.monotonic() > deadline:
            raise _too_slow(started, out.tell())
        if total is not None and out.tell() != total:
            raise TransferError(f"connection closed after {out.tell():,} of {total:,} bytes", retry=True)


def _too_slow(started: float, received: int) -> TransferError:
    # Not retried: the same mirror would most likely be as slow again.
    return TransferError(f"gave up after {time.monotonic() - started:.0f} s, the deadline for this file "
                         f"({received:,} bytes received)")


def describe(err: object, timeout: float) -> str:
    if isinstance(err, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return f"timed out after {timeout:g} s"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def copy_file(directory: Path, filename: str, dest: Path, max_bytes: int) -> None:
    """Copy `directory/filename` to `dest`: a regular file of at most `max_bytes`, else TransferError."""
    if not directory.exists():
        raise TransferError(f"no such directory {directory}")
    if not directory.is_dir():
        raise TransferError(f"{directory} is a file, not a directory (a mirror is a folder holding the "
                            f"data set's .gz files, or an http(s):// or file:// URL)")
    src = directory / filename
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise TransferError(f"missing file {src}") from None
    except OSError as exc:
        raise TransferError(f"cannot read {src}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TransferError(f"{src} is not a regular file")
        raise TransferError(f"{src} holds {info.st_size:,} bytes, more than the {max_bytes:,} expected")
    os.set_blocking(fd, True)
    with open(fd, "rb") as source:
        with open(dest, "wb") as out:
            while True:
                try:
                    chunk = source.read(min(CHUNK, max_bytes + 1 - out.tell()))
                except OSError as exc:
                    raise TransferError(f"cannot read {src}: {exc.strerror or exc}") from None
                if not chunk:
                    break
                _write(out, chunk, dest)
                if out.tell() > max_bytes:  # it grew while we read it
                    raise TransferError(f"{src} holds more than the {max_bytes:,} bytes expected")


def _write(out, chunk: bytes, dest: Path) -> None:
    # A failed write is our disk (full, read-only), not the mirror's fault: no next mirror.
    try:
        out.write(chunk)
    except OSError as exc:
        raise output_error(dest, exc) from None
