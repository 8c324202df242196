"""The shape of params.yaml: one frozen pydantic dataclass per section, field by field.

Strict types (`lr: true` is not a number), extra="forbid" and one-line errors naming the dotted
key (validation.py). Rules that span sections or need the baseline (variants, feature maps, sizes
that cannot train) are params.py's; params.py is also where callers import these names from.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from cnnstudy import sizes, sweep_params
from cnnstudy.errors import StudyError
from cnnstudy.validation import Bool, Float, Int, NoneIsEmpty, Positive, Seed, Text, named_keys
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamax", "adagrad", "adadelta", "nadam")
LOSSES = ("crossentropy", "mse", "mae")  # on the softmax outputs; accuracy is always reported
ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid")
LR_SCHEDULES = ("constant", "plateau", "cosine")
DEVICES = ("auto", "cpu", "gpu")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STANDARD_MODELS = ("lenet5", "resnet50", "densenet121", "vgg16", "alexnet", "mobilenetv2")
BASELINE = "baseline"
TUNED = "tuned"  # the sweep's best config refit (stage tuned): not a variant name
INPUT_SIDE = sizes.INPUT_SIDE
# A variant's `epochs` may be "2x": a multiple of the baseline's resolved epochs.
EPOCH_MULTIPLIER = re.compile(r"^(\d+(?:\.\d+)?)x$")
VARIANT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class ParamsError(StudyError, ValueError):
    """params.yaml is not what the pipeline expects; the message names the key."""


def _epochs(value: Any) -> int | str:
    if isinstance(value, str):
        if value == "auto" or (EPOCH_MULTIPLIER.match(value) and float(value[:-1]) > 0):
            return value
        raise ValueError("expected a positive integer, 'auto' or a multiple of the baseline's epochs "
                         f"such as '2x' (variants only); got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"expected an integer >= 1, got {value}")
    return value


def _classes(value: Any) -> str | tuple:
    """'all', or a list of at least two distinct classes (indices or names; checked against the
    data set's class names by the prepare stage, which alone knows them)."""
    if value == "all":
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected 'all' or a list of classes, got {value!r}")
    for entry in value:
        if isinstance(entry, bool) or not ((isinstance(entry, int) and entry >= 0) or (isinstance(entry, str) and entry)):
            raise ValueError(f"expected class indices (>= 0) or class names, got {entry!r}")
    if len(value) < 2 or len(set(value)) != len(value):
        raise ValueError(f"expected at least two distinct classes, got {list(value)}")
    return tuple(value)


def _per_class(value: Any) -> int | None:
    if value is None or value == "all":
        return None  # None means "all"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer or 'all', got {value!r}")
    return value


CONFIG = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=CONFIG)
class FetchParams:
    dataset: Text
    mirrors: Annotated[tuple[Text, ...], NoneIsEmpty]


@dataclass(frozen=True, config=CONFIG)
class SplitParams:
    train: Annotated[Float, Field(gt=0.0, lt=1.0)]
    val: Annotated[Float, Field(gt=0.0, lt=1.0)]
    test: Annotated[Float, Field(gt=0.0, lt=1.0)]

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitParams:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must sum to 1, got {total:.6g}")
        return self


@dataclass(frozen=True, config=CONFIG)
class PrepareParams:
    pool: Bool
    per_class: Annotated[Union[int, None], BeforeValidator(_per_class)]  # None means "all"
    split: SplitParams
    seed: Seed
    classes: Annotated[Union[str, tuple], BeforeValidator(_classes)] = "all"  # "all" or a subset, renumbered 0..k-1


@dataclass(frozen=True, config=CONFIG)
class KFoldParams:
    folds: Annotated[Int, Field(ge=2)]
    max_epochs: Positive
    patience: Positive


