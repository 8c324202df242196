"""Standard architectures for the `compare` stage, trained from scratch (weights=None).

Every model takes raw pixels 0..255 and rescales them itself, exactly like the
study's CNN (models.py), so cnnstudy.evaluation works on them unchanged.

Input, per model (`model_input` does the data-pipeline part):
- lenet5 sees the study's own 28x28x1 images (its first conv uses 'same' padding,
  which plays the role of LeCun's 32x32 padded input);
- every other model sees `input_size` x `input_size` x 3: the data pipeline resizes
  the 28x28 digits (bilinear, keras.ops.image.resize, so any Keras backend) and
  replicates the grey channel three times; the result stays uint8 0..255.

How each is trained from scratch: cnnstudy.recipes. The BatchNorm momentum a recipe
sets is a property of the saved layers (it survives save/load).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from cnnstudy.params import STANDARD_MODELS

NUM_CLASSES = 10
STUDY_SIDE = 28
# Models that see the study's 28x28x1 images as stored; the others get the resized 3-channel input.
NATIVE_INPUT = ("lenet5",)
# keras.applications refuses inputs smaller than 32x32 when include_top=True and weights=None.
MIN_APPLICATION_SIDE = 32


def input_shape(name: str, input_size: int) -> tuple[int, int, int]:
    return (STUDY_SIDE, STUDY_SIDE, 1) if name in NATIVE_INPUT else (input_size, input_size, 3)


def model_input(name: str, images: np.ndarray, input_size: int, chunk: int = 1024) -> np.ndarray:
    """The data pipeline: (N, 28, 28) uint8 -> what model `name` takes, still uint8 0..255.

    Resizing uses keras.ops, so it runs on whichever backend Keras uses.
    """
    if images.ndim == 3:
        images = images[..., None]
    if name in NATIVE_INPUT:
        return images
    side = images.shape[1]
    out = np.empty((len(images), input_size, input_size, 3), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk]
        if side != input_size:
            part = keras.ops.convert_to_numpy(
                keras.ops.image.resize(part.astype("float32"), (input_size, input_size), interpolation="bilinear"))
            part = np.clip(np.rint(part), 0, 255).astype(np.uint8)
        out[start:start + chunk] = np.repeat(part, 3, axis=-1)
    return out


# ---------------------------------------------------------------- builders
def _lenet5(inputs, num_classes: int = NUM_CLASSES):
    """LeNet-5 as published, with today's softmax output instead of the RBF units.

    C1 6@5x5, S2 2x2 average pooling, C3 16@5x5, S4 2x2 average pooling, C5 120@5x5
    (a convolution that covers the whole 5x5 map), F6 84, output 10; tanh throughout.
    On 28x28 input, C1's 'same' padding gives the 28x28 maps the paper gets from its
    32x32 padded input. C3 is fully connected to S2 (the paper's sparse table is an
    artefact of 1998 compute budgets).
    """
    x = layers.Conv2D(6, 5, padding="same", activation="tanh", name="c1")(inputs)
    x = layers.AveragePooling2D(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation="tanh", name="c3")(x)
    x = layers.AveragePooling2D(2, name="s4")(x)
    x = layers.Conv2D(120, 5, activation="tanh", name="c5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation="tanh", name="f6")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def _alexnet(inputs, seed: int, num_classes: int = NUM_CLASSES):
    """AlexNet (Krizhevsky et al. 2012) in spirit, for 32x32x3.

    Five conv layers then three dense layers, ReLU, overlapping 3x3/2 max-pooling after
    conv 1, 2 and 5, dropout 0.5 before each hidden dense layer. Widths are one of the
    paper's two GPU towers (48-128-192-192-128 filters); the first conv is 5x5 stride 1
    instead of 11x11 stride 4 (a 32-pixel image, not 224), dense layers 1024 instead of
    4096. Local response normalisation is left out (later work found it adds nothing).
    """
    x = layers.Conv2D(48, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)          # 32 -> 15
    x = layers.Conv2D(128, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)          # 15 -> 7
    x = layers.Conv2D(192, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(192, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)          # 7 -> 3
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, seed=seed, name="drop6")(x)
    x = layers.Dense(1024, activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5, seed=seed + 1, name="drop7")(x)
    x = layers.Dense(1024, activation="relu", name="fc7")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


APPLICATIONS = {
    "resnet50": "ResNet50",
    "densenet121": "DenseNet121",
    "vgg16": "VGG16",
    "mobilenetv2": "MobileNetV2",
}


def build_standard(name: str, input_size: int = 32, seed: int = 42,
                   bn_momentum: float | None = None, num_classes: int = NUM_CLASSES) -> keras.Model:
    """Model `name` for the input `model_input(name, ...)` produces, taking pixels 0..255.

    bn_momentum: None keeps each BatchNormalization layer's own momentum (Keras' 0.99,
    MobileNetV2's 0.999); a number sets it on every one (the recipes use 0.9).
    """
    if name not in STANDARD_MODELS:
        raise ValueError(f"unknown standard model {name!r}; known: {', '.join(STANDARD_MODELS)}")
    shape = input_shape(name, input_size)
    if name not in NATIVE_INPUT and input_size < MIN_APPLICATION_SIDE:
        raise ValueError(f"{name} needs an input of at least {MIN_APPLICATION_SIDE}x{MIN_APPLICATION_SIDE}, "
                         f"got {input_size}")
    inputs = keras.Input(shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if name == "lenet5":
        model = keras.Model(inputs, _lenet5(x, num_classes), name=name)
    elif name == "alexnet":
        model = keras.Model(inputs, _alexnet(x, seed, num_classes), name=name)
    else:
        # input_tensor= builds the application on top of our Rescaling, as one flat model whose
        # input is `inputs` (keras.applications traces back to the source Input).
        builder = getattr(keras.applications, APPLICATIONS[name])
        application = builder(include_top=True, weights=None, input_tensor=x, classes=num_classes,
                              classifier_activation=None, name=name)
        # Softmax in float32, as the study's CNN: stable under mixed precision (train.precision).
        outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(application.output)
        # Re-wrapped with a single (not a one-element list) input, like the study's CNN.
        model = keras.Model(inputs, outputs, name=name)
    if bn_momentum is not None:
        set_bn_momentum(model, bn_momentum)
    return model


def set_bn_momentum(model: keras.Model, momentum: float) -> int:
    """Set every BatchNormalization layer's momentum (before the first fit); returns how many."""
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = float(momentum)
            count += 1
    return count


def bn_momenta(model: keras.Model) -> list[float]:
    return sorted({float(layer.momentum) for layer in model._flatten_layers(include_self=False, recursive=True)
                   if isinstance(layer, layers.BatchNormalization)})
