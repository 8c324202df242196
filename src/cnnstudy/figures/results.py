"""Figures of model results: confusion matrices, sample predictions, bar charts, curves."""

from __future__ import annotations

import numpy as np

from cnnstudy.figures import plt


def confusion_figure(matrix: np.ndarray, class_names: tuple[str, ...], title: str):
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center", fontsize=7,
                color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def predictions_figure(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                       class_names: tuple[str, ...], title: str, count: int = 15):
    """A grid of test images with true and predicted label; mistakes in red."""
    count = min(count, len(images))
    cols = 5
    rows = max(1, int(np.ceil(count / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.1))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i >= count:
            continue
        predicted = int(probabilities[i].argmax())
        ax.imshow(images[i], cmap="gray_r")
        ok = predicted == int(labels[i])
        ax.set_title(f"true {class_names[labels[i]]}\npred {class_names[predicted]} "
                     f"({probabilities[i, predicted]:.0%})", fontsize=8, color="black" if ok else "red")
    fig.suptitle(title)
    return fig


def bar_figure(names: list[str], values: list[float], title: str, ylabel: str,
               baseline: str = "baseline", fmt: str = "{:.3g}", log: bool = False, highlight: set[str] = frozenset()):
    """One bar per model: the baseline orange, the study's variants blue, the models in
    `highlight` (the standard architectures) green; `log`: a log-scale y axis."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(names) + 2), 4.2))
    colours = ["tab:orange" if n == baseline else "tab:green" if n in highlight else "tab:blue" for n in names]
    bars = ax.bar(names, values, color=colours)
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=7, padding=2)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=45)
    for label in ax.get_xticklabels():
        label.set_ha("right")
    finite = [v for v in values if np.isfinite(v)]
    if finite and ylabel.endswith("accuracy"):
        low = min(finite)
        ax.set_ylim(max(0.0, low - (1 - low) * 0.5 - 0.01), 1.0)
    if log:
        ax.set_yscale("log")
    fig.tight_layout()
    return fig


def curves_figure(histories: dict[str, dict[str, list[float]]], metric: str, title: str):
    """One line per model: `metric` (e.g. val_accuracy) against the epoch."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, history in histories.items():
        values = history.get(metric, [])
        ax.plot(range(1, len(values) + 1), values, marker=".", label=name,
                linewidth=2.2 if name == "baseline" else 1.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
