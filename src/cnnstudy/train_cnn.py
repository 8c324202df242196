"""The one sequence that trains the study's CNN: seed, build, compile, fit.

The train and kfold stages, the retrain stage (the baseline with other seeds) and the
benchmark's project path all go through `new_cnn`, so the random draws happen in the same
order everywhere and one seed gives one set of weights. The caller has selected the device
and precision (cnnstudy.runtime) and chosen the epochs (cnnstudy.epochs, or kfold's maximum).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from cnnstudy import runtime
from cnnstudy.models import NUM_CLASSES, build_cnn
from cnnstudy.params import TrainParams
from cnnstudy.training import TrainResult, compile_model, fit


def new_cnn(cfg: TrainParams, name: str = "cnn", num_classes: int = NUM_CLASSES) -> keras.Model:
    """A freshly initialised, compiled CNN: the seed comes first, so the weights depend on cfg.seed alone."""
    runtime.seed_everything(cfg.seed)
    return compile_model(build_cnn(cfg, name=name, num_classes=num_classes), cfg.optimizer, cfg.lr)


def train_cnn(cfg: TrainParams, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray] | None,
              epochs: int, name: str = "cnn", callbacks: list | None = None, log_dir: str | Path | None = None,
              verbose: int = 0, num_classes: int = NUM_CLASSES) -> tuple[keras.Model, TrainResult]:
    model = new_cnn(cfg, name, num_classes)
    return model, fit(model, train, val, epochs, cfg.batch_size, callbacks=callbacks, log_dir=log_dir,
                      verbose=verbose)

