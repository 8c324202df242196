"""One typed, validated view of params.yaml.

Every stage calls `load_params()`. Unknown keys, missing keys, wrong types and
out-of-range values fail here, naming the dotted key and what was expected, so a
typo in params.yaml never surfaces as a traceback from deep inside Keras.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnnstudy.errors import StudyError

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO_ROOT / "params.yaml"

OPTIMIZERS = ("adam", "sgd", "rmsprop")
DEVICES = ("auto", "cpu", "gpu")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
BASELINE = "baseline"
# A variant's `epochs` may be "2x": a multiple of the baseline's resolved epochs.
EPOCH_MULTIPLIER = re.compile(r"^(\d+(?:\.\d+)?)x$")


class ParamsError(StudyError, ValueError):
    """params.yaml is not what the pipeline expects; the message names the key."""


# ---------------------------------------------------------------- checkers
def _type_name(value: Any) -> str:
    return type(value).__name__


def _int(key: str, value: Any, minimum: int | None = None) -> int:
    # bool is an int subclass in Python; `epochs: true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamsError(f"{key}: expected an integer, got {value!r} ({_type_name(value)})")
    if minimum is not None and value < minimum:
        raise ParamsError(f"{key}: expected an integer >= {minimum}, got {value}")
    return value


def _float(key: str, value: Any, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamsError(f"{key}: expected a number, got {value!r} ({_type_name(value)})")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ParamsError(f"{key}: expected a number {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ParamsError(f"{key}: expected a number {'<' if high_open else '<='} {high}, got {value}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParamsError(f"{key}: expected true or false, got {value!r} ({_type_name(value)})")
    return value


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ParamsError(f"{key}: expected a non-empty string, got {value!r} ({_type_name(value)})")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ParamsError(f"{key}: expected one of {', '.join(choices)}; got {value!r}")
    return value


def _list(key: str, value: Any) -> list:
    if not isinstance(value, list):
        raise ParamsError(f"{key}: expected a list, got {value!r} ({_type_name(value)})")
    return value


def _mapping(key: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ParamsError(f"{key}: expected a mapping, got {value!r} ({_type_name(value)})")
    return value


def _exact_keys(key: str, section: dict, expected: tuple[str, ...]) -> None:
    unknown = [k for k in section if k not in expected]
    if unknown:
        dotted = ", ".join(f"{key}.{k}" if key else str(k) for k in unknown)
        raise ParamsError(f"unknown key {dotted}: expected only {', '.join(expected)}")
    missing = [k for k in expected if k not in section]
    if missing:
        dotted = ", ".join(f"{key}.{k}" if key else k for k in missing)
        raise ParamsError(f"missing key {dotted}")


def _fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


# ---------------------------------------------------------------- sections
@dataclass(frozen=True)
class FetchParams:
    dataset: str
    mirrors: tuple[str, ...]

    @classmethod
    def parse(cls, key: str, raw: Any) -> "FetchParams":
        raw = _mapping(key, raw)
        _exact_keys(key, raw, _fields(cls))
        mirrors = raw["mirrors"] if raw["mirrors"] is not None else []
        mirrors = tuple(_str(f"{key}.mirrors[{i}]", m) for i, m in enumerate(_list(f"{key}.mirrors", mirrors)))
        return cls(dataset=_str(f"{key}.dataset", raw["dataset"]), mirrors=mirrors)


@dataclass(frozen=True)
class SplitParams:
    train: float
    val: float
    test: float

    @classmethod
    def parse(cls, key: str, raw: Any) -> "SplitParams":
        raw = _mapping(key, raw)
        _exact_keys(key, raw, _fields(cls))
        values = {name: _float(f"{key}.{name}", raw[name], 0.0, 1.0, low_open=True, high_open=True)
                  for name in _fields(cls)}
        if abs(sum(values.values()) - 1.0) > 1e-6:
            raise ParamsError(f"{key}: train + val + test must sum to 1, got {sum(values.values()):.6g}")
        return cls(**values)


@dataclass(frozen=True)
class PrepareParams:
    pool: bool
    per_class: int | None  # None means "all"
    split: SplitParams
    seed: int

    @classmethod
    def parse(cls, key: str, raw: Any) -> "PrepareParams":
        raw = _mapping(key, raw)
        _exact_keys(key, raw, _fields(cls))
        per_class = raw["per_class"]
        if per_class != "all":
            if isinstance(per_class, str):
                raise ParamsError(f"{key}.per_class: expected a positive integer or 'all', got {per_class!r}")
            per_class = _int(f"{key}.per_class", per_class, minimum=1)
        return cls(pool=_bool(f"{key}.pool", raw["pool"]),
                   per_class=None if per_class == "all" else per_class,
                   split=SplitParams.parse(f"{key}.split", raw["split"]),
                   seed=_int(f"{key}.seed", raw["seed"], minimum=0))


@dataclass(frozen=True)
class KFoldParams:
    folds: int
    max_epochs: int
    patience: int

    @classmethod
    def parse(cls, key: str, raw: Any) -> "KFoldParams":
        raw = _mapping(key, raw)
        _exact_keys(key, raw, _fields(cls))
        return cls(folds=_int(f"{key}.folds", raw["folds"], minimum=2),
                   max_epochs=_int(f"{key}.max_epochs", raw["max_epochs"], minimum=1),
                   patience=_int(f"{key}.patience", raw["patience"], minimum=1))


@dataclass(frozen=True)
class TrainParams:
    """The baseline model's configuration; a variant is this with one key changed."""

    optimizer: str
    lr: float
    filters: tuple[int, ...]
    kernel_size: int
    dense_units: int
    dropout: float
    batch_size: int
    epochs: int | str  # an int, "auto" (from the kfold stage) or, in a variant, "<k>x"
    batch_norm: bool
    augment: bool
    seed: int
    device: str
    precision: str

    @classmethod
    def parse(cls, key: str, raw: Any, allow_multiplier: bool = False) -> "TrainParams":
        raw = _mapping(key, raw)
        _exact_keys(key, raw, _fields(cls))
        return cls(**{name: _parse_train_value(f"{key}.{name}", name, raw[name], allow_multiplier)
                      for name in _fields(cls)})

    def with_override(self, key: str, name: str, value: Any) -> "TrainParams":
        return dataclasses.replace(self, **{name: _parse_train_value(key, name, value, True)})

    def epoch_multiplier(self) -> float | None:
        match = EPOCH_MULTIPLIER.match(self.epochs) if isinstance(self.epochs, str) else None
        return float(match.group(1)) if match else None


