"""Epoch selection by stratified k-fold cross-validation with early stopping.

Each fold trains the baseline from scratch on k-1 folds of train+val and stops
when the held-out fold's loss has not improved for `patience` epochs; the best
epoch is the one with the lowest held-out loss. The chosen epoch count is the
mean of the folds' best epochs, rounded half up.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

from cnnstudy.errors import DataError
from cnnstudy.files import read_json
from cnnstudy.params import KFoldParams, TrainParams


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def select_epochs(cfg: TrainParams, kcfg: KFoldParams, images: np.ndarray, labels: np.ndarray,
                  log: Callable[[str], None] = print) -> dict:
    import keras
    from sklearn.model_selection import StratifiedKFold

    from cnnstudy import runtime
    from cnnstudy.models import build_cnn, compile_model
    from cnnstudy.training import fit

    smallest_class = int(np.bincount(labels).min())
    if smallest_class < kcfg.folds:
        raise DataError(f"kfold.folds is {kcfg.folds} but the smallest class in train+val has only "
                        f"{smallest_class} images; lower kfold.folds or raise prepare.per_class")
    splitter = StratifiedKFold(n_splits=kcfg.folds, shuffle=True, random_state=cfg.seed)
    folds = []
    for number, (train_idx, val_idx) in enumerate(splitter.split(np.zeros(len(labels)), labels), start=1):
        runtime.clear_session()  # keeps the precision policy and distribution scope
        runtime.seed_everything(cfg.seed)  # every fold starts from the same initial weights
        model = compile_model(build_cnn(cfg), cfg)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=kcfg.patience)
        result = fit(model, cfg, (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx]),
                     epochs=kcfg.max_epochs, callbacks=[stop])
        best = int(np.argmin(result.history["val_loss"]))
        folds.append({
            "fold": number,
            "best_epoch": best + 1,
            "epochs_run": result.epochs,
            "train_loss": result.history["loss"][best],
            "train_accuracy": result.history["accuracy"][best],
            "val_loss": result.history["val_loss"][best],
            "val_accuracy": result.history["val_accuracy"][best],
            "val_loss_per_epoch": result.history["val_loss"],
            "train_time_s": round(result.train_time_s, 3),
        })
        log(f"fold {number}/{kcfg.folds}: best epoch {best + 1} of {result.epochs}, "
            f"val loss {result.history['val_loss'][best]:.4f}, val acc {result.history['val_accuracy'][best]:.4f}")
    best_epochs = [f["best_epoch"] for f in folds]
    return {
        "folds": kcfg.folds,
        "max_epochs": kcfg.max_epochs,
        "patience": kcfg.patience,
        "best_epochs": best_epochs,
        "mean_best_epoch": float(np.mean(best_epochs)),
        "chosen_epochs": max(1, round_half_up(float(np.mean(best_epochs)))),
        "mean_val_accuracy": float(np.mean([f["val_accuracy"] for f in folds])),
        "per_fold": folds,
    }


def resolve_epochs(cfg: TrainParams, baseline: TrainParams, kfold_file: str | Path) -> int:
    """A model's epoch count: its own integer, the kfold choice (auto) or k x the baseline's."""
    multiplier = cfg.epoch_multiplier()
    if multiplier is not None:
        return max(1, round_half_up(multiplier * resolve_epochs(baseline, baseline, kfold_file)))
    if cfg.epochs != "auto":
        return int(cfg.epochs)
    try:
        chosen = read_json(kfold_file).get("chosen_epochs")
    except (OSError, ValueError) as exc:
        raise DataError(f"train.epochs is auto but {kfold_file} cannot be read ({exc}); "
                        "run `dvc repro kfold`") from None
    if not isinstance(chosen, int) or chosen < 1:
        raise DataError(f"train.epochs is auto but {kfold_file} holds no chosen epoch count; "
                        "run `dvc repro kfold`")
    return chosen
