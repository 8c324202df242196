"""The `compare_table` stage's library: the standard architectures beside the baseline and the
variants (Markdown tables with McNemar's test against the baseline, bar charts). It trains
nothing and reads only what the compare, evaluate and summary stages wrote, so rewording a
column never retrains a model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnstudy.errors import DataError
from cnnstudy.files import read_json
from cnnstudy.params import BASELINE, TUNED, CompareParams
from cnnstudy.predictions import Predictions, predictions_file, read_predictions
from cnnstudy.recipes import DESCRIPTIONS, RECIPES
from cnnstudy.summary import COLUMNS as SUMMARY_COLUMNS
from cnnstudy.summary import mcnemar
from cnnstudy.tables import grid, markdown_table

SUMMARY_JSON = Path("metrics/summary.json")
BASELINE_PREDICTIONS = predictions_file(BASELINE)
PLOTS_DIR = Path("plots/compare")
MODELS_DIR = Path("models/compare")

# The summary table's columns, with what the standard models add (kind, input, training images)
# in place of the variant's change, and without macro F1 (not recorded for them).
COLUMNS = (("model", "model", "{}"), ("kind", "kind", "{}"), ("input", "input", "{}"),
           ("train_images", "train images", "{:,}"),
           *(column for column in SUMMARY_COLUMNS if column[0] not in ("model", "change", "f1_macro")))
BARS = (  # (row key, title, y label, file stem, format, log scale): the report's Figures 12-17
    ("test_accuracy", "Test accuracy", "test accuracy", "test_accuracy", "{:.2%}", False),
    ("val_accuracy", "Validation accuracy (last epoch)", "val accuracy", "val_accuracy", "{:.2%}", False),
    ("train_time_s", "Training time (log scale)", "seconds", "train_time", "{:.1f}", True),
    ("test_time_s", "Test time, whole test split (log scale)", "seconds", "test_time", "{:.3f}", True),
    ("model_file_mb", "Model file size, .keras incl. optimizer state (log scale)", "MB", "model_size", "{:.2f}",
     True),
    ("parameters", "Parameters (log scale)", "parameters", "parameters", "{:,.0f}", True),
)


def study_rows(summary_json: Path = SUMMARY_JSON, train_images: int | None = None,
               refit_images: int | None = None) -> list[dict]:
    """The baseline's and the variants' rows, as the summary stage wrote them; the tuned model
    was refit on train + validation, so its row says `refit_images`."""
    try:
        summary = read_json(summary_json)
    except OSError:
        raise DataError(f"{summary_json} is missing; run `dvc repro summary` first") from None
    except ValueError as exc:
        raise DataError(f"{summary_json} is not valid JSON ({exc}); run `dvc repro summary`") from None
    if not isinstance(summary, dict) or BASELINE not in summary:
        raise DataError(f"{summary_json} holds no '{BASELINE}' row; run `dvc repro summary`")
    rows = []
    for name in [BASELINE, *(n for n in summary if n != BASELINE)]:  # the baseline first, then file order
        row = summary[name]
        rows.append({**row, "model": name, "kind": "study CNN" if name == BASELINE else f"variant: {row.get('change')}",
                     "input": "28x28x1", "train_images": refit_images if name == TUNED else train_images})
    return rows


def standard_row(name: str, record: dict, predicted: np.ndarray, test_labels: np.ndarray,
                 baseline_predictions: Predictions | None, baseline_accuracy: float | None) -> dict:
    row = {"model": name, "kind": DESCRIPTIONS[name], **{k: record.get(k) for k, *_ in COLUMNS if k in record}}
    row.update(test_accuracy=record["test_accuracy"], val_accuracy=record["val_accuracy"],
               mcnemar_p=None, delta_vs_baseline=None)
    if baseline_accuracy is not None:
        row["delta_vs_baseline"] = round((record["test_accuracy"] - baseline_accuracy) * 100, 3)
    if baseline_predictions is not None:
        if not np.array_equal(baseline_predictions.labels, test_labels):
            raise DataError(f"{BASELINE_PREDICTIONS} is for other test images than data/prepared; run `dvc repro`")
        row["mcnemar_p"] = mcnemar(baseline_predictions.correct, predicted == test_labels)["p_value"]
    return row


def read_baseline_predictions(path: Path = BASELINE_PREDICTIONS) -> Predictions:
    return read_predictions(path, BASELINE)


def recipe_table(records: dict[str, dict]) -> str:
    header = ["model", "optimizer", "peak lr", "warm-up epochs", "epochs", "batch", "BN momentum", "train images",
              "train acc (training mode, last epoch)", "train acc (inference mode)", "val acc", "why"]
    rows = []
    for name, r in records.items():
        rec = r["recipe"]
        bn = None if rec["bn_momentum"] is None else f"{rec['bn_momentum']} (Keras: {default_bn(name)})"
        rows.append([name, r["optimizer"], f"{rec['lr']:g}", rec["warmup_epochs"], r["epochs"], rec["batch_size"], bn,
                     f"{r['train_images']:,}", f"{r['train_accuracy']:.2%}", f"{r['train_accuracy_inference']:.2%}",
                     f"{r['val_accuracy']:.2%}", RECIPES[name].why])
    return grid(header, rows)


def default_bn(name: str) -> str:
    return {"mobilenetv2": "0.999"}.get(name, "0.99")


def history_table(records: dict[str, dict]) -> str:
    """Per epoch: training-mode train accuracy / inference-mode val accuracy, one column per model."""
    names = list(records)
    longest = max((len(r["history"].get("accuracy", [])) for r in records.values()), default=0)
    rows = []
    for epoch in range(longest):
        cells = []
        for name in names:
            h = records[name]["history"]
            if epoch < len(h.get("accuracy", [])):
                cells.append(f"{h['accuracy'][epoch]:.3f} / {h['val_accuracy'][epoch]:.3f}")
            else:
                cells.append("")
        rows.append([epoch + 1, *cells])
    return grid(["epoch", *names], rows)


def report_markdown(rows: list[dict], records: dict[str, dict], compare: CompareParams, total_s: float) -> str:
    dropped = [n for n, r in records.items() if not r["model_file_kept"]]
    costs = ", ".join(f"{n} {r['stage_seconds']:.0f} s" for n, r in records.items())
    notes = [
        f"Standard models trained from scratch (no ImageNet weights) on the same split; the keras.applications "
        f"models and AlexNet see the 28x28 digits resized to {compare.input_size}x{compare.input_size} and "
        f"replicated to 3 channels (data pipeline); LeNet-5 sees the 28x28x1 images as the study's CNN does. "
        f"Every model takes pixels 0..255 and rescales them itself.",
        "Train time: the sum of the epochs (validation included), as for the study's models; test time: the whole "
        "test split after a warm-up batch, on the resized input (the resize itself is not timed).",
        f"The compare stage took {total_s:.0f} s for {len(records)} model(s) "
        f"({costs}).",
    ]
    if "resnet50" in records:
        notes.append("ResNet50's ImageNet stem (7x7/2 conv, 3x3/2 max-pool) leaves an 8x8 map of a 32x32 input and "
                     "its last stage a 1x1 map: it fits the training images perfectly but generalises worse than "
                     "DenseNet121; a larger compare.input_size may help (not measured here) at a quadratic cost in time.")
    if dropped:
        notes.append(f"Not kept under {MODELS_DIR}/ (compare.keep_models): {', '.join(dropped)}; the file size was "
                     "measured on a temporary .keras file, deleted afterwards.")
    return "\n".join([
        "# Standard architectures vs the study's CNNs (test split)", "",
        markdown_table(rows, COLUMNS), "",
        *[f"- {n}" for n in notes], "",
        "## From-scratch recipes", "",
        "Adam (train.optimizer) with a linear warm-up from 0 to the peak lr, then cosine decay to 0. "
        "keras.applications builds BatchNorm with momentum 0.99 (MobileNetV2: 0.999): after a few hundred steps "
        "its moving averages still hold mostly their initial values, so inference-mode accuracy stays at chance "
        "while training-mode accuracy rises. The recipes set 0.9. The last two accuracy columns are the check: "
        "training mode (Keras' running average during the last epoch) against inference mode (after training).", "",
        recipe_table(records), "",
        "## Per epoch: train accuracy (training mode) / val accuracy (inference mode)", "",
        history_table(records), "",
    ])


def save_charts(rows: list[dict], records: dict[str, dict], plots_dir: Path = PLOTS_DIR) -> None:
    from cnnstudy import figures
    from cnnstudy.figures.results import accuracy_figure, bar_figure, curves_figure

    from cnnstudy.conclusions import holm

    names = [row["model"] for row in rows]
    # The standard models' tests against the baseline are a family of their own (the variants'
    # Holm p comes from summary.json): marks only where the corrected p is below 0.05.
    standard = [row for row in rows if row["model"] in records and row.get("mcnemar_p") is not None]
    for row, corrected in zip(standard, holm([row["mcnemar_p"] for row in standard])):
        row["mcnemar_p_holm"] = corrected
    marks = {row["model"]: "better" if row["delta_vs_baseline"] > 0 else "worse" for row in rows
             if row.get("mcnemar_p_holm") is not None and row["mcnemar_p_holm"] < 0.05}
    test_images = [rows[0].get("test_images")] * len(rows)  # every model sees the same test split
    for key, title, ylabel, stem, fmt, log in BARS:
        values = [float("nan") if row.get(key) is None else float(row[key]) for row in rows]
        if key.endswith("accuracy"):
            figure = accuracy_figure(names, values, test_images if key == "test_accuracy" else [None] * len(rows),
                                     title, ylabel, significant=marks if key == "test_accuracy" else None,
                                     highlight=set(records))
        else:
            figure = bar_figure(names, values, title, ylabel, fmt=fmt, log=log, highlight=set(records))
        figures.save(figure, plots_dir / f"{stem}.png")
    histories = {name: r["history"] for name, r in records.items()}
    figures.save(curves_figure(histories, "val_accuracy", "Standard models: validation accuracy per epoch"),
                 plots_dir / "curves_val_accuracy.png")
