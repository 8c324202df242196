"""The tuned final model: the sweep's best configuration, its epochs chosen on validation,
refit on train + validation (as the k-fold studies do for their final model).

The test split is never read here: the sweep ranked its trials on validation, and the number
of epochs comes from a validation curve (the best sweep trial's, or a fit of its own) or is
fixed in params (tuned.select). The evaluate stage then looks at test once, like for every
variant.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudy.errors import DataError
from cnnstudy.files import read_stage_json
from cnnstudy.params import TUNED, ParamsError, TrainParams

NAME = TUNED


def best_config(sweep_summary: Any, train: TrainParams, source: str) -> TrainParams:
    """`train` with the sweep's best trial's values (metrics/sweep_best.json's best.config) applied."""
    best = sweep_summary.get("best") if isinstance(sweep_summary, dict) else None
    config = best.get("config") if isinstance(best, dict) else None
    if not isinstance(config, dict):
        raise DataError(f"{source}: has no best.config (a sweep with no finished trial?); run `dvc repro sweep`")
    return apply_config(config, train, source, "best.config", "run `dvc repro sweep`")


def apply_config(config: dict, train: TrainParams, source: str, key: str, remedy: str) -> TrainParams:
    """`train` with `config` (keys of train -> values, found at `key` in `source`) applied, each
    value checked by train's own rules; an error names source and key and ends with `remedy`."""
    cfg = train
    for name, value in config.items():
        if name not in (f.name for f in dataclasses.fields(TrainParams)):
            raise DataError(f"{source}: {key}.{name} is not a key of train; {remedy}")
        try:
            cfg = cfg.with_override(f"{key}.{name}", name, value)
        except ParamsError as exc:
            raise DataError(f"{source}: {exc}; {remedy}") from None
    return cfg


SMOOTHING = 3  # epochs in the window best_epoch averages validation loss over


def best_epoch(history: dict[str, list[float]]) -> int:
    """The epoch (1-based) of lowest validation loss averaged over a window of SMOOTHING epochs
    centred on it (shorter at the ends); ties go to the earliest, a NaN loss never wins.

    One epoch's loss on the validation split is noisy: in a default run the raw minimum was a
    one-epoch dip at epoch 15 of a 30-epoch cosine fit (0.0497, between 0.0758 and 0.0678),
    while the loss settled at 0.050 from epoch 18 on; the window picks the settled stretch."""
    losses = np.asarray(history.get("val_loss") or [], dtype=float)
    if not losses.size:
        raise ValueError("a validation fit without val_loss: cannot choose epochs")
    losses = np.where(np.isfinite(losses), losses, np.inf)
    window = np.ones(min(SMOOTHING, losses.size))
    sums = np.convolve(losses, window, mode="same")
    counts = np.convolve(np.ones_like(losses), window, mode="same")
    return int(np.argmin(sums / counts)) + 1


def sweep_history(sweep_summary: Any, source: str) -> dict[str, list[float]]:
    """The best sweep trial's per-epoch validation loss and accuracy (metrics/sweep_best.json's
    best.val_loss_curve and best.val_accuracy_curve): that trial trained this very configuration
    on the train split, so its curve chooses the epochs without another fit."""
    best = sweep_summary.get("best") if isinstance(sweep_summary, dict) else None
    curves = {name: best.get(f"{name}_curve") if isinstance(best, dict) else None
              for name in ("val_loss", "val_accuracy")}
    if not all(isinstance(curve, list) and curve for curve in curves.values()):
        raise DataError(f"{source}: best has no val_loss_curve and val_accuracy_curve (a sweep from before "
                        "trials recorded them?); run `dvc repro --force sweep`, or set tuned.select: validation")
    return curves


def train_plus_val(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]):
    """One split of train followed by validation (fit shuffles every epoch)."""
    return np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]])


def config_changes(cfg: TrainParams, baseline: TrainParams) -> dict:
    """The keys where the tuned configuration differs from train, as plain JSON values."""
    tuned, base = dataclasses.asdict(cfg), dataclasses.asdict(baseline)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in tuned.items() if v != base[k]}


def study_models(models: dict[str, TrainParams], train: TrainParams,
                 trained_dir: Path = Path("metrics/train")) -> dict[str, TrainParams]:
    """`models` (baseline + variants) and, once the tuned stage has run, the tuned model with its
    configuration (train plus the changes metrics/train/tuned.json records): the tables, McNemar
    against the baseline and the outlier study then cover it like any variant."""
    path = Path(trained_dir) / f"{NAME}.json"
    if not path.is_file():
        return dict(models)
    record = read_stage_json(path, "run `dvc repro tuned`")
    changes = record.get("config") if isinstance(record, dict) else None
    if not isinstance(changes, dict):
        raise DataError(f"{path}: has no 'config' mapping; run `dvc repro --force tuned`")
    return {**models, NAME: apply_config(changes, train, str(path), "config", "run `dvc repro --force tuned`")}
