"""How each standard architecture of the `compare` stage is trained from scratch, and what it is.

A `Recipe` per architecture: peak learning rate, linear warm-up, cosine decay to 0, epochs,
batch, BatchNorm momentum. The keras.applications models are built with BatchNorm momentum
0.99 (MobileNetV2: 0.999): the moving averages that inference uses then still hold mostly
their initial values after the few hundred steps a CPU run affords, so the model is at chance
in inference mode while its training accuracy rises. The recipes lower the momentum.

Plain data, no Keras: the compare_table stage reads it without loading a backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cnnstudy.params import STANDARD_MODELS


@dataclass(frozen=True)
class Recipe:
    """How one architecture is trained from scratch in this study."""

    lr: float                 # peak learning rate of the baseline's optimizer (train.optimizer)
    warmup_epochs: int        # linear warm-up from 0 to lr, then cosine decay to 0 by the last step
    epochs: int               # compare.epochs, when set, overrides this
    batch_size: int
    bn_momentum: float | None  # BatchNormalization momentum; None: the model has no BatchNorm
    why: str                  # one line: what the recipe fixes

    def as_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    "lenet5": Recipe(lr=3e-3, warmup_epochs=0, epochs=12, batch_size=64, bn_momentum=None,
                     why="no BatchNorm; tanh/avg-pool learns slowly: Adam 1e-3 for 10 epochs reached only "
                         "91% val, a 3x higher peak lr and batch 64 reach 96.6% by epoch 10"),
    "resnet50": Recipe(lr=1e-3, warmup_epochs=1, epochs=5, batch_size=64, bn_momentum=0.9,
                       why="BN momentum 0.99 -> 0.9: with 0.99 inference-mode val accuracy is 10% after 2 epochs "
                           "while training-mode accuracy is 85%; warm-up + cosine decay to 0 lets the moving "
                           "statistics settle on the final weights: 91.9% val after 5 epochs"),
    "densenet121": Recipe(lr=1e-3, warmup_epochs=1, epochs=5, batch_size=64, bn_momentum=0.9,
                          why="as resnet50: BN momentum 0.99 -> 0.9, warm-up + cosine decay: 97.3% val after 5 "
                              "epochs"),
    "vgg16": Recipe(lr=1e-4, warmup_epochs=1, epochs=6, batch_size=64, bn_momentum=None,
                    why="no BatchNorm, 13 plain conv layers: a peak lr of 3e-4 stays at chance (10% val after 4 "
                        "epochs on 1,200 images), 1e-4 with warm-up learns (65% after 4 epochs on 1,200)"),
    "alexnet": Recipe(lr=5e-4, warmup_epochs=1, epochs=8, batch_size=128, bn_momentum=None,
                      why="no BatchNorm (the paper's LRN is omitted), ReLU + dropout 0.5, peak lr 5e-4 with "
                          "warm-up: 97.4% val after 8 epochs"),
    "mobilenetv2": Recipe(lr=2e-3, warmup_epochs=1, epochs=8, batch_size=64, bn_momentum=0.9,
                          why="BN momentum 0.999 -> 0.9 (Keras' MobileNetV2 lags worst of all), warm-up + cosine "
                              "decay: 91.0% val after 8 epochs"),
}
assert set(RECIPES) == set(STANDARD_MODELS), "every standard model needs a recipe"

DESCRIPTIONS = {
    "lenet5": "LeNet-5 (LeCun et al. 1998): tanh, avg-pool, 6-16-120-84-10",
    "resnet50": "ResNet50 (keras.applications, from scratch)",
    "densenet121": "DenseNet121 (keras.applications, from scratch)",
    "vgg16": "VGG16 (keras.applications, from scratch)",
    "alexnet": "AlexNet, one tower of the paper, sized for 32x32",
    "mobilenetv2": "MobileNetV2 (keras.applications, from scratch)",
}
