"""Any image file -> the 28x28 input the study's models take, made the way MNIST was made.

Greyscale, uneven lighting of photos flattened (photo.py), white ink on black, cropped to the ink, fitted into 20x20 with the aspect ratio
kept, centred by centre of mass in 28x28, uint8 0..255 (the models rescale themselves).
Used by the outliers stage on a folder of images of any format, size and colour mode.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from cnnstudy.errors import DataError
from cnnstudy.images_io import open_image_bounded
from cnnstudy.photo import border_pixels, flatten_illumination

MIN_IMAGES = 10
SIDE = 28            # MNIST's field
BOX = 20             # MNIST's digits were fitted into 20x20 ...
CENTRE = 14.0        # ... and shifted so that the centre of mass (pixel-index coordinates) is
#                      nearest the field's centre: MNIST's own lie in [13.5, 14.5].
INK_THRESHOLD = 0.05  # of the stretched 0..1 range: ink for the bounding box (MNIST: 436 of 500 kept exactly)
BLANK_CONTRAST = 0.02  # less contrast than this between background and brightest pixel: no ink
WORKING_SIDE = 512   # larger images are shrunk to this longest side first (the result is 20x20)
THUMBNAIL_SIDE = 96

# Files that are obviously not images and not worth a warning.
DOC_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst", ".adoc", ".html", ".htm", ".pdf", ".json",
                          ".yaml", ".yml", ".toml", ".ini", ".cfg", ".csv", ".tsv", ".log", ".dvc"})
DOC_STEMS = ("readme", "license", "licence", "copying", "notice", "authors", "changelog", "credits")
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})


def warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclass(frozen=True)
class OutlierImage:
    name: str               # file name inside the folder
    pixels: np.ndarray      # (28, 28) uint8, white on black: what the model sees
    original: np.ndarray    # small RGB(A) or grey thumbnail of the file, for figures
    mode: str               # PIL mode of the file
    size: tuple[int, int]   # (width, height) of the file
    inverted: bool          # the background was light, so the image was inverted
    blank: bool             # no ink found: the model sees an all-black image


def is_ignored(path: Path) -> bool:
    """Docs (README.md, LICENSE, notes.txt) and system files are skipped without a warning."""
    name = path.name.lower()
    return (name.startswith(".") or name in SYSTEM_FILES or path.suffix.lower() in DOC_SUFFIXES
            or any(name == stem or name.startswith(stem + ".") for stem in DOC_STEMS))


def _is_high_depth(mode: str) -> bool:
    return mode in ("I", "F") or mode.startswith("I;16")


def to_grey(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Luminance in [0, 1] (1 = white) as float32, and the alpha channel in [0, 1] or None.

    8-bit modes go through PIL's ITU-R 601 luma. 16- and 32-bit modes (I;16, I, F) are
    scaled by their own range, from min(0, lowest value) to the highest: a 12-bit scan in
    a 16-bit file uses a sixteenth of the nominal range and must not look blank.
    """
    mode = image.mode
    if _is_high_depth(mode):
        values = np.asarray(image).astype(np.float64)
        values = np.where(np.isfinite(values), values, 0.0)
        low = min(0.0, float(values.min()))
        high = float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        return np.clip(scaled, 0.0, 1.0).astype(np.float32), None
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        la = np.asarray(image.convert("RGBA").convert("LA"), dtype=np.float32) / 255.0
        return la[..., 0], la[..., 1]
    grey = image if mode == "L" else image.convert("RGB").convert("L")
    return np.asarray(grey, dtype=np.float32) / 255.0, None


def flatten_alpha(grey: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite onto the background that contrasts with the visible content.

    Dark ink on transparency goes onto white, light ink onto black, so that neither
    vanishes; the inversion step then makes it white on black either way.
    """
    if alpha is None or float(alpha.min()) >= 1.0:
        return grey
    weight = float(alpha.sum())
    if weight <= 0.0:  # fully transparent: nothing to see
        return np.zeros_like(grey)
    content = float((grey * alpha).sum()) / weight
    background = 0.0 if content > 0.5 else 1.0
    return grey * alpha + background * (1.0 - alpha)


def resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased (Lanczos) resize of a float image, clipped back to [0, 1]."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))
    resized = image.resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)


def _shrink(grey: np.ndarray, side: int = WORKING_SIDE) -> np.ndarray:
    height, width = grey.shape
    if max(height, width) <= side:
        return grey
    scale = side / max(height, width)
    return resize(grey, max(1, round(width * scale)), max(1, round(height * scale)))


def mnist_style(grey: np.ndarray) -> tuple[np.ndarray, dict]:
    """A greyscale image (float, 0..1, any size) -> (28, 28) uint8 the way MNIST was made.

    1. invert when the background is light: the median of the border pixels is
       nearer the image's brightest than its darkest value;
    2. stretch so the background is 0 and the brightest ink 1 (MNIST's background is
       exactly 0);
    3. crop to the bounding box of the ink (pixels above INK_THRESHOLD);
    4. fit into 20x20 keeping the aspect ratio (anti-aliased resize);
    5. place in 28x28 so that the centre of mass is nearest the centre (whole-pixel
       shift), never pushing ink out of the field;
    6. uint8 0..255.
    """
    values = np.asarray(grey, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"expected a non-empty 2-D greyscale image, got shape {values.shape}")
    background = float(np.median(border_pixels(values)))
    low, high = float(values.min()), float(values.max())
    inverted = background > (low + high) / 2
    if inverted:
        values, background = 1.0 - values, 1.0 - background
    top = float(values.max())
    info = {"inverted": bool(inverted), "blank": False}
    if top - background < BLANK_CONTRAST:
        info["blank"] = True
        return np.zeros((SIDE, SIDE), np.uint8), info
    values = np.clip((values - background) / (top - background), 0.0, 1.0)
    ink = values > INK_THRESHOLD
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = values[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = crop.shape
    scale = BOX / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = crop if (new_w, new_h) == (width, height) else resize(crop, new_w, new_h)
    mass = float(small.sum())
    if mass > 0:
        ys, xs = np.indices(small.shape)
        com_y, com_x = float((ys * small).sum()) / mass, float((xs * small).sum()) / mass
    else:  # pragma: no cover - the crop holds ink above the threshold
        com_y, com_x = (new_h - 1) / 2, (new_w - 1) / 2
    top_row = int(np.clip(math.floor(CENTRE - com_y + 0.5), 0, SIDE - new_h))
    left_col = int(np.clip(math.floor(CENTRE - com_x + 0.5), 0, SIDE - new_w))
    canvas = np.zeros((SIDE, SIDE))
    canvas[top_row:top_row + new_h, left_col:left_col + new_w] = small
    return np.round(canvas * 255.0).astype(np.uint8), info


def _thumbnail(image: Image.Image, grey: np.ndarray) -> np.ndarray:
    if _is_high_depth(image.mode):
        thumb = Image.fromarray(np.round(grey * 255).astype(np.uint8))
    else:
        thumb = image.convert("RGBA")
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(thumb)


def preprocess_image(image: Image.Image, name: str = "") -> OutlierImage:
    grey, alpha = to_grey(image)
    flat = flatten_alpha(grey, alpha)
    # Phone photos: even out the paper's light first (evenly lit and small images pass unchanged).
    pixels, info = mnist_style(flatten_illumination(_shrink(flat)))
    return OutlierImage(name=name, pixels=pixels, original=_thumbnail(image, flat), mode=image.mode,
                        size=image.size, inverted=info["inverted"], blank=info["blank"])


def read_image(path: str | Path) -> OutlierImage:
    """Decode and preprocess one file; any decoder error propagates (the caller skips the file)."""
    path = Path(path)
    upright = open_image_bounded(path)  # bounded decoding; phone photos: the EXIF rotation applied
    return preprocess_image(upright, path.name)


def load_folder(folder: str | Path, warn: Callable[[str], None] = warn_stderr,
                minimum: int = MIN_IMAGES) -> tuple[list[OutlierImage], list[tuple[str, str]]]:
    """Every readable image directly in `folder` (sorted by name), and the skipped files.

    Docs and hidden files are ignored silently, subfolders are not searched; a file
    that fails to decode is listed in one warning. Fewer than `minimum` usable
    images is a DataError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: the outlier image folder does not exist; "
                        f"create it with at least {minimum} images or set outliers.dir in params.yaml")
    images: list[OutlierImage] = []
    skipped: list[tuple[str, str]] = []
    for path in sorted(folder.iterdir()):
        if path.is_symlink() and not path.exists() and not is_ignored(path):
            skipped.append((path.name, "broken symbolic link (its target is missing, or a link loop)"))
        if not path.is_file() or is_ignored(path):  # folders, FIFOs (would block), devices
            continue
        try:
            images.append(read_image(path))
        except Exception as exc:  # noqa: BLE001 - whatever a decoder raises, the file is not a usable image
            reason = f"{type(exc).__name__}: {exc}"
            skipped.append((path.name, reason if len(reason) <= 120 else reason[:117] + "..."))
    if skipped:
        warn(f"{folder}: skipped {len(skipped)} file(s) that are not readable images: "
             + "; ".join(f"{name} ({reason})" for name, reason in skipped))
    blank = [image.name for image in images if image.blank]
    if blank:
        warn(f"{folder}: no ink found in {', '.join(blank)}; the model sees an all-black image")
    if len(images) < minimum:
        raise DataError(f"{folder}: only {len(images)} usable image(s), at least {minimum} are needed"
                        f"{f' ({len(skipped)} unreadable file(s) skipped)' if skipped else ''}; "
                        "add images (png, jpg, ...; subfolders are not searched) or set outliers.dir")
    return images, skipped
