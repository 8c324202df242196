"""A model's test-split predictions as data: written by the evaluate stage, read by every stage
that pairs two models on the same images (McNemar in summary and compare_table, outliers).

metrics/eval/<model>/predictions.npz holds `labels` (N,) the true classes, `predicted` (N,)
and `probabilities` (N, classes) float32, in test-split order, and `class_names`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnstudy.errors import DataError
from cnnstudy.files import write_npz

EVAL_DIR = Path("metrics/eval")
KEYS = ("labels", "predicted", "probabilities", "class_names")


def predictions_file(model: str, eval_dir: Path = EVAL_DIR) -> Path:
    return Path(eval_dir) / model / "predictions.npz"


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]

    @property
    def correct(self) -> np.ndarray:
        return self.labels == self.predicted


def write_predictions(target: str | Path, labels: np.ndarray, probabilities: np.ndarray,
                      class_names: tuple[str, ...]) -> None:
    write_npz(target, labels=np.asarray(labels), predicted=np.asarray(probabilities).argmax(axis=1),
              probabilities=np.asarray(probabilities, dtype=np.float32), class_names=np.asarray(class_names))


def read_predictions(path: str | Path, model: str = "") -> Predictions:
    """Read and check one predictions file; a missing or malformed one is a DataError naming it."""
    path = Path(path)
    fix = "run `dvc repro evaluate`" if model else "run `dvc repro`"
    if not path.is_file():
        raise DataError(f"{path}: missing; {fix}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: has no array {', '.join(missing)}; {fix}")
            arrays = {k: npz[k] for k in KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable ({exc}); {fix}") from None
    n = len(arrays["labels"])
    if len(arrays["predicted"]) != n or arrays["probabilities"].shape[0] != n:
        raise DataError(f"{path}: {n} labels but {len(arrays['predicted'])} predictions; {fix}")
    return Predictions(arrays["labels"], arrays["predicted"], arrays["probabilities"],
                       tuple(str(c) for c in arrays["class_names"]))
