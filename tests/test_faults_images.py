"""Fault injection for the outlier image folder: pixel bombs, hostile files and names.

The memory checks run in a subprocess and compare its peak RSS after loading with
the peak after the imports, so they measure what decoding costs, not pytest.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudy.images_io import MAX_DECODED_PIXELS, REDUCE_ABOVE_PIXELS, ImageTooLarge, open_image_bounded
from cnnstudy.image_prep import load_folder, read_image
from cnnstudy.params import REPO_ROOT

MB = 1 << 20


def write_big_png(path: Path, width: int, height: int) -> Path:
    """A white greyscale PNG with a black square in the middle, written row by row
    (so the test never holds the image in memory); 13000x13000 is ~0.2 MB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    white = b"\0" + b"\xff" * width
    ink = b"\0" + b"\xff" * (width // 3) + b"\0" * (width - 2 * (width // 3)) + b"\xff" * (width // 3)
    parts = []
    for row in range(height):
        parts.append(compressor.compress(ink if height // 3 <= row < height - height // 3 else white))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))
    return path


def peak_growth_mb(code: str) -> tuple[float, str]:
    """Run `code` after the imports in a fresh interpreter; its peak RSS growth in MB, and stderr."""
    script = ("import resource, sys\n"
              f"sys.path.insert(0, {str(REPO_ROOT / 'src')!r})\n"
              "from cnnstudy.image_prep import load_folder, read_image\n"
              "from cnnstudy.images_io import open_image_bounded\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              f"{code}\n"
              "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "print((after - before) / 1024)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def bomb_png(tmp_path_factory):
    return write_big_png(tmp_path_factory.mktemp("bomb") / "huge.png", 13000, 13000)


def test_a_13000_pixel_png_is_skipped_with_our_warning_in_little_memory(bomb_png, tmp_path):
    assert bomb_png.stat().st_size < 2 * MB
    folder = tmp_path / "outliers"
    folder.mkdir()
    os.symlink(bomb_png, folder / "huge.png")
    for i in range(10):
        Image.fromarray(np.full((40, 30), 255, np.uint8) - np.eye(40, 30, dtype=np.uint8) * 255).save(
            folder / f"d{i}.png")
    growth, err = peak_growth_mb(f"images, skipped = load_folder({str(folder)!r})\n"
                                 "assert len(images) == 10 and skipped[0][0] == 'huge.png', skipped")
    assert growth < 100, f"{growth:.0f} MB"
    assert "huge.png (ImageTooLarge: 13000x13000 pixels (169 megapixels), over the 40 megapixels" in err
    assert "DecompressionBombWarning" not in err and "Traceback" not in err


def test_an_image_just_over_the_reduce_threshold_is_box_reduced(tmp_path):
    path = write_big_png(tmp_path / "big.png", 3000, 2000)  # 6 MP: decoded, then reduced
    image = open_image_bounded(path)
    assert image.size == (1500, 1000)
    assert image.size[0] * image.size[1] <= REDUCE_ABOVE_PIXELS
    assert read_image(path).pixels.max() == 255  # the ink survives


def test_a_large_jpeg_is_decoded_at_reduced_scale_not_refused(tmp_path):
    path = tmp_path / "big.jpg"
    subprocess.run([sys.executable, "-c",
                    "from PIL import Image, ImageDraw; im = Image.new('L', (8000, 6000), 255); "
                    "ImageDraw.Draw(im).rectangle((3000, 2000, 5000, 4000), fill=0); "
                    f"im.save({str(path)!r}, quality=80)"], check=True, timeout=120)
    assert 8000 * 6000 > MAX_DECODED_PIXELS
    growth, _ = peak_growth_mb(f"image = open_image_bounded({str(path)!r}); assert image.size[0] <= 4000")
    assert growth < 150, f"{growth:.0f} MB"
    image = open_image_bounded(path)
    assert image.size[0] * image.size[1] <= REDUCE_ABOVE_PIXELS


def test_pillows_own_bomb_error_becomes_ours(tmp_path):
    path = write_big_png(tmp_path / "giant.png", 20000, 20000)  # 400 MP: Pillow raises before we look
    with pytest.raises(ImageTooLarge, match="downscale the image"):
        open_image_bounded(path)


def test_small_images_are_unchanged_by_the_bounded_loader():
    path = REPO_ROOT / "data/outliers/photo-camera.png"
    with Image.open(path) as original:
        assert np.array_equal(np.asarray(open_image_bounded(path)), np.asarray(original))


def digit_folder(tmp_path: Path) -> Path:
    """An outlier folder with the 10 readable images load_folder needs at least."""
    folder = tmp_path / "outliers"
    folder.mkdir()
    for i in range(10):
        Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(folder / f"d{i}.png")
    return folder


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "UnidentifiedImageError"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200)), "Error"),
    (lambda p: p.write_bytes(write_big_png(p, 64, 64).read_bytes()[:80]), "Error"),
    (lambda p: p.symlink_to(p), "link loop"),
    (lambda p: p.symlink_to(p.parent / "gone.png"), "broken symbolic link"),
], ids=["empty", "random-after-signature", "truncated", "symlink-loop", "dangling-link"])
def test_hostile_files_are_skipped_with_a_reason(tmp_path, make, reason):
    folder = digit_folder(tmp_path)
    make(folder / "bad.png")
    warnings = []
    images, skipped = load_folder(folder, warn=warnings.append)
    assert len(images) == 10
    assert [name for name, _ in skipped] == ["bad.png"] and reason in skipped[0][1]
    assert len(warnings) == 1 and "bad.png" in warnings[0]


def add_non_utf8_png(folder: Path) -> None:
    raw_name = os.fsencode(folder) + b"/caf\xe9.png"  # Latin-1 bytes: not valid UTF-8
    with open(raw_name, "wb") as out:
        Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(out, format="PNG")


@pytest.mark.parametrize("add, readable", [
    (add_non_utf8_png, 11),                                  # read like any other image
    (lambda folder: (folder / "looks-like.png").mkdir(), 10),  # a subfolder: ignored
    (lambda folder: os.mkfifo(folder / "pipe.png"), 10),     # opening it would wait for a writer forever
], ids=["non-utf8-name", "subfolder-named-like-an-image", "fifo"])
def test_odd_folder_entries_are_read_or_ignored_without_blocking(tmp_path, add, readable):
    folder = digit_folder(tmp_path)
    add(folder)
    images, skipped = load_folder(folder, warn=lambda message: None)
    assert len(images) == readable and skipped == []