@dataclass(frozen=True, config=CONFIG)
class TrainParams:
    """The baseline model's configuration; a variant is this with some keys changed."""

    optimizer: Literal[OPTIMIZERS]
    lr: Annotated[Float, Field(gt=0.0, le=10.0)]
    momentum: Annotated[Float, Field(ge=0.0, lt=1.0)]  # sgd and rmsprop; the others have none
    nesterov: Bool                                     # sgd only
    loss: Literal[LOSSES]
    filters: Annotated[tuple[Positive, ...], Field(min_length=1)]
    kernel_size: Positive
    activation: Literal[ACTIVATIONS]                   # conv blocks and dense layers
    dense: Annotated[tuple[Positive, ...], Field(min_length=1)]  # widths of the dense layers, in order
    dropout: Annotated[Float, Field(ge=0.0, lt=1.0)]
    batch_size: Positive
    epochs: Annotated[Union[int, str], BeforeValidator(_epochs)]  # int, "auto" or, in a variant, "<k>x"
    lr_schedule: Literal[LR_SCHEDULES]
    early_stopping: Union[Positive, None]              # patience in epochs on validation loss; None: off
    batch_norm: Bool
    augment: Bool
    seed: Seed
    device: Literal[DEVICES]
    precision: Literal[PRECISIONS]

    def with_override(self, key: str, name: str, value: Any) -> TrainParams:
        with named_keys(ParamsError, key.rsplit(".", 1)[0]):
            return dataclasses.replace(self, **{name: value})

    def epoch_multiplier(self) -> float | None:
        match = EPOCH_MULTIPLIER.match(self.epochs) if isinstance(self.epochs, str) else None
        return float(match.group(1)) if match else None


@dataclass(frozen=True, config=CONFIG)
class OutliersParams:
    dir: Text
    repeats: Annotated[Int, Field(ge=2, le=sizes.MAX_REPEATS)]
    seeds: tuple[Seed, ...]


@dataclass(frozen=True, config=CONFIG)
class CompareParams:
    models: tuple[Literal[STANDARD_MODELS], ...]
    epochs: Union[Positive, None]            # None: each architecture's own recipe
    input_size: Annotated[Int, Field(ge=32, le=sizes.MAX_INPUT_SIZE)]  # side the keras.applications models see
    max_train_images: Union[Annotated[Int, Field(ge=10)], None]  # None: the whole train split
    # .keras files kept in models/compare; a name not in `models` is allowed (nothing to keep).
    keep_models: Annotated[tuple[Literal[STANDARD_MODELS], ...], NoneIsEmpty]

    @field_validator("models")
    @classmethod
    def _no_repeats(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(models)) != len(models):
            raise ValueError(f"lists a model twice: {list(models)}")
        return models


@dataclass(frozen=True, config=CONFIG)
class TunedParams:
    """The tuned final model (stage tuned): the sweep's best config, refit on train + validation."""

    # sweep: epochs from the best trial's validation curve; validation: from a fit of `epochs`
    select: Literal["sweep", "validation", "fixed"]
    epochs: Positive


@dataclass(frozen=True, config=CONFIG)
class ParamsFile:
    """params.yaml's shape; `variants` is checked against `train` afterwards (parse_variants)."""

    fetch: FetchParams
    prepare: PrepareParams
    kfold: KFoldParams
    train: TrainParams
    variants: dict
    outliers: OutliersParams
    compare: CompareParams
    tuned: TunedParams
    sweep: sweep_params.SweepParams  # its space is checked against train afterwards (sweep_params.resolve)


SECTIONS = tuple(f.name for f in dataclasses.fields(ParamsFile))


@dataclasses.dataclass(frozen=True)
class Params:
    """The validated view every stage gets from params.load_params."""

    fetch: FetchParams
    prepare: PrepareParams
    kfold: KFoldParams
    train: TrainParams
    models: dict[str, TrainParams] = dataclasses.field(default_factory=dict)  # baseline + variants, file order
    outliers: OutliersParams | None = None
    compare: CompareParams | None = None
    sweep: sweep_params.SweepParams | None = None
    tuned: TunedParams | None = None
    raw: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def model(self, name: str) -> TrainParams:
        if name not in self.models:
            raise ParamsError(f"no model named {name!r} in variants; known: {', '.join(self.models)}")
        return self.models[name]
