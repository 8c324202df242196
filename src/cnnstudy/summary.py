"""The comparison of every model against the baseline: tables, significance, curves."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from cnnstudy.conclusions import SIGNIFICANCE, holm
from cnnstudy.errors import DataError
from cnnstudy.files import interpreting, read_json
from cnnstudy.params import BASELINE, TrainParams
from cnnstudy.predictions import predictions_file, read_predictions
from cnnstudy.tables import grid

# (key in the row, column title, format) for the Markdown comparison table.
COLUMNS = (
    ("model", "model", "{}"),
    ("change", "change vs baseline", "{}"),
    ("epochs", "epochs", "{}"),
    ("train_time_s", "train time (s)", "{:.1f}"),
    ("train_accuracy", "train acc", "{:.2%}"),
    ("val_accuracy", "val acc", "{:.2%}"),
    ("test_time_s", "test time (s)", "{:.3f}"),
    ("test_accuracy", "test acc", "{:.2%}"),
    ("delta_vs_baseline", "Δ test acc (points)", "{:+.2f}"),
    ("mcnemar_p", "McNemar p", "{:.2g}"),
    ("mcnemar_p_holm", "Holm p", "{:.2g}"),
    ("f1_macro", "macro F1", "{:.4f}"),
    ("parameters", "parameters", "{:,}"),
    ("model_file_mb", "file (MB)", "{:.2f}"),
    ("weight_mb", "weights (MB)", "{:.2f}"),
)
RETRAINED_JSON = Path("metrics/retrained.json")


def describe_change(cfg: TrainParams, baseline: TrainParams) -> str:
    changed = [f"{k}={_fmt(v)}" for k, v in asdict(cfg).items() if asdict(baseline)[k] != v]
    return ", ".join(changed) or "—"


def _fmt(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test on paired per-image correctness of two models on the same images."""
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(binomtest(only_a, discordant, 0.5).pvalue)
    return {"only_baseline_right": only_a, "only_model_right": only_b, "p_value": p}


def load_rows(models: dict[str, TrainParams], metrics_dir: Path = Path("metrics")) -> list[dict]:
    baseline = models[BASELINE]
    base = read_predictions(predictions_file(BASELINE, metrics_dir / "eval"), BASELINE)
    rows = []
    for name, cfg in models.items():
        try:
            trained = read_json(metrics_dir / "train" / f"{name}.json")
            evaluated = read_json(metrics_dir / "eval" / f"{name}.json")
        except OSError as exc:
            raise DataError(f"results of model {name!r} are missing ({exc.filename}); "
                            "run `dvc repro evaluate`") from None
        answers = read_predictions(predictions_file(name, metrics_dir / "eval"), name)
        if not np.array_equal(answers.labels, base.labels):
            raise DataError(f"{name} and {BASELINE} were evaluated on different test images; run `dvc repro`")
        test = mcnemar(base.correct, answers.correct)
        results = f"metrics/train/{name}.json or metrics/eval/{name}.json"
        with interpreting(results, f"run `dvc repro --force train@{name} evaluate`"):
            rows.append(_row(name, cfg, baseline, trained, evaluated, test))
    base_acc = rows[0]["test_accuracy"] if rows and rows[0]["model"] == BASELINE else None
    variants = [row for row in rows if row["mcnemar_p"] is not None]
    # The variants' tests against the one baseline are a family: conclusions use Holm's p.
    for row, corrected in zip(variants, holm([row["mcnemar_p"] for row in variants])):
        row["mcnemar_p_holm"] = corrected
    for row in rows:
        row["delta_vs_baseline"] = None if base_acc is None else round((row["test_accuracy"] - base_acc) * 100, 3)
        row.setdefault("mcnemar_p_holm", None)
        row["significant"] = row["mcnemar_p_holm"] is not None and row["mcnemar_p_holm"] < SIGNIFICANCE
    return rows


def read_retrained(path: Path = RETRAINED_JSON) -> dict | None:
    """The baseline re-trained with other seeds (the retrain stage's accuracies); None if absent."""
    if not Path(path).exists():
        return None
    data = read_json(path)
    with interpreting(path, "run `dvc repro --force retrain`"):
        return {name: {"test_accuracy": float(r["test_accuracy"]), "val_accuracy": float(r["val_accuracy"])}
                for name, r in data.items()}


def headline(row: dict) -> dict:
    """A row's figures under the names of cnnstudy.evaluation.HEADLINE (metrics/models.json)."""
    return {"accuracy": row["test_accuracy"], "loss": row["test_loss"], "f1_macro": row["f1_macro"],
            "train_time_s": row["train_time_s"], "model_file_mb": row["model_file_mb"]}


def _row(name: str, cfg: TrainParams, baseline: TrainParams, trained: dict, evaluated: dict, test: dict) -> dict:
    return {
        "model": name,
        "change": describe_change(cfg, baseline),
        "epochs": trained["epochs"],
        "train_time_s": trained["train_time_s"],
        "first_epoch_s": trained["first_epoch_s"],
        "images_per_s": trained["images_per_s"],
        "train_accuracy": trained["train_accuracy"],
        "val_accuracy": trained["val_accuracy"],
        "test_images": evaluated["test_images"],
        "test_time_s": evaluated["test_time_s"],
        "per_image_ms": evaluated["per_image_ms"],
        "test_accuracy": evaluated["accuracy"],
        "test_loss": evaluated["loss"],
        "f1_macro": evaluated["f1_macro"],
        "parameters": evaluated["parameters"],
        "model_file_mb": evaluated["model_file_mb"],
        "weight_mb": evaluated["weight_mb"],
        "device": trained.get("device"),
        "backend": trained.get("backend"),
        "precision": trained.get("precision"),
        "mcnemar_p": test["p_value"] if name != BASELINE else None,
        "mcnemar": test if name != BASELINE else None,
    }


def config_table(models: dict[str, TrainParams]) -> str:
    """Every model's hyperparameters (the report's "Table 2"); the changed cell in bold."""
    keys = ["optimizer", "lr", "filters", "kernel_size", "dense", "dropout", "batch_size", "epochs",
            "batch_norm", "augment"]
    baseline = asdict(models[BASELINE])
    # and any other key some model changes (momentum, loss, activation, ...)
    keys += [k for k in baseline if k not in keys and any(asdict(cfg)[k] != baseline[k] for cfg in models.values())]
    rows = []
    for name, cfg in models.items():
        values = asdict(cfg)
        rows.append([name, *(f"**{_fmt(values[k])}**" if values[k] != baseline[k] else _fmt(values[k]) for k in keys)])
    return grid(["model", *keys], rows)


def read_history(log_dir: Path) -> dict[str, list[float]]:
    """Per-epoch metrics from a dvclive directory, keyed like Keras' history (loss, val_loss, ...)."""
    history: dict[str, list[float]] = {}
    for split, prefix in (("train", ""), ("val", "val_")):
        for tsv in sorted((log_dir / "plots" / "metrics" / split).glob("*.tsv")):
            with interpreting(tsv, f"run `dvc repro --force train@{log_dir.name}`"), \
                    open(tsv, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f, delimiter="\t"))
                history[prefix + tsv.stem] = [float(r[tsv.stem]) for r in rows]
    return history
