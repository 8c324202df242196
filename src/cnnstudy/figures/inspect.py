"""Figures of what a network learned and where it fails. Each function returns a
matplotlib Figure (the caller saves it with figures.save); numbers come from
inspection.py and saliency.py.

Digits are drawn the same way everywhere: dark ink on white, the raw 0..255 pixels
with cmap "gray_r" and fixed vmin/vmax, so two figures' digits compare by eye.
Signed quantities (kernels, attributions) use a diverging map centred on 0.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from cnnstudy.figures import plt

DIGIT = {"cmap": "gray_r", "vmin": 0, "vmax": 255, "interpolation": "nearest"}
SIGNED = "RdBu_r"


def _symmetric(values: np.ndarray) -> dict:
    limit = float(np.max(np.abs(values))) or 1.0
    return {"cmap": SIGNED, "vmin": -limit, "vmax": limit, "interpolation": "nearest"}


def _off(axes) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def _note_figure(text: str):
    """A small figure that only says why there is nothing to draw (the stage's output still exists)."""
    fig, ax = plt.subplots(figsize=(4, 1))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def draw_digit(ax, pixels: np.ndarray, title: str | None = None, fontsize: float = 7) -> None:
    ax.imshow(np.asarray(pixels).squeeze(), **DIGIT)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


# ------------------------------------------------------------------ kernels
def filters_figure(filters: np.ndarray, title: str, cols: int = 8):
    """The first conv layer's kernels (F, kh, kw), one tile each, on one shared signed scale
    (red positive, blue negative): which strokes and edges the first layer looks for."""
    count = len(filters)
    cols = min(cols, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 0.8, rows * 0.95 + 0.6), squeeze=False)
    style = _symmetric(filters)
    for ax in axes.ravel():
        ax.axis("off")
    for i, kernel in enumerate(filters):
        ax = axes.flat[i]
        ax.axis("on")
        image = ax.imshow(kernel, **style)
        ax.set_title(str(i), fontsize=6)
    _off(axes)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(title, fontsize=10)
    return fig


def kernel_summary_figure(summaries: Sequence, title: str):
    """Per deeper conv layer: mean |weight| of each input->output kernel (which channels
    feed which), and the principal components of its kernels with their share of variance."""
    if not summaries:
        return _note_figure("one conv layer only: no deeper kernels")
    comps = max(len(s.components) for s in summaries)
    fig, axes = plt.subplots(len(summaries), 1 + comps, figsize=(3.2 + 1.3 * comps, 2.6 * len(summaries)),
                             squeeze=False, gridspec_kw={"width_ratios": [2.5] + [1] * comps})
    for row, summary in zip(axes, summaries):
        heat = row[0].imshow(summary.strength, aspect="auto", cmap="viridis", interpolation="nearest")
        row[0].set_title(f"{summary.layer} {summary.shape[0]}x{summary.shape[1]}: mean |w|", fontsize=8)
        row[0].set_xlabel("output channel", fontsize=7)
        row[0].set_ylabel("input channel", fontsize=7)
        row[0].tick_params(labelsize=6)
        fig.colorbar(heat, ax=row[0], shrink=0.8)
        for k, ax in enumerate(row[1:]):
            if summary.shape[:2] == (1, 1):  # one weight per channel pair: no spatial pattern to show
                ax.axis("off")
                if k == 0:
                    ax.text(0.5, 0.5, "1x1 kernels:\nno spatial\npattern", ha="center", va="center", fontsize=8)
            elif k < len(summary.components):
                ax.imshow(summary.components[k], **_symmetric(summary.components[k]))
                ax.set_title(f"PC{k + 1}: {summary.explained[k]:.0%}", fontsize=8)
            else:
                ax.axis("off")
        _off(row[1:])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # keep the first row's titles clear of it
    return fig


