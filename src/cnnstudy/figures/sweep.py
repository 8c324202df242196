"""Figures of a sweep, read from metrics/sweep.csv: parallel coordinates of all trials, the main
effect of each factor, and a heatmap of two factors. Rendering only: never imported by a stage
that trains (stage sweep_plots draws them). Each function returns a matplotlib Figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cnnstudy.figures import plt

METRIC = "val_accuracy"
# A factor with more distinct values than this (a range in a random or TPE search) is binned.
MAX_LEVELS = 8
BINS = 5


def levels(table: pd.DataFrame, factor: str) -> pd.Series:
    """The factor as ordered categories: its own values, or quantile bins of a continuous range."""
    column = table[factor]
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all() and column.nunique() > MAX_LEVELS:
        return pd.qcut(numeric, q=min(BINS, numeric.nunique()), duplicates="drop")
    if numeric.notna().all():
        order = sorted(column.unique(), key=float)
    else:
        order = list(dict.fromkeys(column))  # first-seen order: the order of params.yaml's grid
    return pd.Categorical(column, categories=order, ordered=True)


def _label(value) -> str:
    if isinstance(value, pd.Interval):
        return f"{value.left:.3g}–{value.right:.3g}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def parallel_coordinates(table: pd.DataFrame, factors: list[str]):
    """One line per trial through every factor's axis, ending at its validation accuracy."""
    axes_names = [*factors, METRIC]
    fig, ax = plt.subplots(figsize=(1.9 * len(axes_names) + 2, 4.6))
    positions = {}
    for name in factors:
        cats = pd.Series(levels(table, name))
        codes = cats.cat.codes.to_numpy(dtype=float)
        count = max(len(cats.cat.categories) - 1, 1)
        positions[name] = (codes / count, [_label(c) for c in cats.cat.categories])
    metric = table[METRIC].astype(float).to_numpy()
    low, high = float(metric.min()), float(metric.max())
    span = high - low or 1.0
    positions[METRIC] = ((metric - low) / span, None)
    cmap = plt.get_cmap("viridis")
    for i in np.argsort(metric):  # best drawn last, on top
        ys = [positions[name][0][i] for name in axes_names]
        ax.plot(range(len(axes_names)), ys, color=cmap((metric[i] - low) / span), alpha=0.8, lw=1.6)
    for x, name in enumerate(axes_names):
        ax.axvline(x, color="0.6", lw=0.8)
        ticks = positions[name][1]
        if ticks is None:
            ticks_y = np.linspace(0, 1, 5)
            ticks = [f"{low + t * span:.3f}" for t in ticks_y]
        else:
            ticks_y = np.linspace(0, 1, len(ticks)) if len(ticks) > 1 else [0.0]
        for y, text in zip(ticks_y, ticks):
            ax.text(x + 0.03, y, text, fontsize=7, va="center")
    ax.set_xticks(range(len(axes_names)), axes_names)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"All {len(table)} trials (colour: validation accuracy)")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(low, high))
    fig.colorbar(sm, ax=ax, fraction=0.03, label=METRIC)
    return fig


def main_effects(table: pd.DataFrame, factors: list[str]):
    """Per factor: mean validation accuracy per value, error bars one standard deviation, trials as dots."""
    fig, axes = plt.subplots(1, len(factors), figsize=(3.6 * len(factors), 3.6), sharey=True, squeeze=False)
    metric = table[METRIC].astype(float)
    for ax, factor in zip(axes[0], factors):
        cats = pd.Series(levels(table, factor), index=table.index)
        grouped = metric.groupby(cats, observed=True)
        names = [_label(c) for c in grouped.mean().index]
        x = np.arange(len(names))
        ax.errorbar(x, grouped.mean().to_numpy(), yerr=grouped.std(ddof=0).fillna(0).to_numpy(), fmt="o-",
                    capsize=4, color="tab:blue", label="mean ± sd")
        codes = {c: i for i, c in enumerate(grouped.mean().index)}
        ax.scatter([codes[c] for c in cats], metric, s=12, color="0.4", alpha=0.6, label="trials")
        ax.set_xticks(x, names, rotation=30 if len(names) > 4 else 0)
        ax.set_xlabel(factor)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"{METRIC} (validation split)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Main effect of each factor")
    fig.tight_layout()
    return fig


def heatmap(table: pd.DataFrame, rows: str, cols: str):
    """Mean validation accuracy for each pair of values of two factors (averaged over the others)."""
    frame = pd.DataFrame({"r": levels(table, rows), "c": levels(table, cols), "m": table[METRIC].astype(float)})
    grid = frame.pivot_table(index="r", columns="c", values="m", aggfunc="mean", observed=False)
    fig, ax = plt.subplots(figsize=(1.3 * len(grid.columns) + 2.5, 0.9 * len(grid.index) + 1.8))
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [_label(c) for c in grid.columns])
    ax.set_yticks(range(len(grid.index)), [_label(r) for r in grid.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8,
                    color="white" if value < np.nanmean(grid.to_numpy(dtype=float)) else "black")
    ax.set_title(f"Mean validation accuracy: {rows} × {cols}")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig
