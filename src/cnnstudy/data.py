"""The prepared splits, as training and evaluation read them.

The prepare stage writes `data/prepared/{train,val,test}.npz` (arrays `images`
(N, 28, 28) uint8, `labels` (N,) uint8 and `source`, each image's index in the
raw files) and `info.json`. `load_prepared`
checks all of that, so a stale or hand-edited directory fails here with a
message that says to re-run the stage, not later inside Keras.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnstudy.errors import DataError
from cnnstudy.files import read_stage_json
from cnnstudy.idx import IMAGE_SHAPE

PREPARED_DIR = Path("data/prepared")
INFO_FILE = "info.json"
SPLITS = ("train", "val", "test")
FIX = "run `dvc repro prepare`"

Pair = tuple[np.ndarray, np.ndarray]  # (images (N, 28, 28) uint8, labels (N,) uint8)


@dataclass(frozen=True)
class Prepared:
    dataset: str
    class_names: tuple[str, ...]
    train: Pair
    val: Pair
    test: Pair

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> Pair:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return getattr(self, name)


def _read_info(directory: Path) -> dict:
    path = directory / INFO_FILE
    info = read_stage_json(path, FIX)
    names = info.get("class_names") if isinstance(info, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("dataset"), str) or not isinstance(names, list) \
            or not names or not all(isinstance(n, str) for n in names):
        raise DataError(f"{path}: expected an object with 'dataset' and a list 'class_names'; {FIX}")
    return info


def _load_split(path: Path, num_classes: int) -> Pair:
    if not path.is_file():
        raise DataError(f"{path}: missing; {FIX}")
    if not zipfile.is_zipfile(path):  # else np.load takes any other bytes for pickled data
        raise DataError(f"{path}: not an .npz archive (corrupt or replaced: {path.stat().st_size:,} bytes "
                        f"that are not a zip file); {FIX}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in ("images", "labels") if key not in npz.files]
            if missing:
                raise DataError(f"{path}: has no array {' or '.join(repr(k) for k in missing)}; {FIX}")
            images, labels = npz["images"], npz["labels"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable ({exc}); {FIX}") from None
    _check_pair(path, images, labels, num_classes)
    return images, labels


def _check_pair(path: Path, images: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
    expected = f"(N, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}) uint8"
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{path}: images are {images.shape} {images.dtype}, expected {expected}; {FIX}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{path}: labels are {labels.shape} {labels.dtype}, expected (N,) uint8; {FIX}")
    if len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels; {FIX}")
    if len(images) == 0:
        raise DataError(f"{path}: holds no images; {FIX}")
    if labels.max() >= num_classes:
        raise DataError(f"{path}: label {labels.max()} is not a class (0..{num_classes - 1}); {FIX}")


def load_splits(directory: str | Path, names: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, Pair]]:
    """Only the named splits (and the class names): the sweep reads train and val, never test."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: prepared data not found; {FIX}")
    class_names = tuple(_read_info(directory)["class_names"])
    return class_names, {name: _load_split(directory / f"{name}.npz", len(class_names)) for name in names}


def load_prepared(directory: str | Path = PREPARED_DIR) -> Prepared:
    """Load and check the three splits the prepare stage wrote to `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: prepared data not found; {FIX}")
    info = _read_info(directory)
    class_names = tuple(info["class_names"])
    pairs = {name: _load_split(directory / f"{name}.npz", len(class_names)) for name in SPLITS}
    return Prepared(dataset=info["dataset"], class_names=class_names, **pairs)
