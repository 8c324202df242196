"""The study's CNN, built from a TrainParams, with the Keras 3 API only (training: train_cnn.py).

The model takes raw pixel values (0..255, uint8 or float) and rescales them
itself, so training data can stay uint8 (4x less memory) and any caller, the
outlier stage included, feeds images exactly as stored.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from cnnstudy.params import TrainParams, check_feature_maps

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
# Augmentation: up to 10% shifts, 10 degrees of rotation and 10% zoom, as MNIST digits vary
# in position, slant and size.
SHIFT_FRACTION = 0.1
ROTATION_FRACTION = 10 / 360
ZOOM_FRACTION = 0.1
# Keras' default BN momentum (0.99) keeps 0.99**steps of the initial variance (1.0) in
# the moving average: after 11 epochs of 29 steps that residue is 4%, about 20x the
# true variance of these activations, and inference-mode accuracy collapsed to 13%
# while training-mode accuracy was 97%. At 0.9 the residue is gone after ~50 steps.
BN_MOMENTUM = 0.9


def build_cnn(cfg: TrainParams, name: str = "cnn", num_classes: int = NUM_CLASSES) -> keras.Model:
    """Conv2D(+BN)+activation+MaxPool per entry of cfg.filters, then Dense+Dropout per entry of
    cfg.dense, then softmax. The baseline's layers (and so its weights) are those of one dense layer."""
    check_feature_maps(cfg)
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if cfg.augment:
        # Active in training only; seeded so two runs see the same augmented images.
        x = layers.RandomTranslation(SHIFT_FRACTION, SHIFT_FRACTION, fill_mode="constant",
                                     seed=cfg.seed, name="random_shift")(x)
        x = layers.RandomRotation(ROTATION_FRACTION, fill_mode="constant", seed=cfg.seed + 1,
                                  name="random_rotation")(x)
        x = layers.RandomZoom(ZOOM_FRACTION, fill_mode="constant", seed=cfg.seed + 1000, name="random_zoom")(x)
    for i, filters in enumerate(cfg.filters, start=1):
        x = layers.Conv2D(filters, cfg.kernel_size, padding="same", name=f"conv{i}")(x)
        if cfg.batch_norm:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
        x = layers.Activation(cfg.activation, name=f"{cfg.activation}{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(cfg.dense):
        suffix = "" if i == 0 else str(i + 1)  # the first keeps the names outliers' MC dropout looks for
        x = layers.Dense(units, activation=cfg.activation, name=f"dense{suffix}")(x)
        x = layers.Dropout(cfg.dropout, seed=cfg.seed + 2 + i, name=f"dropout{suffix}")(x)
    # float32 output keeps softmax and the loss stable under mixed precision.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def weight_bytes(model: keras.Model) -> int:
    """Bytes of the parameters alone, without optimizer state."""
    return int(sum(math.prod(w.shape) * np.dtype(w.dtype).itemsize for w in model.weights))