def _parse_train_value(key: str, name: str, value: Any, allow_multiplier: bool) -> Any:
    if name == "optimizer":
        return _choice(key, value, OPTIMIZERS)
    if name == "lr":
        return _float(key, value, 0.0, 10.0, low_open=True)
    if name == "filters":
        filters = _list(key, value)
        if not filters:
            raise ParamsError(f"{key}: expected a non-empty list of filter counts, got []")
        return tuple(_int(f"{key}[{i}]", f, minimum=1) for i, f in enumerate(filters))
    if name in ("kernel_size", "dense_units", "batch_size"):
        return _int(key, value, minimum=1)
    if name == "dropout":
        return _float(key, value, 0.0, 1.0, high_open=True)
    if name == "epochs":
        if value == "auto":
            return value
        if allow_multiplier and isinstance(value, str) and EPOCH_MULTIPLIER.match(value):
            if float(EPOCH_MULTIPLIER.match(value).group(1)) <= 0:
                raise ParamsError(f"{key}: the multiplier must be > 0, got {value!r}")
            return value
        if isinstance(value, str):
            hint = ", 'auto' or a multiple of the baseline's epochs such as '2x'" if allow_multiplier else " or 'auto'"
            raise ParamsError(f"{key}: expected a positive integer{hint}; got {value!r}")
        return _int(key, value, minimum=1)
    if name in ("batch_norm", "augment"):
        return _bool(key, value)
    if name == "seed":
        return _int(key, value, minimum=0)
    if name == "device":
        return _choice(key, value, DEVICES)
    if name == "precision":
        return _choice(key, value, PRECISIONS)
    raise AssertionError(f"no parser for train.{name}")  # pragma: no cover - fields are fixed


