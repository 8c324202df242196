"""Epoch selection by stratified k-fold cross-validation with early stopping.

Each fold trains the baseline from scratch on k-1 folds of train+val and stops
when the held-out fold's loss has not improved for `patience` epochs; the best
epoch is the one with the lowest held-out loss. The chosen epoch count is the
mean of the folds' best epochs, rounded half up.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from cnnstudy.epochs import round_half_up
from cnnstudy.errors import DataError
from cnnstudy.params import KFoldParams, TrainParams
from cnnstudy.progress import Clock, capped_warning


def select_epochs(cfg: TrainParams, kcfg: KFoldParams, images: np.ndarray, labels: np.ndarray,
                  log: Callable[[str], None] = print, num_classes: int | None = None) -> dict:
    """num_classes: the model's outputs (default: the labels' highest class + 1)."""
    import keras
    from sklearn.model_selection import StratifiedKFold

    from cnnstudy import runtime
    from cnnstudy.train_cnn import train_cnn

    smallest_class = int(np.bincount(labels).min())
    if smallest_class < kcfg.folds:
        raise DataError(f"kfold.folds is {kcfg.folds} but the smallest class in train+val has only "
                        f"{smallest_class} images; lower kfold.folds or raise prepare.per_class")
    splitter = StratifiedKFold(n_splits=kcfg.folds, shuffle=True, random_state=cfg.seed)
    folds = []
    clock = Clock(kcfg.folds)
    for number, (train_idx, val_idx) in enumerate(splitter.split(np.zeros(len(labels)), labels), start=1):
        runtime.clear_session()  # keeps the precision policy and distribution scope
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=kcfg.patience)
        # train_cnn seeds first: every fold starts from the same initial weights.
        _, result = train_cnn(cfg, (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx]),
                              kcfg.max_epochs, callbacks=[stop], name=f"fold{number}",
                              num_classes=num_classes or int(labels.max()) + 1)
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
            f"val loss {result.history['val_loss'][best]:.4f}, val acc {result.history['val_accuracy'][best]:.4f}; "
            f"{clock.status(number)}")
    best_epochs = [f["best_epoch"] for f in folds]
    warning = capped_warning(best_epochs, kcfg.max_epochs)
    if warning:
        log(warning)
    return {
        "folds": kcfg.folds,
        "max_epochs": kcfg.max_epochs,
        "patience": kcfg.patience,
        "best_epochs": best_epochs,
        "mean_best_epoch": float(np.mean(best_epochs)),
        "chosen_epochs": max(1, round_half_up(float(np.mean(best_epochs)))),
        "mean_val_accuracy": float(np.mean([f["val_accuracy"] for f in folds])),
        "capped": warning is not None,
        "per_fold": folds,
    }
