"""Read gzip'd IDX files (MNIST's format), validating them before idx2numpy sees them.

An IDX file is a 4-byte magic number (0x00 0x00, a data-type byte, the number of
dimensions), one big-endian uint32 per dimension, then the data. We check all of
that ourselves first, because idx2numpy's own errors ("Superfluous data
detected.", a numpy reshape error) name neither the file nor the fix. Every
problem becomes a DataError that starts with the file's path.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Iterator

import idx2numpy
import numpy as np

from cnnstudy.errors import DataError

UBYTE = 0x08
IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions: count, rows, columns
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension: count
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

_KINDS = {
    IMAGES_MAGIC: "images",
    LABELS_MAGIC: "labels",
}


# No IDX file this pipeline reads is larger (full MNIST's train images: 47 MB); a header
# declaring more is refused before anything is decompressed, so memory stays bounded.
MAX_IDX_BYTES = 400 << 20
# deflate cannot compress better than about 1032:1; a header claiming more data than the
# .gz could hold is wrong, and is refused before reading.
MAX_GZIP_RATIO = 1032
TRAILING_COUNT_LIMIT = 1 << 20  # trailing bytes are counted up to this, then "more than"


@contextlib.contextmanager
def _gzip_errors(path: str | Path) -> Iterator[None]:
    """Turn gzip, zlib and OS errors while reading `path` into DataErrors naming it."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; run `dvc repro fetch`") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a gzip'd IDX file; run `dvc repro fetch`") from None
    except gzip.BadGzipFile as exc:
        raise DataError(f"{path}: not a gzip file ({exc})") from None
    except EOFError:
        # gzip raises EOFError when the stream stops before its end marker.
        raise DataError(f"{path}: corrupt gzip file: it ends before the end of the compressed data "
                        f"(truncated download?)") from None
    except zlib.error as exc:
        raise DataError(f"{path}: corrupt gzip file: {exc}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_gzip(path: str | Path) -> bytes:
    """The decompressed bytes of `path` (whole; only for small files); errors are DataErrors."""
    with _gzip_errors(path), gzip.open(path, "rb") as stream:
        return stream.read()


def read_idx(path: str | Path, magic: int) -> bytes:
    """The IDX bytes of gzip'd `path`, validated against `magic`, decompressing no more than
    the header declares (plus one byte, to detect trailing data): a gzip bomb fails at
    its header, after reading a few bytes."""
    with _gzip_errors(path), gzip.open(path, "rb") as stream:
        header = stream.read(4)
        _check_magic(header, path, magic)
        ndim = magic & 0xFF
        header += stream.read(4 * ndim)
        dims = _check_dims(header, path, magic)
        expected = math.prod(dims)  # count x item bytes: 1 per label, 784 per image
        _check_declared_size(expected, path, magic, dims)
        body = stream.read(expected + 1)
        if len(body) > expected:
            extra = len(body) - expected
            while extra <= TRAILING_COUNT_LIMIT and (chunk := stream.read(1 << 16)):
                extra += len(chunk)
            amount = f"{extra}" if extra <= TRAILING_COUNT_LIMIT else f"more than {TRAILING_COUNT_LIMIT:,}"
            raise DataError(f"{path}: {amount} trailing bytes after the {dims[0]} {_KINDS[magic]} "
                            f"the header declares (wrong header or two files joined?)")
    data = header + body
    check_header(data, path, magic)
    return data


def _check_declared_size(size: int, path: str | Path, magic: int, dims: tuple[int, ...]) -> None:
    kind = _KINDS[magic]
    if size > MAX_IDX_BYTES:
        raise DataError(f"{path}: header declares {dims[0]:,} {kind} ({size:,} bytes), more than the "
                        f"{MAX_IDX_BYTES:,} bytes this pipeline reads (wrong header?)")
    try:
        compressed = Path(path).stat().st_size
    except OSError:
        return
    if size > compressed * MAX_GZIP_RATIO + 1024:
        raise DataError(f"{path}: header declares {dims[0]:,} {kind} ({size:,} bytes), more than a "
                        f"{compressed:,}-byte gzip file can hold (wrong header or truncated file)")


def _describe(magic: int) -> str:
    kind = _KINDS.get(magic)
    return f"a uint8 {kind} file" if kind else "no IDX file this pipeline reads"


def _check_magic(data: bytes, path: str | Path, magic: int) -> None:
    if len(data) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        hint = ""
        if found >> 16 != 0:
            hint = "; the first two bytes of an IDX file are zero, so this is not an IDX file"
        elif (found >> 8) & 0xFF != UBYTE:
            hint = f"; data type byte 0x{(found >> 8) & 0xFF:02X} is not uint8 (0x{UBYTE:02X})"
        elif found in _KINDS:
            hint = f"; that is {_describe(found)}, are the files swapped?"
        else:
            hint = f"; it declares {found & 0xFF} dimension(s), expected {magic & 0xFF}"
        raise DataError(f"{path}: wrong magic number 0x{found:08X}, expected 0x{magic:08X} "
                        f"({_describe(magic)}){hint}")


def _check_dims(data: bytes, path: str | Path, magic: int) -> tuple[int, ...]:
    """The dims of a header whose magic passed: complete, 28x28 images, a non-zero count."""
    kind = _KINDS[magic]
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{path}: truncated header: {ndim} dimension(s) need {header_len} header bytes, "
                        f"file holds {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    if kind == "images" and dims[1:] != IMAGE_SHAPE:
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]} pixels, expected "
                        f"{IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}")
    if dims[0] == 0:
        raise DataError(f"{path}: header declares 0 {kind}; the file holds no data")
    return dims