# ------------------------------------------------------------------ activations
def feature_maps_figure(images: np.ndarray, labels: Sequence[int], maps: Sequence[tuple[str, np.ndarray]],
                        class_names: Sequence[str], title: str, channels: int = 6):
    """One row per digit: the digit, then for each conv block its `channels` most active
    maps (by mean activation over the shown digits), each map on its own scale (its maximum
    over the shown digits), side by side in one image per block."""
    blocks = []
    for name, values in maps:
        strongest = np.argsort(-values.mean(axis=(0, 1, 2)), kind="stable")[:channels]
        blocks.append((name, values, [int(c) for c in strongest]))
    n = len(images)
    width = 1 + sum(len(picked) for _, _, picked in blocks)
    # One axes per block and digit, not per map: a figure of a few hundred axes took seconds to lay out.
    fig, axes = plt.subplots(n, 1 + len(blocks), figsize=(width * 0.78 + 0.6, n * 0.82 + 0.8), squeeze=False,
                             gridspec_kw={"width_ratios": [1] + [len(picked) for _, _, picked in blocks]})
    magma = plt.get_cmap("magma").with_extremes(bad="white")
    for r in range(n):
        draw_digit(axes[r, 0], images[r])
        axes[r, 0].set_ylabel(class_names[labels[r]], rotation=0, labelpad=10, fontsize=8)
        for b, (name, values, picked) in enumerate(blocks):
            strip, centres = _tile_strip(values, r, picked)
            ax = axes[r, b + 1]
            ax.imshow(strip, cmap=magma, vmin=0, vmax=1, interpolation="nearest")
            if r == 0:
                ax.set_title(name, fontsize=6)
                ax.set_xticks(centres, [f"#{c}" for c in picked], fontsize=5)
                ax.xaxis.tick_top()
                ax.tick_params(length=0, pad=1)
            else:
                ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("input", fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _tile_strip(values: np.ndarray, row: int, channels: Sequence[int], min_size: int = 12):
    """Digit `row`'s maps of `channels`, each divided by its maximum over all rows, enlarged to
    at least `min_size` pixels (nearest neighbour) and joined left to right with a one-pixel
    blank gap; returns the strip and each tile's centre column."""
    scale = max(1, math.ceil(min_size / values.shape[1]))
    tiles = []
    for c in channels:
        top = float(values[..., c].max()) or 1.0
        tiles.append(np.kron(values[row, :, :, c] / top, np.ones((scale, scale))))
    gap = np.full((tiles[0].shape[0], 1), np.nan)
    strip = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
    step = tiles[0].shape[1] + 1
    return strip, [i * step + (step - 2) / 2 for i in range(len(tiles))]


# ------------------------------------------------------------------ errors
def error_gallery(images: np.ndarray, mistakes: Sequence, class_names: Sequence[str], title: str,
                  limit: int = 48, cols: int = 8):
    """The misclassified test images, most confident mistakes first: true / predicted / confidence."""
    shown = list(mistakes)[:limit]
    if not shown:
        return _note_figure("no misclassified test images")
    cols = min(cols, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.15, rows * 1.35 + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, m in zip(axes.ravel(), shown):
        conf = "" if math.isnan(m.confidence) else f" {m.confidence:.2f}"
        draw_digit(ax, images[m.index], f"{class_names[m.true]}→{class_names[m.predicted]}{conf}", fontsize=7)
        ax.axis("on")
        ax.set_xlabel(f"#{m.index}", fontsize=5)
    more = f" (first {limit} of {len(mistakes)})" if len(mistakes) > limit else f" ({len(mistakes)})"
    fig.suptitle(f"{title}{more}: true→predicted confidence", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ saliency
def saliency_figure(images: np.ndarray, attributions: np.ndarray, titles: Sequence[str], title: str,
                    cols: int = 4):
    """Per image: the digit (or outlier, as the model sees it), and its integrated-gradient
    attributions over it (red: pushed towards the predicted class, blue: against)."""
    n = len(images)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols * 1.1 + 0.6, rows * 1.45 + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        # Each image on its own scale, clipped at the 99th percentile: a few extreme pixels
        # would otherwise wash the rest out.
        limit = float(np.percentile(np.abs(attributions[i]), 99)) or 1.0
        ax = axes.flat[i]
        ax.imshow(_digit_and_attribution(images[i], attributions[i], limit), interpolation="nearest")
        ax.set_title(f"{titles[i]}\nattribution ±{limit:.1e}", fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _digit_and_attribution(pixels: np.ndarray, attribution: np.ndarray, limit: float, alpha: float = 0.65):
    """One RGB image: the digit as draw_digit shows it, a blank column, then the digit under its
    attributions (a signed map at `alpha`, as two stacked imshow calls would draw it)."""
    digit = plt.get_cmap(DIGIT["cmap"])(np.clip(np.asarray(pixels, dtype=float).squeeze() / 255.0, 0, 1))[..., :3]
    signed = plt.get_cmap(SIGNED)(np.clip((np.asarray(attribution) / limit + 1) / 2, 0, 1))[..., :3]
    over = (1 - alpha) * digit + alpha * signed
    gap = np.ones((digit.shape[0], 2, 3))
    return np.concatenate([digit, gap, over], axis=1)


# ------------------------------------------------------------------ training curves
def history_figure(history: Mapping[str, Sequence[float]], title: str):
    """Accuracy and loss per epoch, training (solid) and validation (dashed), on one figure:
    a validation loss that turns up while the training loss falls is overfitting."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        # Keras' training figures are running means over the epoch with dropout on.
        for key, style, label in ((metric, "-", "train (running, dropout on)"), (f"val_{metric}", "--", "validation")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        else:  # a model trained before its history was recorded
            ax.text(0.5, 0.5, f"no {metric} per epoch recorded", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ across models
def recall_figure(recall: Mapping[str, np.ndarray], class_names: Sequence[str], title: str):
    """Per-class recall side by side, one bar per model in each class group."""
    names = list(recall)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6, len(class_names) * (0.3 + 0.12 * len(names))), 3.6))
    x = np.arange(len(class_names))
    for i, name in enumerate(names):
        ax.bar(x + (i - (len(names) - 1) / 2) * width, recall[name], width, label=name)
    low = min(float(np.nanmin(v)) for v in recall.values())
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_xticks(x, class_names)
    ax.set_ylabel("recall")
    ax.legend(fontsize=6, ncol=min(5, len(names)), loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
