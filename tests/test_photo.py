"""Phone photos of handwritten digits: uneven light and sensor noise are flattened before
the MNIST-style preprocessing, and clean images are left as they were."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cnnstudy import image_prep, photo
from cnnstudy.images_io import open_image_bounded

SEVEN = ([(480, 260), (740, 250), (720, 300), (560, 660)], [(560, 450), (700, 445)])


def draw_seven(width: int = 1200, height: int = 900) -> np.ndarray:
    """Ink strength 0..1 of a pen-drawn 7 (a stroke and a crossbar), slightly blurred."""
    scale = width / 1200  # the strokes are given for 1200 pixels wide

    def points(line):
        return [(x * scale, y * scale) for x, y in line]

    ink = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(ink)
    draw.line(points(SEVEN[0]), fill=255, width=round(38 * scale), joint="curve")
    draw.line(points(SEVEN[1]), fill=255, width=round(30 * scale))
    return np.asarray(ink.filter(ImageFilter.GaussianBlur(3 * scale)), dtype=np.float64) / 255.0


def phone_photo(path, seed: int = 0, width: int = 1200, height: int = 900) -> None:
    """Dark ink on grey paper lit from one side (about 40% brighter across), noise, JPEG."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    light = 150 + 42 * xs / width + 28 * ys / height - 30 * ((xs - width * .3) ** 2 + (ys - height * .2) ** 2) / width ** 2
    pixels = light * (1 - 0.75 * draw_seven(width, height)) + rng.normal(0, 6, light.shape)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGB").save(path, quality=85)


def clean_scan(path, width: int = 1200, height: int = 900) -> None:
    Image.fromarray(np.round(255 * (1 - draw_seven(width, height))).astype(np.uint8)).save(path)


def without_flattening(path) -> np.ndarray:
    """image_prep.read_image's pixels as they were before the photo step."""
    upright = open_image_bounded(path)
    grey, alpha = image_prep.to_grey(upright)
    return image_prep.mnist_style(image_prep._shrink(image_prep.flatten_alpha(grey, alpha)))[0]


def ink_box(pixels: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def test_phone_photo_comes_out_like_the_clean_digit(tmp_path):
    phone_photo(tmp_path / "photo.jpg")
    clean_scan(tmp_path / "clean.png")
    reference = image_prep.read_image(tmp_path / "clean.png")
    prepared = image_prep.read_image(tmp_path / "photo.jpg")
    assert prepared.inverted and not prepared.blank and prepared.size == (1200, 900)
    assert max(ink_box(prepared.pixels)) == 20  # the digit fills MNIST's 20x20 box
    assert correlation(prepared.pixels, reference.pixels) > 0.85
    # Without the flattening the lit paper counts as ink and the digit shrinks to a corner.
    assert correlation(without_flattening(tmp_path / "photo.jpg"), reference.pixels) < 0.5


def test_light_ink_on_dark_photo(tmp_path):
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:600, 0:800]
    board = 40 + 25 * xs / 800 + rng.normal(0, 4, (600, 800))  # a dark board, unevenly lit
    ink = draw_seven(800, 600)
    Image.fromarray(np.clip(board + 170 * ink, 0, 255).astype(np.uint8)).save(tmp_path / "chalk.png")
    prepared = image_prep.read_image(tmp_path / "chalk.png")
    assert not prepared.inverted and max(ink_box(prepared.pixels)) == 20


def test_small_and_clean_images_are_unchanged(tmp_path, digits):
    images, _ = digits
    grey = images[0].astype(np.float64) / 255
    np.testing.assert_array_equal(photo.flatten_illumination(grey), grey)  # 28x28: not a photo
    clean_scan(tmp_path / "clean.png", 400, 300)
    before = without_flattening(tmp_path / "clean.png").astype(int)
    after = image_prep.read_image(tmp_path / "clean.png").pixels.astype(int)
    assert correlation(before, after) > 0.95


def test_blank_photo_stays_blank(tmp_path):
    rng = np.random.default_rng(2)
    paper = 180 + 30 * np.mgrid[0:300, 0:400][1] / 400 + rng.normal(0, 0.2, (300, 400))
    Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).save(tmp_path / "paper.png")
    assert image_prep.read_image(tmp_path / "paper.png").blank


def test_evenly_lit_large_image_is_unchanged():
    """A bright disk on an even dark sky (like data/outliers/photo-moon.png) is not a page to flatten."""
    ys, xs = np.mgrid[0:256, 0:256]
    moon = np.where((ys - 128) ** 2 + (xs - 128) ** 2 < 90 ** 2, 0.8 - 0.3 * xs / 256, 0.02)
    np.testing.assert_array_equal(photo.flatten_illumination(moon), moon)


def test_the_repository_photos_of_scenes_are_left_alone():
    """Photos of scenes are not pages: the step leaves them as they were, so none turns blank
    (the astronaut was blanked before the MAX_PAPER_INK gate)."""
    from cnnstudy.params import REPO_ROOT

    folder = REPO_ROOT / "data" / "outliers"
    for name in ("photo-astronaut.jpg", "photo-camera.png", "photo-moon.png"):
        grey, alpha = image_prep.to_grey(open_image_bounded(folder / name))
        values = image_prep._shrink(image_prep.flatten_alpha(grey, alpha))
        np.testing.assert_array_equal(photo.flatten_illumination(values), values, err_msg=name)
    images, _ = image_prep.load_folder(folder)
    assert not [image.name for image in images if image.blank]