def check_header(data: bytes, path: str | Path, magic: int) -> tuple[int, ...]:
    """Validate the IDX header and length of `data` against `magic`; return the declared dims.

    Checks, in order: the magic number (which fixes dtype uint8 and the number of
    dimensions), that the header itself is complete, the image size, and that
    the data holds exactly as many bytes as the dims declare.
    """
    kind = _KINDS[magic]
    _check_magic(data, path, magic)
    dims = _check_dims(data, path, magic)
    header_len = 4 + 4 * len(dims)
    count = dims[0]
    item_bytes = math.prod(dims[1:])  # 1 for a label, 784 for an image
    body = len(data) - header_len
    expected = count * item_bytes
    if body < expected:
        whole, stray = divmod(body, item_bytes)
        partial = f" and {stray} bytes of a partial one" if stray else ""
        raise DataError(f"{path}: truncated: header declares {count} {kind}, file holds {whole}{partial}")
    if body > expected:
        raise DataError(f"{path}: {body - expected} trailing bytes after the {count} {kind} "
                        f"the header declares (wrong header or two files joined?)")
    return dims


def _convert(data: bytes, path: str | Path) -> np.ndarray:
    try:
        return idx2numpy.convert_from_string(data)
    except Exception as exc:  # noqa: BLE001 - check_header should make this unreachable
        raise DataError(f"{path}: not a readable IDX file: {exc}") from None


def read_images(path: str | Path) -> np.ndarray:
    """(N, 28, 28) uint8 images from a gzip'd IDX file."""
    data = read_idx(path, IMAGES_MAGIC)
    return _convert(data, path)


def read_labels(path: str | Path, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(N,) uint8 labels from a gzip'd IDX file, each in 0..num_classes-1."""
    data = read_idx(path, LABELS_MAGIC)
    labels = _convert(data, path)
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        first = bad[0]
        raise DataError(f"{path}: {bad.size} label(s) outside 0..{num_classes - 1} "
                        f"(the first is {labels[first]} at index {first})")
    return labels


def read_pair(images_path: str | Path, labels_path: str | Path,
              num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Images and their labels; the two files must hold the same number of items."""
    images = read_images(images_path)
    labels = read_labels(labels_path, num_classes)
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: holds {len(labels)} labels but {images_path} holds "
                        f"{len(images)} images; the two files must match one to one")
    return images, labels
