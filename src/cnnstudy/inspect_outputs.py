"""The inspect stages' outputs: per model under plots/inspect/<model>/, across models
under plots/inspect/ and metrics/inspect.md. Computation in inspection.py and
saliency.py, figures in figures/inspect.py; this module only decides what to show and
writes it (atomically, through cnnstudy.files)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from cnnstudy import figures
from cnnstudy import inspection as I
from cnnstudy.figures import inspect as F
from cnnstudy.files import write_csv, write_json, write_text
from cnnstudy.inspect_report import ACROSS_MD, PLOTS_DIR
from cnnstudy.tables import grid

SALIENCY_MISTAKES = 4   # the most confident mistakes, beside one digit per class
TOP_PAIRS = 10


def layer_rows(model) -> list[list]:
    return [[r["layer"], r["type"], "—" if r["output_shape"] is None else str(r["output_shape"]).replace("None", "N"),
             f"{r['parameters']:,}"] for r in I.layer_table(model)]


def layers_markdown(model, name: str) -> str:
    total = model.count_params()
    return (f"# Layers of {name}\n\n{grid(['layer', 'type', 'output shape', 'parameters'], layer_rows(model))}"
            f"\n\nTotal: {total:,} parameters.\n")


ERROR_COLUMNS = ("test_index", "true", "predicted", "confidence")


def error_rows(mistakes: Sequence[I.Mistake], class_names: Sequence[str]) -> list[dict]:
    return [{"test_index": m.index, "true": class_names[m.true], "predicted": class_names[m.predicted],
             "confidence": None if np.isnan(m.confidence) else m.confidence} for m in mistakes]


def native_input(model) -> bool:
    """The model sees the 28x28 digit itself (not a resized RGB copy): maps and saliency apply."""
    return tuple(model.inputs[0].shape[1:]) == (28, 28, 1)


def inspect_predictions(model, name: str, test: tuple[np.ndarray, np.ndarray], class_names: Sequence[str],
                        out_dir: Path, predicted: np.ndarray, probabilities: np.ndarray | None = None,
                        history: Mapping[str, Sequence[float]] | None = None) -> dict:
    """What every model gets, even one known only by its architecture and recorded
    predictions: errors (CSV and gallery), layer table, accuracy/loss per epoch."""
    images, labels = test
    mistakes = I.mistakes(labels, predicted, probabilities)
    write_csv(out_dir / "errors.csv", error_rows(mistakes, class_names), columns=ERROR_COLUMNS)
    figures.save(F.error_gallery(images, mistakes, class_names, f"{name}: misclassified test images"),
                out_dir / "errors.png")
    write_text(out_dir / "layers.md", layers_markdown(model, name))
    if history:
        figures.save(F.history_figure(history, f"{name}: accuracy and loss per epoch"), out_dir / "history.png")
    return {"model": name, "test_images": int(len(labels)), "test_accuracy": float(np.mean(predicted == labels)),
            "mistakes": len(mistakes), "parameters": int(model.count_params()),
            "most_confident_mistakes": [{"test_index": m.index, "true": class_names[m.true],
                                         "predicted": class_names[m.predicted],
                                         "confidence": None if np.isnan(m.confidence) else m.confidence}
                                        for m in mistakes[:10]]}


def inspect_model(model, name: str, test: tuple[np.ndarray, np.ndarray], class_names: Sequence[str],
                  out_dir: Path, outlier_images: Sequence | None = None,
                  history: Mapping[str, Sequence[float]] | None = None,
                  model_input: Callable[[np.ndarray], np.ndarray] | None = None,
                  feature_indices: Sequence[int] | None = None) -> dict:
    """Every per-model output of a trained model; returns the numbers for summary.json.

    feature_indices: test images for the feature maps (default: the first of each class)."""
    from cnnstudy import saliency
    from cnnstudy.evaluation import predict_proba

    images, labels = test
    probabilities = predict_proba(model, model_input(images) if model_input else images)
    predicted = probabilities.argmax(axis=1)
    result = inspect_predictions(model, name, test, class_names, out_dir, predicted, probabilities, history)
    mistakes = I.mistakes(labels, predicted, probabilities)
    figures.save(F.filters_figure(I.first_layer_filters(model), f"{name}: first conv layer's kernels"),
                out_dir / "filters.png")
    deeper, total = I.deeper_kernel_summaries(model), len(I.conv_layers(model)) - 1
    shown = f" ({len(deeper)} of {total}, evenly spaced in depth)" if len(deeper) < total else ""
    figures.save(F.kernel_summary_figure(deeper, f"{name}: deeper conv layers{shown}"), out_dir / "kernels_deeper.png")
    if not native_input(model):
        return result
    picks = I.one_per_class(labels, len(class_names))
    shown = list(feature_indices) if feature_indices else picks
    which = "chosen test digits" if feature_indices else "one test digit per class"
    figures.save(F.feature_maps_figure(images[shown], labels[shown], I.feature_maps(model, images[shown]), class_names,
                                      f"{name}: conv block activations, {which}"), out_dir / "feature_maps.png")
    chosen = picks + [m.index for m in mistakes[:SALIENCY_MISTAKES]]
    attributions = saliency.integrated_gradients(model, images[chosen], predicted[chosen])
    gap = saliency.completeness_gap(model, images[chosen], predicted[chosen], attributions)
    titles = [f"{class_names[labels[i]]}: says {class_names[predicted[i]]} {probabilities[i, predicted[i]]:.2f}"
              for i in chosen]
    figures.save(F.saliency_figure(images[chosen], attributions, titles,
                                  f"{name}: integrated gradients of the predicted class (digits, then mistakes)"),
                out_dir / "saliency_digits.png")
    result["saliency"] = {"method": "integrated gradients", "baseline": "black image", "steps": saliency.STEPS,
                          "target": "predicted class probability", "max_completeness_gap": float(np.abs(gap).max())}
    if outlier_images:
        pixels = np.stack([o.pixels for o in outlier_images])
        p_out = predict_proba(model, pixels)
        cls = p_out.argmax(axis=1)
        attributions = saliency.integrated_gradients(model, pixels, cls)
        titles = [f"{o.name[:14]}: {class_names[c]} {p_out[i, c]:.2f}" for i, (o, c) in enumerate(zip(outlier_images, cls))]
        figures.save(F.saliency_figure(pixels, attributions, titles,
                                      f"{name}: what made it so sure (outliers, integrated gradients)"),
                    out_dir / "saliency_outliers.png")
    return result


def write_model(summary: dict, out_dir: Path) -> None:
    write_json(out_dir / "summary.json", summary)


# ------------------------------------------------------------------ across models
def across_models(confusions: Mapping[str, np.ndarray], class_names: Sequence[str], plots_dir: Path = PLOTS_DIR,
                  markdown: Path = ACROSS_MD) -> dict:
    """Per-class recall side by side and the most confused pairs, as figure, CSV and Markdown."""
    recall = I.per_class_recall(confusions)
    figures.save(F.recall_figure(recall, class_names, "Recall per class and model (test split)"),
                plots_dir / "recall.png")
    write_csv(plots_dir / "recall.csv", [{"model": name, **dict(zip(class_names, values))} for name, values in recall.items()],
              columns=["model", *class_names])
    pairs = I.confused_across_models(confusions, TOP_PAIRS)
    names = list(confusions)
    text = ["# Where the models fail", "", "## Recall per class (test split)", "",
            grid(["model", *class_names], [[n, *(f"{v:.1%}" for v in recall[n])] for n in names]), "",
            f"## The {len(pairs)} most confused pairs (summed over {len(names)} models)", "",
            grid(["true", "predicted", "total", *names],
                     [[class_names[p["true"]], class_names[p["predicted"]], p["total"],
                       *(p["per_model"][n] for n in names)] for p in pairs]), "",
            "## Each model's most frequent confusion", ""]
    for name, matrix in confusions.items():
        top = I.confused_pairs(matrix, 3)
        said = "; ".join(I.describe_pair(t, p, c, class_names) for t, p, c in top) or "no mistakes"
        text.append(f"- **{name}** {said}.")
    write_text(markdown, "\n".join(text) + "\n")
    return {"recall": {n: [None if np.isnan(v) else float(v) for v in r] for n, r in recall.items()},
            "confused_pairs": [{**p, "true": class_names[p["true"]], "predicted": class_names[p["predicted"]]}
                               for p in pairs]}
