"""Figures of model results: confusion matrices, confident mistakes, bar charts, curves."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import PercentFormatter

from cnnstudy.figures import DIGIT_STYLE, hide_axes, plt

BASELINE_COLOUR, VARIANT_COLOUR, STANDARD_COLOUR = "tab:orange", "tab:blue", "tab:green"
# An accuracy this far (10 points) below the best model's is drawn off scale: the study's
# differences are fractions of a point, and one failing model must not flatten them.
OFF_SCALE_POINTS = 0.10


def confusion_figure(matrix: np.ndarray, class_names: tuple[str, ...], title: str):
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    # Every class on both axes, also those never predicted (the matrix is classes x classes).
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    long_names = max(map(len, class_names), default=0) > 2
    ax.set_xticks(range(len(class_names)), class_names, rotation=45 if long_names else 0,
                  ha="right" if long_names else "center")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center", fontsize=7,  # zeros faint: the errors stand out
                color="white" if count > threshold else "black" if count else "silver")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def confident_mistakes(labels: np.ndarray, probabilities: np.ndarray, count: int = 15) -> np.ndarray:
    """Indices of the wrong predictions, most confident first (at most `count`)."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


def mistakes_figure(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                    class_names: tuple[str, ...], title: str, count: int = 15):
    """The model's most confident mistakes on the test split: each image with its true class,
    the prediction and its probability, and the probability it gave the true class."""
    chosen = confident_mistakes(labels, probabilities, count)
    cols = 5
    rows = max(1, int(np.ceil(len(chosen) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.2 + 0.4), squeeze=False)
    for ax in axes.ravel():
        hide_axes(ax)
    if len(chosen) == 0:
        axes[0, 0].text(0, 0.5, "no mistakes on the test split", fontsize=10, transform=axes[0, 0].transAxes)
    for ax, index in zip(axes.ravel(), chosen):
        truth, predicted = int(labels[index]), int(probabilities[index].argmax())
        ax.imshow(images[index], **DIGIT_STYLE)
        ax.set_title(f"true {class_names[truth]} ({probabilities[index, truth]:.0%})\n"
                     f"pred {class_names[predicted]} ({probabilities[index, predicted]:.0%})", fontsize=8)
    fig.suptitle(f"{title}: {len(chosen)} most confident mistakes of {int(np.sum(probabilities.argmax(1) != labels))}")
    fig.tight_layout()
    return fig


def bar_figure(names: list[str], values: list[float], title: str, ylabel: str,
               baseline: str = "baseline", fmt: str = "{:.3g}", log: bool = False, highlight: set[str] = frozenset()):
    """One bar per model: the baseline orange, the study's variants blue, the models in
    `highlight` (the standard architectures) green; `log`: a log-scale y axis."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(names) + 2), 4.2))
    colours = [BASELINE_COLOUR if n == baseline else STANDARD_COLOUR if n in highlight else VARIANT_COLOUR
               for n in names]
    bars = ax.bar(names, values, color=colours)
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=7, padding=2)
    ax.margins(y=0.15)  # room for the value labels under the title
    ax.set_title(title, pad=10)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=45)
    for label in ax.get_xticklabels():
        label.set_ha("right")
    if log:
        ax.set_yscale("log")
    fig.tight_layout()
    return fig


def accuracy_figure(names: list[str], accuracies: list[float], images: list[int | None], title: str, ylabel: str,
                    significant: dict[str, str] | None = None, baseline: str = "baseline",
                    highlight: set[str] = frozenset(), caption: str = ""):
    """Accuracy bars zoomed to the range that matters, a 95% Wilson interval per bar, Holm-significant
    differences from the baseline marked (`significant`: name -> "better"/"worse"), and models far
    below the rest drawn as a labelled marker at the bottom edge instead of stretching the axis."""
    from cnnstudy.conclusions import wilson

    significant = significant or {}
    values = np.asarray(accuracies, dtype=float)
    intervals = np.array([wilson(v, n) if n and np.isfinite(v) else (v, v) for v, n in zip(values, images)])
    finite = values[np.isfinite(values)]
    best = finite.max() if finite.size else 1.0
    on_scale = np.isfinite(values) & (values >= best - OFF_SCALE_POINTS)
    low = np.nanmin(intervals[on_scale, 0]) if on_scale.any() else 0.0
    high = min(1.0, np.nanmax(intervals[on_scale, 1])) if on_scale.any() else 1.0
    span = max(high - low, 0.002)
    bottom, top = max(0.0, low - 0.15 * span), high + 0.45 * span  # headroom: labels stay below the title
    if bottom < 0.25 * high:  # little to gain from zooming: start at 0 and keep bar lengths proportional
        bottom = 0.0
    on_scale |= np.isfinite(values) & (values >= bottom)  # off scale means below the axis, nothing else
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(names) + 2.5), 4.6))
    colours = [BASELINE_COLOUR if n == baseline else STANDARD_COLOUR if n in highlight else VARIANT_COLOUR
               for n in names]
    x = np.arange(len(names))
    heights = np.where(on_scale, values - bottom, 0.0)
    ax.bar(x, heights, bottom=bottom, color=colours)
    err = np.abs(intervals[on_scale].T - values[on_scale])
    ax.errorbar(x[on_scale], values[on_scale], yerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=3)
    for i, (name, value) in enumerate(zip(names, values)):
        mark = {"better": " ▲", "worse": " ▼"}.get(significant.get(name), "")
        if on_scale[i]:
            ax.annotate(f"{value:.2%}{mark}", (i, intervals[i, 1]), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, rotation=90 if len(names) > 12 else 0)
        elif np.isfinite(value):  # far below the rest: a marker on the axis, its value written out
            ax.plot(i, bottom, marker="v", color=colours[i], markersize=9, clip_on=False, zorder=3)
            ax.annotate(f"{value:.1%}{mark}\n(off scale)", (i, bottom), xytext=(0, 8), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, color="dimgray")
    ax.set_ylim(bottom, top)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1 if span < 0.05 else 0))
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, pad=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=_accuracy_legend(highlight, any(images), bool(significant)), fontsize=7, loc="upper left", ncol=2, framealpha=0.9)
    if bottom > 0:  # a bar chart whose axis does not start at 0 must say so
        caption = f"The axis starts at {bottom:.1%}, not 0: bar lengths are not proportional. " + caption
    fig.text(0.01, -0.02, caption.strip(), fontsize=7, color="dimgray", ha="left", va="top", wrap=True)
    fig.tight_layout()
    return fig


def _accuracy_legend(highlight: set[str], intervals: bool, marks: bool) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=BASELINE_COLOUR, label="baseline"), Patch(color=VARIANT_COLOUR, label="variant")]
    if highlight:
        handles.append(Patch(color=STANDARD_COLOUR, label="standard model"))
    if intervals:
        handles.append(Line2D([], [], color="black", marker="|", linestyle="none", markersize=10,
                              label="95% Wilson interval"))
    if marks:
        handles.append(Line2D([], [], color="black", marker="$▲▼$", linestyle="none", markersize=12,
                              label="better/worse than baseline (Holm p < 0.05)"))
    return handles


def useful_range(histories: dict[str, dict[str, list[float]]], metric: str) -> tuple[tuple[float, float] | None, set]:
    """The y range that shows the working models, and the models left out of it: for an accuracy,
    those whose best epoch is more than OFF_SCALE_POINTS below the best model's; for a loss, those
    whose lowest loss is over three times the best model's. The first epoch does not set the range."""
    series = {n: np.asarray(h.get(metric, []), dtype=float) for n, h in histories.items() if len(h.get(metric, []))}
    if not series:
        return None, set()
    accuracy = "acc" in metric
    best = {n: (v.max() if accuracy else v.min()) for n, v in series.items()}
    top = max(best.values()) if accuracy else min(best.values())
    failing = {n for n, b in best.items() if (b < top - OFF_SCALE_POINTS if accuracy else b > 3 * max(top, 1e-9))}
    kept = [v[1:] if len(v) > 1 else v for n, v in series.items() if n not in failing]
    values = np.concatenate(kept)
    low, high = float(values.min()), float(values.max())
    pad = max(high - low, 1e-3) * 0.08
    return (low - pad, (min(1.0, high + pad) if accuracy else high + pad)), failing


def curves_figure(histories: dict[str, dict[str, list[float]]], metric: str, title: str):
    """One line per model: `metric` (e.g. val_accuracy) against the epoch, zoomed to the working
    models; a model far off (a failing one) is named "off scale" in the legend."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    limits, failing = useful_range(histories, metric)
    colours = palette(len(histories))
    for colour, (name, history) in zip(colours, histories.items()):
        values = history.get(metric, [])
        label = f"{name} (off scale)" if name in failing else name
        ax.plot(range(1, len(values) + 1), values, marker=".", label=label, color=colour,
                linewidth=2.4 if name == "baseline" else 1.2, linestyle=":" if name in failing else "-")
    if limits is not None:
        ax.set_ylim(*limits)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    if "acc" in metric:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def palette(count: int) -> list:
    """`count` distinct colours: tab20 (tab10's hues in dark and light), then tab20b for more."""
    colours = list(plt.get_cmap("tab20").colors) + list(plt.get_cmap("tab20b").colors)
    ordered = colours[0:20:2] + colours[1:20:2] + colours[20:]
    return [ordered[i % len(ordered)] for i in range(count)]
