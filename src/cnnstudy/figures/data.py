"""Figures of the input data: sample images per class, images per class and split."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from cnnstudy.figures import DIGIT_STYLE, plt

GAP = 2  # pixels of blank space between tiles of a mosaic


def _mosaic(images: np.ndarray, labels: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    """One float image: a row per class, the first `per_class` images of that class; NaN = blank."""
    h, w = images.shape[1:]
    out = np.full((num_classes * (h + GAP) - GAP, per_class * (w + GAP) - GAP), np.nan, dtype=np.float32)
    for c in range(num_classes):
        # The splits are already shuffled, so the first images of a class are a random sample.
        for j, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            out[c * (h + GAP):c * (h + GAP) + h, j * (w + GAP):j * (w + GAP) + w] = images[i]
    return out


def samples_figure(splits: Mapping[str, tuple[np.ndarray, np.ndarray]], class_names: Sequence[str],
                   per_class: int = 5):
    """A grid of `per_class` sample images per class (rows) for each split (panels)."""
    num_classes = len(class_names)
    # Constrained layout sizes the margins to the (possibly long) class names.
    fig, axes = plt.subplots(1, len(splits), figsize=(2.2 * len(splits) * per_class / 5 + 1.5,
                                                      0.45 * num_classes + 0.6),
                             squeeze=False, layout="constrained")
    cmap = plt.get_cmap(DIGIT_STYLE["cmap"]).with_extremes(bad="white")
    for ax, (name, (images, labels)) in zip(axes[0], splits.items()):
        h = images.shape[1]
        ax.imshow(_mosaic(images, labels, num_classes, per_class), cmap=cmap, vmin=DIGIT_STYLE["vmin"], vmax=DIGIT_STYLE["vmax"],
                  interpolation="nearest")
        ax.set_title(f"{name} ({len(images):,} images)", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([c * (h + GAP) + h / 2 for c in range(num_classes)], list(class_names), fontsize=8)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(f"{per_class} sample images per class and split", fontsize=11)
    return fig


def class_distribution_figure(counts: Mapping[str, Mapping[str, int]]):
    """Horizontal bars of images per class, one panel per split; counts = {split: {class: n}}."""
    num_classes = max(map(len, counts.values()))
    fig, axes = plt.subplots(1, len(counts), figsize=(3.2 * len(counts) + 1.2, 0.3 * num_classes + 1.2),
                             sharey=True, squeeze=False, layout="constrained")
    for ax, (name, per_class) in zip(axes[0], counts.items()):
        classes, values = list(per_class), list(per_class.values())
        bars = ax.barh(classes, values, color="#4c72b0")
        ax.bar_label(bars, padding=2, fontsize=7)
        ax.set_xlim(0, max(values, default=0) * 1.2 or 1)  # room for the labels; bars start at 0
        ax.set_title(f"{name} ({sum(values):,} images)", fontsize=10)
        ax.set_xlabel("images")
        ax.tick_params(labelsize=8)
    # Once only: the panels share y, and each call flips the shared axis.
    axes[0, 0].invert_yaxis()  # first class on top, as in the sample grid
    fig.suptitle("Images per class and split", fontsize=11)
    return fig
