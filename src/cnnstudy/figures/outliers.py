"""Figures of the outliers stage: each file beside what the model sees, the class
probabilities per setting, and the ROC curves."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cnnstudy.detection import SCORES, TPR_LEVEL
from cnnstudy.figures import DIGIT_STYLE, plt
from cnnstudy.image_prep import OutlierImage
from cnnstudy.outliers import INFERENCE, MC_DROPOUT, MODELS, SETTING_TITLES, SETTINGS, Study


def preprocessing_figure(images: Sequence[OutlierImage], cols: int = 6):
    """Each file as read beside the 28x28 image the model sees."""
    rows = max(1, math.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2 * cols * 1.15, rows * 1.45), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        left, right = axes[r, 2 * c], axes[r, 2 * c + 1]
        left.imshow(image.original, cmap="gray" if image.original.ndim == 2 else None, vmin=0, vmax=255)
        left.set_title(_short(image.name), fontsize=6.5)
        right.imshow(image.pixels, **DIGIT_STYLE)
        right.set_title("model sees" + (" (inv.)" if image.inverted else ""), fontsize=6.5)
    fig.suptitle("Outliers: file (left) and the MNIST-style 28x28 input (right)", fontsize=10)
    fig.tight_layout()
    return fig


def _short(name: str, width: int = 18) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def probabilities_figure(study: Study, cols: int = 2):
    """Per outlier: the input, then the class probabilities in each setting.

    (a) the reference model's vector (all repeats identical); (b) the mean of the
    MC-dropout passes with each pass as a dot; (c) the mean over models with each
    model's probability as a dot.
    """
    ref = study.queries[study.reference]
    all_models = np.stack([q.inference_out for q in study.queries.values()])  # (K, N, C)
    n = len(study.images)
    rows = max(1, math.ceil(n / cols))
    per = 1 + len(SETTINGS)
    fig, axes = plt.subplots(rows, cols * per, figsize=(cols * per * 1.9, rows * 1.25), squeeze=False,
                             gridspec_kw={"width_ratios": [0.7, 1, 1, 1] * cols})
    for ax in axes.ravel():
        ax.axis("off")
    classes = np.arange(len(study.class_names))
    colours = {INFERENCE: "tab:blue", MC_DROPOUT: "tab:orange", MODELS: "tab:green"}
    for i, image in enumerate(study.images):
        r, c = divmod(i, cols)
        ax = axes[r, c * per]
        ax.imshow(image.pixels, **DIGIT_STYLE)
        ax.set_title(_short(image.name, 16), fontsize=6.5)
        samples = {INFERENCE: ref.repeats_out[:, i], MC_DROPOUT: ref.mc_out[:, i], MODELS: all_models[:, i]}
        for s, setting in enumerate(SETTINGS):
            ax = axes[r, c * per + 1 + s]
            ax.axis("on")
            mean = samples[setting].mean(axis=0)
            ax.bar(classes, mean, color=colours[setting], alpha=0.75, width=0.8)
            if setting != INFERENCE:
                for sample in samples[setting]:
                    ax.plot(classes, sample, ".", color="black", markersize=2, alpha=0.6)
            ax.set_ylim(0, 1.02)
            ax.set_xticks(classes, study.class_names if len(study.class_names[0]) <= 2 else classes, fontsize=5)
            ax.tick_params(axis="y", labelsize=5)
            if r == 0:
                ax.set_title(SETTING_TITLES[setting], fontsize=6.5)
    fig.suptitle(f"Class probabilities per outlier: (a) {study.reference}, inference mode; (b) {study.reference}, "
                 f"MC dropout ({study.repeats} passes as dots); (c) mean of {len(study.queries)} models "
                 "(each as a dot)", fontsize=9)
    fig.tight_layout()
    return fig


def roc_figure(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], detection: dict, items: str = "digits"):
    fig, axes = plt.subplots(1, len(curves), figsize=(6.2 * len(curves), 5.0), squeeze=False)
    for ax, (score, per_model) in zip(axes[0], curves.items()):
        colours = plt.get_cmap("tab20").colors
        for i, (name, (fpr, tpr)) in enumerate(per_model.items()):
            # Straight segments between the ROC points: tied scores make diagonal steps.
            ax.plot(fpr, tpr, color=colours[(2 * i) % 20 + (i >= 10)], linewidth=2.2 if name == "baseline" else 1.0,
                    linestyle="--" if "retrained_seed" in detection[name] else "-",
                    label=f"{name} ({detection[name][score]['auroc']:.3f})")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.axhline(TPR_LEVEL, color="grey", linewidth=0.6)
        ax.set_xlabel(f"false positive rate (outliers taken for {items})")
        ax.set_ylabel(f"true positive rate (test {items} kept)")
        ax.set_title(f"ROC, {SCORES[score]}")
        ax.legend(fontsize=6.5, title="model (AUROC)", title_fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
