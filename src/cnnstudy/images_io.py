"""Open a user's image with the pixels decoded bounded, whatever its header claims.

A 500 KB PNG can declare 13000x13000 pixels; decoding it (and converting it to
floats) takes gigabytes. Pillow's own guard only warns below 178 megapixels. Here:

- a JPEG over REDUCE_ABOVE_PIXELS is decoded at a reduced scale (`Image.draft`,
  the decoder's own 1/2..1/8 DCT scaling);
- anything still over MAX_DECODED_PIXELS (40 megapixels) is refused with
  ImageTooLarge (the caller skips the file with a warning);
- over REDUCE_ABOVE_PIXELS (4 megapixels) the decoded image is box-reduced by an
  integer factor (`Image.reduce`) so that later float conversions stay small;
  smaller images come back as decoded, so their preprocessing is unchanged.

Pillow's DecompressionBombWarning is silenced in favour of these messages.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from PIL import Image, ImageOps

MAX_DECODED_PIXELS = 40_000_000
REDUCE_ABOVE_PIXELS = 4_000_000
_REDUCIBLE_MODES = {"L", "LA", "I", "F", "RGB", "RGBA", "RGBa", "La", "CMYK", "YCbCr"}


class ImageTooLarge(ValueError):
    """The image declares more pixels than we decode."""


def open_image_bounded(path: str | Path) -> Image.Image:
    """The image at `path`, loaded and turned upright (EXIF), with at most REDUCE_ABOVE_PIXELS
    pixels if it had more; ImageTooLarge if it cannot be decoded within MAX_DECODED_PIXELS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"{str(exc).split(' could be')[0]}; this stage decodes at most "
                                f"{_megapixels(MAX_DECODED_PIXELS)}; downscale the image") from None
        with image:
            width, height = image.size
            if width * height > REDUCE_ABOVE_PIXELS and image.format == "JPEG":
                # draft picks the smallest DCT scale whose size is still >= the size asked for.
                scale = math.sqrt(REDUCE_ABOVE_PIXELS / (width * height))
                image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
            decoded = image.size[0] * image.size[1]
            if decoded > MAX_DECODED_PIXELS:
                raise ImageTooLarge(f"{width}x{height} pixels ({_megapixels(width * height)}), over the "
                                    f"{_megapixels(MAX_DECODED_PIXELS)} this stage decodes; downscale the image")
            image.load()
            return ImageOps.exif_transpose(_reduce(image))  # a new image: the file can be closed


def _reduce(image: Image.Image) -> Image.Image:
    pixels = image.size[0] * image.size[1]
    if pixels <= REDUCE_ABOVE_PIXELS:
        return image
    factor = math.ceil(math.sqrt(pixels / REDUCE_ABOVE_PIXELS))
    if image.mode not in _REDUCIBLE_MODES:  # palette, 1-bit, 16-bit: to the nearest mode reduce supports
        image = image.convert("I" if image.mode.startswith("I") else "RGBA")
    reduced = image.reduce(factor)
    reduced.info = dict(image.info)
    if hasattr(image, "getexif"):
        reduced.info["exif"] = image.getexif().tobytes()
    return reduced


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.0f} megapixels"
