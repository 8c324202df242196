"""The `compare` stage's library: training standard architectures to set beside the study's
CNNs (the table and charts are compare_table.py's, a stage of its own that trains nothing).

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

from cnnstudy import standard_models
from cnnstudy.evaluation import evaluate, predict_proba
from cnnstudy.model_files import save_model
from cnnstudy.models import weight_bytes
from cnnstudy.params import CompareParams, TrainParams
from cnnstudy.recipes import DESCRIPTIONS, RECIPES, Recipe
from cnnstudy.training import TrainResult, compile_model, fit

MODELS_DIR = Path("models/compare")
COMPARE_JSON = Path("metrics/compare.json")  # the headline figures per model (a DVC metric)
DETAILS_JSON = Path("metrics/compare/details.json")  # every model's full record
# Test-split predictions per standard model, for McNemar's test in the compare_table stage.
PREDICTIONS_JSON = Path("metrics/compare/predictions.json")

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
                   verbose: int = 0, num_classes: int = standard_models.NUM_CLASSES) -> Trained:
    """Build `name` and train it from scratch under its recipe; `train`/`val` are (N, 28, 28) uint8 + labels."""
    recipe = resolve_recipe(name, compare)
    x_train, y_train = train_subset(*train, compare.max_train_images, baseline.seed)
    x_train = standard_models.model_input(name, x_train, compare.input_size)
    x_val = standard_models.model_input(name, val[0], compare.input_size)
    model = standard_models.build_standard(name, compare.input_size, seed=baseline.seed,
                                           bn_momentum=recipe.bn_momentum, num_classes=num_classes)
    steps = -(-len(y_train) // recipe.batch_size)
    compile_model(model, baseline.optimizer, learning_rate(recipe, steps, recipe.epochs))
    result = fit(model, (x_train, y_train), (x_val, val[1]), recipe.epochs, recipe.batch_size, verbose=verbose)
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
    trained = train_standard(name, compare, baseline, data.train, data.val, verbose=verbose,
                             num_classes=data.num_classes)
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
