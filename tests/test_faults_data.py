"""Fault injection for prepare's inputs and outputs: gzip bombs, lying IDX headers, hostile
.npz files. Each must fail fast, in little memory, with a message naming the file."""

from __future__ import annotations

import gzip
import json
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from cnnstudy.data import load_prepared
from cnnstudy.registry import FILENAMES
from cnnstudy.errors import DataError
from cnnstudy.idx import IMAGES_MAGIC, LABELS_MAGIC, MAX_IDX_BYTES, read_images, read_labels
from cnnstudy.prepare import load_raw

MB = 1 << 20


def gz_file(path, *parts: bytes, zeros: int = 0):
    """gzip `parts` then `zeros` zero bytes, streamed so the test itself stays small."""
    with gzip.open(path, "wb", compresslevel=9) as f:
        for part in parts:
            f.write(part)
        block = bytes(MB)
        for _ in range(zeros // MB):
            f.write(block)
    return path


def bounded(call, *args, max_peak=8 * MB, max_seconds=3.0) -> str:
    """Run `call`, expect a DataError; check the Python heap peak and the time it took."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(DataError) as info:
            call(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < max_peak, f"peak {peak / MB:.1f} MB"
    assert time.monotonic() - start < max_seconds
    return str(info.value)


@pytest.fixture(scope="module")
def zeros_bomb(tmp_path_factory):
    """256 MiB of zeros in ~250 KB: what the issue's 2 GiB bomb is, at test scale."""
    return gz_file(tmp_path_factory.mktemp("bomb") / "train-images-idx3-ubyte.gz", zeros=256 * MB)


def test_zeros_bomb_fails_at_the_magic_number(zeros_bomb):
    assert zeros_bomb.stat().st_size < 1 * MB
    message = bounded(read_images, zeros_bomb, max_peak=1 * MB)
    assert message.startswith(f"{zeros_bomb}: wrong magic number 0x00000000")


def test_trailing_bomb_behind_a_valid_header_reads_only_what_is_declared(tmp_path):
    header = struct.pack(">IIII", IMAGES_MAGIC, 10, 28, 28)
    path = gz_file(tmp_path / "i.gz", header, bytes(10 * 784), zeros=128 * MB)
    message = bounded(read_images, path, max_peak=4 * MB)
    assert "more than 1,048,576 trailing bytes after the 10 images" in message


def test_header_declaring_billions_of_images_is_refused_before_reading(tmp_path):
    path = gz_file(tmp_path / "i.gz", struct.pack(">IIII", IMAGES_MAGIC, 2**32 - 1, 28, 28), zeros=4 * MB)
    message = bounded(read_images, path, max_peak=1 * MB)
    assert f"header declares 4,294,967,295 images (3,367,254,359,280 bytes), more than the {MAX_IDX_BYTES:,}" \
        in message


def test_header_declaring_more_than_the_gzip_can_hold(tmp_path):
    # 400 million labels is under the size limit, but ~150 bytes of gzip cannot hold them.
    path = gz_file(tmp_path / "l.gz", struct.pack(">II", LABELS_MAGIC, 400_000_000), b"\1" * 100)
    message = bounded(read_labels, path, max_peak=1 * MB)
    assert "more than a" in message and "gzip file can hold" in message


def test_label_bomb_behind_a_valid_header(tmp_path):
    path = gz_file(tmp_path / "l.gz", struct.pack(">II", LABELS_MAGIC, 3), b"\1\2\3", zeros=64 * MB)
    assert "trailing bytes after the 3 labels" in bounded(read_labels, path, max_peak=4 * MB)


def test_empty_gzip_file(tmp_path):
    path = tmp_path / "i.gz"
    path.write_bytes(b"")
    assert bounded(read_images, path).startswith(f"{path}: too short to be an IDX file (0 bytes)")


def test_directory_where_an_idx_file_is_expected(tmp_path):
    path = tmp_path / "i.gz"
    path.mkdir()
    assert "is a directory" in bounded(read_images, path)


def test_symlink_loop_where_an_idx_file_is_expected(tmp_path):
    path = tmp_path / "i.gz"
    path.symlink_to(path)
    assert "Too many levels of symbolic links" in bounded(read_images, path)


def test_bomb_in_data_raw_stops_prepare_fast(tmp_path, zeros_bomb):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in FILENAMES.values():
        (raw / name).symlink_to(zeros_bomb)
    (raw / "manifest.json").write_text(json.dumps({"dataset": "mnist-sample", "files": {}}))
    assert "wrong magic number" in bounded(load_raw, raw, max_peak=1 * MB)


# ------------------------------------------------------------------ prepared .npz files
def write_prepared(directory, n=12):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "info.json").write_text(json.dumps({"dataset": "mnist-sample", "class_names": list("0123456789")}))
    for split in ("train", "val", "test"):
        np.savez_compressed(directory / f"{split}.npz", images=np.zeros((n, 28, 28), np.uint8),
                            labels=(np.arange(n) % 10).astype(np.uint8), source=np.arange(n))


def test_random_bytes_in_an_npz_are_not_called_pickled_data(tmp_path):
    write_prepared(tmp_path)
    (tmp_path / "val.npz").write_bytes(np.random.default_rng(0).bytes(5000))
    message = bounded(load_prepared, tmp_path)
    assert "pickle" not in message
    assert message.startswith(f"{tmp_path / 'val.npz'}: not an .npz archive")
    assert "run `dvc repro prepare`" in message


def test_empty_npz(tmp_path):
    write_prepared(tmp_path)
    (tmp_path / "test.npz").write_bytes(b"")
    assert "not an .npz archive (corrupt or replaced: 0 bytes" in bounded(load_prepared, tmp_path)


def test_zip_without_the_arrays(tmp_path):
    write_prepared(tmp_path)
    with zipfile.ZipFile(tmp_path / "train.npz", "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert "has no array 'images' or 'labels'" in bounded(load_prepared, tmp_path)


def test_truncated_npz(tmp_path):
    write_prepared(tmp_path, n=500)
    data = (tmp_path / "train.npz").read_bytes()
    (tmp_path / "train.npz").write_bytes(data[: len(data) // 2])
    message = bounded(load_prepared, tmp_path)
    assert message.startswith(f"{tmp_path / 'train.npz'}:") and "dvc repro prepare" in message


def test_real_object_array_is_refused_without_unpickling(tmp_path):
    write_prepared(tmp_path)
    np.savez(tmp_path / "train.npz", images=np.array([{"x": 1}], dtype=object), labels=np.zeros(1, np.uint8))
    assert "allow_pickle=False" in bounded(load_prepared, tmp_path)


def test_broken_info_json_names_the_file(tmp_path):
    write_prepared(tmp_path)
    (tmp_path / "info.json").write_text('{"dataset": "mnist-sample", "class_names": [')
    message = bounded(load_prepared, tmp_path)
    assert message.startswith(f"{tmp_path / 'info.json'}: broken JSON") and "dvc repro prepare" in message


def test_prepared_path_that_is_a_file(tmp_path):
    target = tmp_path / "prepared"
    target.write_text("not a folder")
    assert "prepared data not found" in bounded(load_prepared, target)
