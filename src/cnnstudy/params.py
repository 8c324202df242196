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

from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, field_validator, model_validator
from pydantic.dataclasses import dataclass

from cnnstudy import sizes
from cnnstudy.errors import StudyError
from cnnstudy.validation import named_keys
from cnnstudy.yaml12 import read_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO_ROOT / "params.yaml"

OPTIMIZERS = ("adam", "sgd", "rmsprop")
DEVICES = ("auto", "cpu", "gpu")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STANDARD_MODELS = ("lenet5", "resnet50", "densenet121", "vgg16", "alexnet", "mobilenetv2")
BASELINE = "baseline"
INPUT_SIDE = sizes.INPUT_SIDE
# A variant's `epochs` may be "2x": a multiple of the baseline's resolved epochs.
EPOCH_MULTIPLIER = re.compile(r"^(\d+(?:\.\d+)?)x$")
VARIANT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class ParamsError(StudyError, ValueError):
    """params.yaml is not what the pipeline expects; the message names the key."""


# Strict scalars: bool is no integer (`epochs: true` is a typo, not 1) and "1" is no number.
# Lists stay lax so that a YAML list fills a tuple field.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # an integer is accepted (lr: 1), a bool is not
Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict(), Field(min_length=1)]
Positive = Annotated[Int, Field(ge=1)]
Seed = Annotated[Int, Field(ge=0)]
# `mirrors: null` and `keep_models: null` read as empty lists.
NoneIsEmpty = BeforeValidator(lambda value: () if value is None else value)


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
    """The baseline model's configuration; a variant is this with one key changed."""

    optimizer: Literal[OPTIMIZERS]
    lr: Annotated[Float, Field(gt=0.0, le=10.0)]
    filters: Annotated[tuple[Positive, ...], Field(min_length=1)]
    kernel_size: Positive
    dense_units: Positive
    dropout: Annotated[Float, Field(ge=0.0, lt=1.0)]
    batch_size: Positive
    epochs: Annotated[Union[int, str], BeforeValidator(_epochs)]  # int, "auto" or, in a variant, "<k>x"
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
class _File:
    """params.yaml's shape; `variants` is checked against `train` afterwards (parse_variants)."""

    fetch: FetchParams
    prepare: PrepareParams
    kfold: KFoldParams
    train: TrainParams
    variants: dict
    outliers: OutliersParams
    compare: CompareParams


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
    raw: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def model(self, name: str) -> TrainParams:
        if name not in self.models:
            raise ParamsError(f"no model named {name!r} in variants; known: {', '.join(self.models)}")
        return self.models[name]


# ---------------------------------------------------------------- the study's own rules
def parse_variants(key: str, raw: Any, baseline: TrainParams, train_images: int | None = None) -> dict[str, TrainParams]:
    """`variants` maps a name to exactly one overridden key of `train`.

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
        if name == BASELINE:
            if override:
                raise ParamsError(f"{vkey}: the baseline is `train` itself and must be empty ({{}}), "
                                  f"got {override!r}; change `train` instead")
            models[name] = baseline
            continue
        if len(override) != 1:
            raise ParamsError(f"{vkey}: a variant changes exactly one key of train, "
                              f"got {len(override)} ({', '.join(map(str, override)) or 'none'})")
        (param, value), = override.items()
        if param not in (f.name for f in dataclasses.fields(TrainParams)):
            raise ParamsError(f"unknown key {vkey}.{param}: a variant overrides one key of train")
        variant = baseline.with_override(f"{vkey}.{param}", param, value)
        if variant == baseline:
            # Not an error: `dvc exp run -S train.lr=0.01` must work although lr_high is lr 0.01.
            # The variant then trains a copy of the baseline; the summary shows its change as "—".
            print(f"warning: {vkey} sets {param} to the baseline's value {value!r}: "
                  "it repeats the baseline", file=sys.stderr)
        if param == "epochs" and value == "auto" and baseline.epochs != "auto":
            raise ParamsError(f"{vkey}.epochs: auto needs train.epochs: auto too (the kfold stage selects "
                              f"epochs only then); give an integer or a multiple such as '2x'")
        check_trainable(variant, key=f"{vkey}.{param}", train_images=train_images)
        models[name] = variant
    return models


def check_feature_maps(cfg: TrainParams, key: str = "train") -> None:
    """Each conv block's kernel fits the map it meets. `key`: "train" or a variant's full key."""
    check_trainable(cfg, key, sizes_too=False)


def check_trainable(cfg: TrainParams, key: str = "train", train_images: int | None = None,
                    sizes_too: bool = True) -> None:
    """Feature maps that fit, and a model and batch small enough to train (limits in sizes.py)."""
    try:
        sizes.check_feature_maps(cfg.filters, cfg.kernel_size)
        if sizes_too:
            sizes.check_model_size(cfg.filters, cfg.kernel_size, cfg.dense_units, cfg.batch_size, cfg.batch_norm)
        if sizes_too and train_images is not None:
            sizes.check_batch(cfg.batch_size, train_images)
    except sizes.SizeError as exc:
        raise ParamsError(f"{f'train.{exc.field}' if key == 'train' else key}: {exc}") from None


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
                  outliers=file.outliers, compare=file.compare, raw=raw)


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
