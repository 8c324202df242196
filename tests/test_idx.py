"""IDX reading: every malformed input is a DataError naming the file and the problem."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from cnnstudy.registry import FILENAMES
from cnnstudy.errors import DataError
from cnnstudy.idx import IMAGES_MAGIC, LABELS_MAGIC, read_images, read_labels, read_pair
from cnnstudy.prepare import load_raw


def idx_bytes(magic: int, dims: tuple[int, ...], body: bytes) -> bytes:
    """An IDX file: big-endian magic, one uint32 per dimension, then `body` as given."""
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + body


def images_bytes(n: int = 5, side: int = 28) -> bytes:
    pixels = (np.arange(n * side * side) % 256).astype(np.uint8)
    return idx_bytes(IMAGES_MAGIC, (n, side, side), pixels.tobytes())


def labels_bytes(labels) -> bytes:
    labels = np.asarray(labels, dtype=np.uint8)
    return idx_bytes(LABELS_MAGIC, (len(labels),), labels.tobytes())


def write_gz(path, data: bytes):
    with gzip.open(path, "wb") as f:
        f.write(data)
    return path


def error_of(call, *args) -> str:
    with pytest.raises(DataError) as info:
        call(*args)
    # A clean message: no chained idx2numpy/gzip exception shown under it.
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return str(info.value)


def test_valid_pair(tmp_path):
    images = write_gz(tmp_path / "i.gz", images_bytes(5))
    labels = write_gz(tmp_path / "l.gz", labels_bytes([0, 1, 2, 9, 3]))
    x, y = read_pair(images, labels)
    assert x.shape == (5, 28, 28) and x.dtype == np.uint8
    assert y.tolist() == [0, 1, 2, 9, 3] and y.dtype == np.uint8
    assert x.reshape(-1)[:300].tolist() == list(range(256)) + list(range(44))


def test_wrong_magic_swapped_files(tmp_path):
    path = write_gz(tmp_path / "i.gz", labels_bytes([1, 2]))
    message = error_of(read_images, path)
    assert message.startswith(f"{path}: wrong magic number 0x00000801, expected 0x00000803")
    assert "swapped" in message


def test_wrong_magic_not_idx(tmp_path):
    path = write_gz(tmp_path / "l.gz", b"PK\x03\x04 this is a zip file, not IDX")
    assert "not an IDX file" in error_of(read_labels, path)


def test_wrong_dtype_byte(tmp_path):
    path = write_gz(tmp_path / "l.gz", idx_bytes(0x00000D01, (2,), b"\0" * 8))  # float32 labels
    assert "0x0D is not uint8" in error_of(read_labels, path)


def test_truncated_data(tmp_path):
    path = write_gz(tmp_path / "i.gz", images_bytes(5)[:-100])
    assert error_of(read_images, path) == (
        f"{path}: truncated: header declares 5 images, file holds 4 and 684 bytes of a partial one")


def test_truncated_labels_message(tmp_path):
    path = write_gz(tmp_path / "train-labels-idx1-ubyte.gz",
                    idx_bytes(LABELS_MAGIC, (8337,), bytes(8000)))
    assert error_of(read_labels, path) == f"{path}: truncated: header declares 8337 labels, file holds 8000"


def test_truncated_header(tmp_path):
    path = write_gz(tmp_path / "i.gz", images_bytes(1)[:10])
    assert "truncated header" in error_of(read_images, path)


def test_trailing_bytes(tmp_path):
    path = write_gz(tmp_path / "l.gz", labels_bytes([1, 2, 3]) + b"\0\0")
    assert error_of(read_labels, path) == (
        f"{path}: 2 trailing bytes after the 3 labels the header declares (wrong header or two files joined?)")


def test_wrong_image_size(tmp_path):
    path = write_gz(tmp_path / "i.gz", images_bytes(2, side=32))
    assert "images are 32x32 pixels, expected 28x28" in error_of(read_images, path)


def test_label_out_of_range(tmp_path):
    path = write_gz(tmp_path / "l.gz", labels_bytes([1, 12, 3, 10]))
    assert error_of(read_labels, path) == f"{path}: 2 label(s) outside 0..9 (the first is 12 at index 1)"


def test_count_mismatch(tmp_path):
    images = write_gz(tmp_path / "i.gz", images_bytes(5))
    labels = write_gz(tmp_path / "l.gz", labels_bytes([1, 2, 3]))
    message = error_of(read_pair, images, labels)
    assert f"{labels}: holds 3 labels but {images} holds 5 images" in message


def test_not_gzip(tmp_path):
    path = tmp_path / "i.gz"
    path.write_bytes(images_bytes(2))  # plain IDX, never compressed
    assert error_of(read_images, path).startswith(f"{path}: not a gzip file")


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "i.gz"
    path.write_bytes(gzip.compress(images_bytes(20))[:-300])  # a cut-off download
    assert error_of(read_images, path).startswith(f"{path}: corrupt gzip file")


def test_missing_file(tmp_path):
    assert "file not found; run `dvc repro fetch`" in error_of(read_images, tmp_path / "nope.gz")


def write_raw(directory, dataset="mnist-sample", n_train=6, n_test=4):
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("test", n_test)):
        write_gz(directory / FILENAMES[f"{prefix}_images"], images_bytes(n))
        write_gz(directory / FILENAMES[f"{prefix}_labels"], labels_bytes(np.arange(n) % 10))
    (directory / "manifest.json").write_text(json.dumps({"dataset": dataset, "files": {}}))
    return directory


def test_load_raw(tmp_path):
    raw = load_raw(write_raw(tmp_path / "raw", dataset="fashion-mnist"))
    assert raw.dataset == "fashion-mnist" and raw.class_names[0] == "T-shirt/top"
    assert raw.train_images.shape == (6, 28, 28) and raw.test_labels.tolist() == [0, 1, 2, 3]


def test_load_raw_needs_manifest(tmp_path):
    directory = write_raw(tmp_path / "raw")
    (directory / "manifest.json").unlink()
    assert "manifest.json: missing; run `dvc repro fetch`" in error_of(load_raw, directory)


def test_load_raw_unknown_dataset(tmp_path):
    assert "'dataset' is 'cifar'" in error_of(load_raw, write_raw(tmp_path / "raw", dataset="cifar"))