def parse_variants(key: str, raw: Any, baseline: TrainParams) -> dict[str, TrainParams]:
    """`variants` maps a name to exactly one overridden key of `train`.

    The entry `baseline: {}` is required and must stay empty: it is how the
    train stage's `foreach` reaches the baseline alongside the variants.
    """
    raw = _mapping(key, raw)
    if BASELINE not in raw:
        raise ParamsError(f"missing key {key}.{BASELINE}: it must be present and empty ({{}})")
    models: dict[str, TrainParams] = {}
    for name, override in raw.items():
        vkey = f"{key}.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", name):
            raise ParamsError(f"{key}: a variant name must use letters, digits, '_' and '-', got {name!r}")
        override = {} if override is None else _mapping(vkey, override)
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
        if param not in _fields(TrainParams):
            raise ParamsError(f"unknown key {vkey}.{param}: a variant overrides one of "
                              f"{', '.join(_fields(TrainParams))}")
        variant = baseline.with_override(f"{vkey}.{param}", param, value)
        if variant == baseline:
            # Not an error: `dvc exp run -S train.lr=0.01` must work although lr_high is lr 0.01.
            # The variant then trains a copy of the baseline; the summary shows its change as "—".
            print(f"warning: {vkey} sets {param} to the baseline's value {value!r}: "
                  "it repeats the baseline", file=sys.stderr)
        if param == "epochs" and value == "auto" and baseline.epochs != "auto":
            raise ParamsError(f"{vkey}.epochs: auto needs train.epochs: auto too (the kfold stage selects "
                              f"epochs only then); give an integer or a multiple such as '2x'")
        if param in ("filters", "kernel_size"):
            check_feature_maps(variant, key=f"{vkey}.{param}")
        models[name] = variant
    return models


INPUT_SIDE = 28


def check_feature_maps(cfg: TrainParams, key: str = "train") -> None:
    """Each conv block meets a map of `side` pixels, then 2x2 pooling halves it.

    `key` names the offending entry: "train" (then .filters or .kernel_size is added)
    or a variant's full key, used as is.
    """
    def name(sub: str) -> str:
        return key if key != "train" else f"train.{sub}"

    side = INPUT_SIDE
    for block in range(1, len(cfg.filters) + 1):
        if side < 1:
            raise ParamsError(f"{name('filters')}: {len(cfg.filters)} conv blocks with 2x2 pooling shrink a "
                              f"{INPUT_SIDE}-pixel image to nothing before block {block}; use at most {block - 1}")
        if cfg.kernel_size > side:
            raise ParamsError(f"{name('kernel_size')}: a {cfg.kernel_size}x{cfg.kernel_size} kernel is larger "
                              f"than the {side}x{side} feature map that conv block {block} meets")
        side //= 2
    if side < 1:
        raise ParamsError(f"{name('filters')}: {len(cfg.filters)} conv blocks with 2x2 pooling leave no pixel "
                          f"of a {INPUT_SIDE}-pixel image; use fewer entries")


@dataclass(frozen=True)
class OutliersParams:
    dir: str
    repeats: int
    seeds: tuple[int, ...]

    @classmethod
    def parse(cls, key: str, raw: Any) -> "OutliersParams":
        raw = _mapping(key, raw)
        _exact_keys(key, raw, _fields(cls))
        seeds = tuple(_int(f"{key}.seeds[{i}]", s, minimum=0) for i, s in enumerate(_list(f"{key}.seeds", raw["seeds"])))
        return cls(dir=_str(f"{key}.dir", raw["dir"]),
                   repeats=_int(f"{key}.repeats", raw["repeats"], minimum=2),
                   seeds=seeds)


