"""One typed, validated view of params.yaml: every stage calls `load_params()`.

Read as DVC reads it (yaml12.py), validated by pydantic with strict types (`lr: true` is not a
number), extra="forbid" and one-line errors naming the dotted key (validation.py); the study's
own rules (variants, feature maps, sizes that cannot train: sizes.py) are checked below.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, field_validator, model_validator
from pydantic.dataclasses import dataclass

from cnnstudy import sizes, sweep_params
from cnnstudy.errors import StudyError
from cnnstudy.validation import Bool, Float, Int, NoneIsEmpty, Positive, Seed, Text, named_keys
from cnnstudy.yaml12 import read_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO_ROOT / "params.yaml"

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

    select: Literal["validation", "fixed"]  # validation: epochs of lowest val loss in a fit of `epochs`
    epochs: Positive


@dataclass(frozen=True, config=CONFIG)
class _File:
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


SECTIONS = tuple(f.name for f in dataclasses.fields(_File))


@dataclasses.dataclass(frozen=True)
class Params:
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


# ---------------------------------------------------------------- the study's own rules
def parse_variants(key: str, raw: Any, baseline: TrainParams, train_images: int | None = None) -> dict[str, TrainParams]:
    """`variants` maps a name to the keys of `train` it changes (one idea: an optimizer with its
    own learning rate and momentum is one).

    The entry `baseline: {}` is required and must stay empty: it is how the
    train stage's `foreach` reaches the baseline alongside the variants.
    """
    if BASELINE not in raw:
        raise ParamsError(f"missing key {key}.{BASELINE}: it must be present and empty ({{}})")
    models: dict[str, TrainParams] = {}
    for name, override in raw.items():
        vkey = f"{key}.{name}"
        if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name):
            raise ParamsError(f"{key}: a variant name must use letters, digits, '_' and '-', got {name!r}")
        override = {} if override is None else override
        if not isinstance(override, dict):
            raise ParamsError(f"{vkey}: expected a mapping, got {override!r} ({type(override).__name__})")
        if name == TUNED:
            raise ParamsError(f"{vkey}: the name {TUNED!r} is the tuned model's (stage tuned); choose another")
        if name == BASELINE:
            if override:
                raise ParamsError(f"{vkey}: the baseline is `train` itself and must be empty ({{}}), "
                                  f"got {override!r}; change `train` instead")
            models[name] = baseline
            continue
        if not override:
            raise ParamsError(f"{vkey}: a variant changes at least one key of train, got none")
        variant = baseline
        for param, value in override.items():
            if param not in (f.name for f in dataclasses.fields(TrainParams)):
                raise ParamsError(f"unknown key {vkey}.{param}: a variant overrides keys of train")
            variant = variant.with_override(f"{vkey}.{param}", param, value)
        if variant == baseline:
            # Not an error: `dvc exp run -S train.lr=0.01` must work although lr_high is lr 0.01.
            # The variant then trains a copy of the baseline; the summary shows its change as "—".
            changes = ", ".join(f"{k}={v!r}" for k, v in override.items())
            print(f"warning: {vkey} sets {changes} to the baseline's values: "
                  "it repeats the baseline", file=sys.stderr)
        if override.get("epochs") == "auto" and baseline.epochs != "auto":
            raise ParamsError(f"{vkey}.epochs: auto needs train.epochs: auto too (the kfold stage selects "
                              f"epochs only then); give an integer or a multiple such as '2x'")
        check_trainable(variant, key=vkey, train_images=train_images, changed=tuple(override))
        models[name] = variant
    return models


def check_feature_maps(cfg: TrainParams, key: str = "train") -> None:
    """Each conv block's kernel fits the map it meets. `key`: "train" or a variant's full key."""
    check_trainable(cfg, key, sizes_too=False)


def check_trainable(cfg: TrainParams, key: str = "train", train_images: int | None = None,
                    sizes_too: bool = True, changed: tuple[str, ...] = ()) -> None:
    """Feature maps that fit, and a model and batch small enough to train (limits in sizes.py).
    `key`: "train" or a variant's key; `changed`: the keys the variant sets (one is blamed)."""
    try:
        sizes.check_feature_maps(cfg.filters, cfg.kernel_size)
        if sizes_too:
            sizes.check_model_size(cfg.filters, cfg.kernel_size, cfg.dense, cfg.batch_size, cfg.batch_norm)
        if sizes_too and train_images is not None:
            sizes.check_batch(cfg.batch_size, train_images)
    except sizes.SizeError as exc:
        if key == "train" or not changed:
            raise ParamsError(f"{f'train.{exc.field}' if key == 'train' else key}: {exc}") from None
        raise ParamsError(f"{key}.{exc.field if exc.field in changed else changed[0]}: {exc}") from None


def parse_params(raw: Any) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"expected a mapping of sections ({', '.join(SECTIONS)}), got {type(raw).__name__}")
    with named_keys(ParamsError):
        file = TypeAdapter(_File).validate_python(raw)
    if file.train.epoch_multiplier() is not None:
        raise ParamsError(f"train.epochs: a multiple such as {file.train.epochs!r} is for variants only; "
                          "expected a positive integer or 'auto'")
    images = sizes.train_images(file.prepare)
    check_trainable(file.train, train_images=images)
    return Params(fetch=file.fetch, prepare=file.prepare, kfold=file.kfold, train=file.train,
                  models=parse_variants("variants", file.variants, file.train, images),
                  outliers=file.outliers, compare=file.compare, sweep=parse_sweep(file.sweep, file.train), tuned=file.tuned,
                  raw=raw)


def parse_sweep(sweep: Any, train: TrainParams) -> sweep_params.SweepParams:
    """The sweep section (a mapping or a validated SweepParams) with its space checked against `train`."""
    if not isinstance(sweep, sweep_params.SweepParams):
        with named_keys(ParamsError, "sweep"):
            sweep = TypeAdapter(sweep_params.SweepParams).validate_python(sweep)
    return sweep_params.resolve(sweep, train, ParamsError)


def load_params(path: str | Path | None = None) -> Params:
    """params.yaml of the working directory (where DVC runs every stage), else of this repository."""
    if path is None:
        path = Path("params.yaml") if Path("params.yaml").is_file() else PARAMS_FILE
    path = Path(path)
    raw = read_yaml(path, ParamsError)
    try:
        return parse_params(raw)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
