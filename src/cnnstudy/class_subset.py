"""prepare.classes: keep a subset of the classes (e.g. the five some studies used).

The kept classes are renumbered 0..k-1 in the order given, so every model has k
outputs and every confusion matrix is k x k; the other images get the label EXCLUDED
and no split ever draws them. Labels are remapped in place of dropping images, so an
image's source index (its position in the raw files) stays what it was.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cnnstudy.errors import DataError

EXCLUDED = 255  # uint8 label of an image of a class not kept
KEY = "prepare.classes"


def resolve_classes(value, class_names: Sequence[str]) -> tuple[int, ...]:
    """'all' / None -> every class; a list of class indices or class names -> their indices.

    At least two classes (a classifier needs two), no repeats, every entry a class of the
    data set; the error names the key and the data set's classes.
    """
    if value is None or value == "all":
        return tuple(range(len(class_names)))
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise DataError(f"{KEY}: expected 'all' or a list of classes, got {value!r}")
    indices = []
    for entry in value:
        if isinstance(entry, bool):
            raise DataError(f"{KEY}: {entry!r} is not a class")
        if isinstance(entry, int) and 0 <= entry < len(class_names):
            indices.append(entry)
        elif isinstance(entry, str) and entry in class_names:
            indices.append(list(class_names).index(entry))
        else:
            raise DataError(f"{KEY}: {entry!r} is not a class of this data set; its classes are "
                            f"0..{len(class_names) - 1} ({', '.join(class_names)})")
    if len(set(indices)) != len(indices):
        raise DataError(f"{KEY}: a class is listed twice in {list(value)}")
    if len(indices) < 2:
        raise DataError(f"{KEY}: at least two classes are needed, got {list(value)}")
    return tuple(indices)


def remap_labels(labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Kept class classes[i] -> i; every other class -> EXCLUDED."""
    table = np.full(256, EXCLUDED, dtype=np.uint8)
    table[list(classes)] = np.arange(len(classes), dtype=np.uint8)
    return table[np.asarray(labels, dtype=np.uint8)]


def subset_names(class_names: Sequence[str], classes: Sequence[int]) -> tuple[str, ...]:
    return tuple(class_names[c] for c in classes)
