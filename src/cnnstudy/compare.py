"""The `compare` stage's library: standard architectures next to the study's CNNs.

Each standard model (cnnstudy.standard_models) is trained from scratch with the
baseline's optimizer (train.optimizer) under its own Recipe (peak lr, linear
warm-up, cosine decay to 0, epochs, batch, BatchNorm momentum) through the
project's training loop (cnnstudy.training.fit: same EpochTimer, so the first
epoch, which pays for graph tracing, is reported apart and no start-up time is
counted), then measured with the project's evaluation code (cnnstudy.evaluation)
on the same test split, so its row is comparable with the study's rows that the
summary stage wrote to metrics/summary.json.

Accuracy is measured twice on the training images: in training mode (the running
average Keras logs during the epoch, the study's `train_accuracy`) and in inference
mode after training (`train_accuracy_inference`, BatchNorm on its moving averages).
A wide gap between them is the signature of lagging BatchNorm statistics.
"""

from __future__ import annotations

import dataclasses
import gc
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from cnnstudy import charts, standard_models
from cnnstudy.errors import DataError
from cnnstudy.evaluation import evaluate, predict_proba
from cnnstudy.files import read_json, save_figure
from cnnstudy.model_files import save_model
from cnnstudy.models import weight_bytes
from cnnstudy.params import BASELINE, CompareParams, TrainParams
from cnnstudy.standard_models import DESCRIPTIONS, RECIPES, Recipe
from cnnstudy.summary import markdown_table, mcnemar, read_predictions
from cnnstudy.training import TrainResult, fit

MODELS_DIR = Path("models/compare")
SUMMARY_JSON = Path("metrics/summary.json")
BASELINE_PREDICTIONS = Path("plots/eval") / BASELINE / "confusion.csv"
PLOTS_DIR = Path("plots/compare")
# Test-split predictions per standard model, for McNemar's test in the compare_table stage.
PREDICTIONS_JSON = Path("metrics/compare_predictions.json")

COLUMNS = (  # (row key, column title, format): the combined Markdown table
    ("model", "model", "{}"),
    ("kind", "kind", "{}"),
    ("input", "input", "{}"),
    ("train_images", "train images", "{:,}"),
    ("epochs", "epochs", "{}"),
    ("train_time_s", "train time (s)", "{:.1f}"),
    ("train_accuracy", "train acc", "{:.2%}"),
    ("val_accuracy", "val acc", "{:.2%}"),
    ("test_time_s", "test time (s)", "{:.3f}"),
    ("test_accuracy", "test acc", "{:.2%}"),
    ("delta_vs_baseline", "Δ test acc (points)", "{:+.2f}"),
    ("mcnemar_p", "McNemar p", "{:.3g}"),
    ("parameters", "parameters", "{:,}"),
    ("model_file_mb", "file (MB)", "{:.2f}"),
    ("weight_mb", "weights (MB)", "{:.2f}"),
)
BARS = (  # (row key, title, y label, file stem, format, log scale): the report's Figures 12-17
    ("test_accuracy", "Test accuracy", "test accuracy", "test_accuracy", "{:.2%}", False),
    ("val_accuracy", "Validation accuracy (last epoch)", "val accuracy", "val_accuracy", "{:.2%}", False),
    ("train_time_s", "Training time (log scale)", "seconds", "train_time", "{:.1f}", True),
    ("test_time_s", "Test time, whole test split (log scale)", "seconds", "test_time", "{:.3f}", True),
    ("model_file_mb", "Model file size, .keras incl. optimizer state (log scale)", "MB", "model_size", "{:.2f}",
     True),
    ("parameters", "Parameters (log scale)", "parameters", "parameters", "{:,.0f}", True),
)


# ---------------------------------------------------------------- recipe and data
def resolve_recipe(name: str, compare: CompareParams) -> Recipe:
    """The architecture's recipe; compare.epochs, when set, replaces its epochs (the warm-up
    then takes at most half of them)."""
    recipe = RECIPES[name]
    if compare.epochs is None:
        return recipe
    return dataclasses.replace(recipe, epochs=compare.epochs,
                               warmup_epochs=min(recipe.warmup_epochs, compare.epochs // 2))


def train_subset(images: np.ndarray, labels: np.ndarray, cap: int | None, seed: int):
    """At most `cap` training images, drawn at random (seeded), in their original order."""
    if cap is None or cap >= len(labels):
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(labels), size=cap, replace=False))
    return images[keep], labels[keep]


def learning_rate(recipe: Recipe, steps_per_epoch: int, epochs: int):
    """Linear warm-up from 0 to recipe.lr, then cosine decay to 0 at the last step."""
    total = max(1, steps_per_epoch * epochs)
    warmup = min(recipe.warmup_epochs * steps_per_epoch, total - 1)
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(recipe.lr, total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=recipe.lr,
                                                  warmup_steps=warmup)


OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}


def compile_standard(model: keras.Model, optimizer: str, schedule, jit_compile="auto",
                     run_eagerly: bool = False) -> keras.Model:
    model.compile(optimizer=OPTIMIZERS[optimizer](learning_rate=schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile, run_eagerly=run_eagerly)
    return model


def inference_accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predict_proba(model, images).argmax(axis=1) == labels))


# ---------------------------------------------------------------- one model
@dataclasses.dataclass
class Trained:
    name: str
    model: keras.Model
    recipe: Recipe
    result: TrainResult
    train_images: int
    train_accuracy_inference: float
    optimizer: str


def train_standard(name: str, compare: CompareParams, baseline: TrainParams, train: tuple, val: tuple,
                   verbose: int = 0) -> Trained:
    """Build `name` and train it from scratch under its recipe; `train`/`val` are (N, 28, 28) uint8 + labels."""
    recipe = resolve_recipe(name, compare)
    x_train, y_train = train_subset(*train, compare.max_train_images, baseline.seed)
    x_train = standard_models.model_input(name, x_train, compare.input_size)
    x_val = standard_models.model_input(name, val[0], compare.input_size)
    model = standard_models.build_standard(name, compare.input_size, seed=baseline.seed,
                                           bn_momentum=recipe.bn_momentum)
    steps = -(-len(y_train) // recipe.batch_size)
    compile_standard(model, baseline.optimizer, learning_rate(recipe, steps, recipe.epochs))
    # fit() reads batch_size from a TrainParams: the baseline's, with the recipe's batch and peak lr.
    cfg = dataclasses.replace(baseline, batch_size=recipe.batch_size, lr=recipe.lr, epochs=recipe.epochs)
    result = fit(model, cfg, (x_train, y_train), (x_val, val[1]), recipe.epochs, verbose=verbose)
    return Trained(name, model, recipe, result, len(y_train), inference_accuracy(model, x_train, y_train),
                   baseline.optimizer)


def measure(trained: Trained, compare: CompareParams, test: tuple, class_names: tuple[str, ...],
            keep: bool, models_dir: Path = MODELS_DIR) -> tuple[dict, np.ndarray]:
    """Save the model (kept under models_dir, or to a temp file that is deleted after its size is
    read), then evaluate it on the test split with cnnstudy.evaluation.evaluate."""
    x_test = standard_models.model_input(trained.name, test[0], compare.input_size)
    with tempfile.TemporaryDirectory(prefix="compare-") as scratch:
        target = models_dir / f"{trained.name}.keras" if keep else Path(scratch) / f"{trained.name}.keras"
        save_model(trained.model, target)
        metrics, probabilities = evaluate(trained.model, target, x_test, test[1], class_names,
                                          weight_bytes(trained.model))
    return metrics, probabilities


def model_record(trained: Trained, metrics: dict, compare: CompareParams, keep: bool, seconds: float,
                 device: dict, precision: str) -> dict:
    """One model's entry in metrics/compare.json: the evaluate stage's metrics plus training and recipe."""
    side = standard_models.input_shape(trained.name, compare.input_size)
    summary = trained.result.summary()
    return {
        "description": DESCRIPTIONS[trained.name],
        "input": "x".join(map(str, side)),
        "train_images": trained.train_images,
        **summary,
        "train_accuracy_inference": round(trained.train_accuracy_inference, 4),
        **{k: v for k, v in metrics.items() if k not in ("per_class", "confusion_matrix")},
        "test_accuracy": metrics["accuracy"],
        "test_loss": metrics["loss"],
        "model_file_kept": keep,
        "stage_seconds": round(seconds, 1),
        "optimizer": trained.optimizer,
        "recipe": {k: v for k, v in trained.recipe.as_dict().items() if k != "why"},  # the why: compare.md
        "bn_momentum": standard_models.bn_momenta(trained.model) or None,
        "history": {k: [round(v, 4) for v in vs] for k, vs in trained.result.history.items()},
        "precision": precision,
        **device,
    }


def release(trained: Trained) -> None:
    """Free a model before the next one is built (ResNet50 holds ~300 MB with its optimizer)."""
    from cnnstudy import runtime

    del trained.model
    runtime.clear_session()  # keeps the precision policy and distribution scope for the next model
    gc.collect()


def run_model(name: str, compare: CompareParams, baseline: TrainParams, data, keep: bool, device: dict,
              precision: str, verbose: int = 0, models_dir: Path = MODELS_DIR) -> tuple[dict, np.ndarray]:
    """Train, save and evaluate one standard model; returns its record and test predictions."""
    from cnnstudy import runtime

    start = time.perf_counter()
    runtime.seed_everything(baseline.seed)  # every model starts from the same seed, whatever the order
    trained = train_standard(name, compare, baseline, data.train, data.val, verbose=verbose)
    metrics, probabilities = measure(trained, compare, data.test, data.class_names, keep, models_dir)
    record = model_record(trained, metrics, compare, keep, time.perf_counter() - start, device, precision)
    release(trained)
    return record, probabilities.argmax(axis=1)


def clean_models_dir(kept: list[str], models_dir: Path = MODELS_DIR) -> None:
    """models/compare holds exactly the kept models of this run (and exists, for DVC, even if empty)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    for path in models_dir.glob("*.keras"):
        if path.stem not in kept:
            path.unlink()


# ---------------------------------------------------------------- combined table
def study_rows(summary_json: Path = SUMMARY_JSON, train_images: int | None = None) -> list[dict]:
    """The baseline's and the variants' rows, as the summary stage wrote them."""
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
                     "input": "28x28x1", "train_images": train_images})
    return rows


def standard_row(name: str, record: dict, predicted: np.ndarray, test_labels: np.ndarray,
                 baseline_predictions: tuple[np.ndarray, np.ndarray] | None, class_names: tuple[str, ...],
                 baseline_accuracy: float | None) -> dict:
    row = {"model": name, "kind": DESCRIPTIONS[name], **{k: record.get(k) for k, *_ in COLUMNS if k in record}}
    row.update(test_accuracy=record["test_accuracy"], val_accuracy=record["val_accuracy"],
               mcnemar_p=None, delta_vs_baseline=None)
    if baseline_accuracy is not None:
        row["delta_vs_baseline"] = round((record["test_accuracy"] - baseline_accuracy) * 100, 3)
    if baseline_predictions is not None:
        actual, base_pred = baseline_predictions
        names = np.asarray(class_names)
        if not np.array_equal(actual, names[test_labels]):
            raise DataError(f"{BASELINE_PREDICTIONS} is for other test images than data/prepared; run `dvc repro`")
        row["mcnemar_p"] = mcnemar(actual == base_pred, names[predicted] == actual)["p_value"]
    return row


def read_baseline_predictions(path: Path = BASELINE_PREDICTIONS):
    try:
        return read_predictions(path)
    except OSError:
        raise DataError(f"{path} is missing; run `dvc repro evaluate@{BASELINE}`") from None


def recipe_table(records: dict[str, dict]) -> str:
    header = ("| model | optimizer | peak lr | warm-up epochs | epochs | batch | BN momentum | train images | "
              "train acc (training mode, last epoch) | train acc (inference mode) | val acc | why |")
    lines = [header, "|" + "---|" * 12]
    for name, r in records.items():
        rec = r["recipe"]
        bn = "—" if rec["bn_momentum"] is None else f"{rec['bn_momentum']} (Keras: {default_bn(name)})"
        lines.append(f"| {name} | {r['optimizer']} | {rec['lr']:g} | {rec['warmup_epochs']} | {r['epochs']} | "
                     f"{rec['batch_size']} | {bn} | {r['train_images']:,} | {r['train_accuracy']:.2%} | "
                     f"{r['train_accuracy_inference']:.2%} | {r['val_accuracy']:.2%} | {RECIPES[name].why} |")
    return "\n".join(lines)


def default_bn(name: str) -> str:
    return {"mobilenetv2": "0.999"}.get(name, "0.99")


def history_table(records: dict[str, dict]) -> str:
    """Per epoch: training-mode train accuracy / inference-mode val accuracy, one column per model."""
    names = list(records)
    longest = max((len(r["history"].get("accuracy", [])) for r in records.values()), default=0)
    lines = ["| epoch | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for epoch in range(longest):
        cells = []
        for name in names:
            h = records[name]["history"]
            if epoch < len(h.get("accuracy", [])):
                cells.append(f"{h['accuracy'][epoch]:.3f} / {h['val_accuracy'][epoch]:.3f}")
            else:
                cells.append("")
        lines.append(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    names = [row["model"] for row in rows]
    for key, title, ylabel, stem, fmt, log in BARS:
        values = [float("nan") if row.get(key) is None else float(row[key]) for row in rows]
        fig = charts.bar_figure(names, values, title, ylabel, fmt=fmt)
        if log:
            fig.axes[0].set_yscale("log")
        _mark_standard(fig, names, set(records))
        save_figure(fig, plots_dir / f"{stem}.png")
    histories = {name: r["history"] for name, r in records.items()}
    save_figure(charts.curves_figure(histories, "val_accuracy", "Standard models: validation accuracy per epoch"),
                plots_dir / "curves_val_accuracy.png")


def _mark_standard(fig, names: list[str], standard: set[str]) -> None:
    """Standard models in green, so they stand apart from the study's variants (blue) and baseline (orange)."""
    ax = fig.axes[0]
    for patch, name in zip(ax.patches, names):
        if name in standard:
            patch.set_color("tab:green")
