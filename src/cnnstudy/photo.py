"""Photos of handwritten digits: even out the paper before the MNIST-style preprocessing.

image_prep.mnist_style takes the border's median as the background and everything
brighter than 5% of the ink range as ink. A phone photo breaks both: the paper is lit
unevenly (one corner 30% brighter than another is usual) and the sensor adds noise, so
the "ink" bounding box becomes the whole photo and the digit shrinks to a few pixels.

`flatten_illumination` removes that the way document scanners do: estimate the paper's
brightness everywhere with a grey-level closing (a window wider than any pen stroke
fills the strokes with the surrounding paper), divide it out, smooth away sensor noise,
and cut the noise floor of the paper. Small images (under MIN_PHOTO_SIDE, e.g. an
MNIST digit itself or a 28x28 glyph) and evenly lit ones (a clean scan) are returned
unchanged. image_prep.preprocess_image calls it, so the outlier stage and `cnnstudy predict`
prepare every image the same way.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MIN_PHOTO_SIDE = 64       # smaller images are taken as already clean (so are evenly lit ones)
WINDOW_FRACTION = 1 / 6   # closing window: a sixth of the shorter side, wider than a pen stroke
NOISE_SIGMA_FRACTION = 1 / 300  # Gaussian smoothing of sensor noise, relative to the shorter side
NOISE_FLOOR_MADS = 4.0    # paper pixels within this many robust deviations of the paper are paper
MIN_INK_CONTRAST = 0.08   # ink at least 8% darker than the paper around it; less is an empty page
# Evenly lit images are left alone: the border's 5th-95th percentile spread (after the noise
# smoothing) under this share of the image's range. A phone photo here: 0.28; a clean scan
# and the moon on a black sky (data/outliers): 0.0 and 0.09.
MIN_BORDER_SPREAD = 0.15
# ... and so are scenes, not pages: on a page most pixels are paper, so the median "ink" after
# dividing out the paper is near 0 (phone photo of a digit 0.006, blank lit paper 0.001); a
# photo's is not (photo-astronaut.jpg 0.27, photo-camera.png 0.08 in data/outliers: the step
# blanked the astronaut before this gate).
MAX_PAPER_INK = 0.04


def border_pixels(values: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels (all of them for an image two pixels thin)."""
    if values.shape[0] <= 2 or values.shape[1] <= 2:
        return values.ravel()
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def flatten_illumination(grey: np.ndarray) -> np.ndarray:
    """A greyscale image (float 0..1) with its background made flat, same polarity and shape."""
    values = np.asarray(grey, dtype=np.float64)
    side = min(values.shape)
    if values.ndim != 2 or side < MIN_PHOTO_SIDE:
        return values
    smooth = ndimage.gaussian_filter(values, sigma=max(0.5, side * NOISE_SIGMA_FRACTION))
    low, high = np.percentile(border_pixels(smooth), [5, 95])
    if high - low < MIN_BORDER_SPREAD * (float(smooth.max()) - float(smooth.min())):
        return values
    light_paper = float(np.median(border_pixels(values))) > (values.min() + values.max()) / 2
    if not light_paper:  # work with dark ink on light paper
        smooth = 1.0 - smooth
    window = max(3, int(side * WINDOW_FRACTION))
    background = ndimage.grey_closing(smooth, size=(window, window))
    background = ndimage.gaussian_filter(background, sigma=window / 4)
    ink = np.clip(1.0 - smooth / np.maximum(background, 1e-6), 0.0, 1.0)
    if float(np.median(ink)) > MAX_PAPER_INK:  # a scene, not a page of paper
        return values
    deviation = 1.4826 * float(np.median(np.abs(ink - np.median(ink))))
    floor = float(np.median(ink)) + NOISE_FLOOR_MADS * deviation
    top = float(ink.max())
    if top < MIN_INK_CONTRAST or top <= floor:  # nothing stands out: mnist_style then says blank
        return np.ones_like(values) if light_paper else np.zeros_like(values)
    ink = np.clip((ink - floor) / (top - floor), 0.0, 1.0)
    return 1.0 - ink if light_paper else ink
