"""The one sequence that trains the study's CNN: seed, build, compile, fit.

The train and kfold stages, the retrain stage (the baseline with other seeds) and the
benchmark's project path all go through `new_cnn`, so the random draws happen in the same
order everywhere and one seed gives one set of weights. The caller has selected the device
and precision (cnnstudy.runtime) and chosen the epochs (cnnstudy.epochs, or kfold's maximum).
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from cnnstudy import runtime
from cnnstudy.models import NUM_CLASSES, build_cnn
from cnnstudy.params import TrainParams
from cnnstudy.training import TrainResult, compile_model, fit


# lr_schedule: plateau halves the learning rate after this many epochs without a better loss;
# cosine warms up linearly over the first epoch (when there are 3 or more), then decays to 0.
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 2


def new_cnn(cfg: TrainParams, name: str = "cnn", steps: tuple[int, int] | None = None,
            num_classes: int = NUM_CLASSES) -> keras.Model:
    """A freshly initialised, compiled CNN: the seed comes first, so the weights depend on cfg.seed alone.
    `steps`: (steps per epoch, epochs) of the coming fit, which a cosine schedule needs."""
    runtime.seed_everything(cfg.seed)
    return compile_model(build_cnn(cfg, name=name, num_classes=num_classes), cfg.optimizer, learning_rate(cfg, steps), loss=cfg.loss,
                         momentum=cfg.momentum, nesterov=cfg.nesterov)


def learning_rate(cfg: TrainParams, steps: tuple[int, int] | None = None):
    """cfg.lr, or for lr_schedule cosine a keras schedule over the fit's `steps` (per epoch, epochs)."""
    if cfg.lr_schedule != "cosine":
        return cfg.lr
    if steps is None:
        raise ValueError("a cosine schedule needs the number of training steps")
    per_epoch, epochs = steps
    warmup = per_epoch if epochs >= 3 else 0
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else cfg.lr, decay_steps=max(1, per_epoch * epochs - warmup),
        warmup_target=cfg.lr if warmup else None, warmup_steps=warmup)


def schedule_callbacks(cfg: TrainParams, validated: bool) -> list:
    """Reduce-on-plateau and early stopping, on validation loss (training loss when there is no
    validation split, as in a refit on train + validation)."""
    monitor = "val_loss" if validated else "loss"
    callbacks = []
    if cfg.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=PLATEAU_FACTOR,
                                                           patience=PLATEAU_PATIENCE))
    if cfg.early_stopping is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=cfg.early_stopping,
                                                       restore_best_weights=True))
    return callbacks


def train_cnn(cfg: TrainParams, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray] | None,
              epochs: int, name: str = "cnn", callbacks: list | None = None, log_dir: str | Path | None = None,
              verbose: int = 0, num_classes: int = NUM_CLASSES) -> tuple[keras.Model, TrainResult]:
    model = new_cnn(cfg, name, steps=(math.ceil(len(train[1]) / cfg.batch_size), epochs),
                    num_classes=num_classes)
    callbacks = [*schedule_callbacks(cfg, val is not None), *(callbacks or [])]
    return model, fit(model, train, val, epochs, cfg.batch_size, callbacks=callbacks, log_dir=log_dir,
                      verbose=verbose)
