"""Test-split evaluation of one trained model: quality, speed and size."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

from cnnstudy.training import as_model_input

# Inference batch: large batches amortise per-call overhead; 512 fits any GPU and CPU cache well.
INFERENCE_BATCH = 512
LATENCY_REPEATS = 20


def predict_proba(model, images: np.ndarray, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
    """Softmax probabilities in inference mode (dropout and augmentation off)."""
    x = as_model_input(images)
    out = [np.asarray(model.predict_on_batch(x[i:i + batch_size]), dtype=np.float64)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.outputs[0].shape[-1]))


def timed_predictions(model, images: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Probabilities, seconds for the whole split (after a warm-up batch), and the median
    latency of a single image in milliseconds."""
    predict_proba(model, images[:INFERENCE_BATCH])  # warm-up: tracing and memory allocation
    start = time.perf_counter()
    probabilities = predict_proba(model, images)
    test_time = time.perf_counter() - start
    single = as_model_input(images[:1])
    latencies = []
    for _ in range(LATENCY_REPEATS):
        t0 = time.perf_counter()
        model.predict_on_batch(single)
        latencies.append(time.perf_counter() - t0)
    return probabilities, test_time, float(np.median(latencies) * 1000)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def quality_metrics(probabilities: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> dict:
    predicted = probabilities.argmax(axis=1)
    classes = list(range(len(class_names)))
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                               average="macro", zero_division=0)
    report = classification_report(labels, predicted, labels=classes, target_names=list(class_names),
                                   output_dict=True, zero_division=0)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": cross_entropy(probabilities, labels),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "per_class": {name: {k: float(v) for k, v in report[name].items()} for name in class_names},
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
    }


def evaluate(model, model_file: Path, images: np.ndarray, labels: np.ndarray,
             class_names: tuple[str, ...], weight_bytes: int) -> tuple[dict, np.ndarray]:
    probabilities, test_time, latency_ms = timed_predictions(model, images)
    metrics = {
        **quality_metrics(probabilities, labels, class_names),
        "test_images": int(len(labels)),
        "test_time_s": round(test_time, 4),
        "per_image_ms": round(test_time / max(len(labels), 1) * 1000, 4),
        "single_image_latency_ms": round(latency_ms, 3),
        "inference_batch": INFERENCE_BATCH,
        "parameters": int(model.count_params()),
        "model_file_mb": round(model_file.stat().st_size / 1e6, 3),
        "weight_mb": round(weight_bytes / 1e6, 3),
    }
    return metrics, probabilities


# A model's headline figures: what DVC shows as its metrics (metrics/models.json for the study's
# models, metrics/compare.json for the standard ones), keyed by model so that `dvc exp show`
# names a column "lr_high.accuracy", not the whole path of a file per model.
HEADLINE = ("accuracy", "loss", "f1_macro", "train_time_s", "model_file_mb")


def headline(metrics: dict) -> dict:
    """The headline figures of one model's evaluate metrics (with its train_time_s)."""
    return {key: metrics[key] for key in HEADLINE}


def confusion_counts(matrix, class_names: tuple[str, ...]) -> list[dict]:
    """Rows for the confusion_counts plot template: one per (actual, predicted) pair, zeros
    included, so DVC shows every class even when a model never predicts it."""
    return [{"actual": class_names[a], "predicted": class_names[p], "count": int(matrix[a][p])}
            for a in range(len(class_names)) for p in range(len(class_names))]