STANDARD_MODELS = ("lenet5", "resnet50", "densenet121", "vgg16", "alexnet", "mobilenetv2")


@dataclass(frozen=True)
class CompareParams:
    models: tuple[str, ...]
    epochs: int | None          # None: each architecture's own recipe
    input_size: int             # side the keras.applications models see (28x28 is resized up)
    max_train_images: int | None  # None: the whole train split; a cap keeps the big models affordable on a CPU
    keep_models: tuple[str, ...]  # whose .keras file stays in models/compare (DVC-cached); the others' size is
                                  # measured on a temporary file (ResNet50's is ~284 MB)

    @classmethod
    def parse(cls, key: str, raw: Any) -> "CompareParams":
        raw = _mapping(key, raw)
        _exact_keys(key, raw, _fields(cls))
        models = tuple(_choice(f"{key}.models[{i}]", m, STANDARD_MODELS)
                       for i, m in enumerate(_list(f"{key}.models", raw["models"])))
        if len(set(models)) != len(models):
            raise ParamsError(f"{key}.models: lists a model twice: {list(models)}")
        epochs = None if raw["epochs"] is None else _int(f"{key}.epochs", raw["epochs"], minimum=1)
        cap = raw["max_train_images"]
        cap = None if cap is None else _int(f"{key}.max_train_images", cap, minimum=10)
        # A name not in `models` is allowed (nothing to keep), so shrinking `models` for a quick run needs no edit here.
        keep = raw["keep_models"] if raw["keep_models"] is not None else []
        keep = tuple(_choice(f"{key}.keep_models[{i}]", m, STANDARD_MODELS)
                     for i, m in enumerate(_list(f"{key}.keep_models", keep)))
        return cls(models=models, epochs=epochs, input_size=_int(f"{key}.input_size", raw["input_size"], minimum=32),
                   max_train_images=cap, keep_models=keep)


@dataclass(frozen=True)
class Params:
    fetch: FetchParams
    prepare: PrepareParams
    kfold: KFoldParams
    train: TrainParams
    models: dict[str, TrainParams] = field(default_factory=dict)  # baseline + variants, in file order
    outliers: OutliersParams | None = None
    compare: CompareParams | None = None
    sweep: Any = None  # cnnstudy.sweep_space.SweepParams (typed there: it imports this module)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    def model(self, name: str) -> TrainParams:
        if name not in self.models:
            raise ParamsError(f"no model named {name!r} in variants; known: {', '.join(self.models)}")
        return self.models[name]


SECTIONS = ("fetch", "prepare", "kfold", "train", "variants", "outliers", "compare", "sweep")


def parse_params(raw: Any) -> Params:
    raw = _mapping("params.yaml", raw)
    _exact_keys("", raw, SECTIONS)
    train = TrainParams.parse("train", raw["train"])
    check_feature_maps(train)
    return Params(fetch=FetchParams.parse("fetch", raw["fetch"]),
                  prepare=PrepareParams.parse("prepare", raw["prepare"]),
                  kfold=KFoldParams.parse("kfold", raw["kfold"]),
                  train=train,
                  models=parse_variants("variants", raw["variants"], train),
                  outliers=OutliersParams.parse("outliers", raw["outliers"]),
                  compare=CompareParams.parse("compare", raw["compare"]),
                  sweep=_parse_sweep(raw["sweep"], train),
                  raw=raw)


def _parse_sweep(raw: Any, train: TrainParams):
    # The sweep section is validated by its own module (search space, search, resources).
    from cnnstudy.sweep_space import SweepParams

    return SweepParams.parse("sweep", raw, train)


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    try:
        return parse_params(raw)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
