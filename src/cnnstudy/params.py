"""One typed, validated view of params.yaml: every stage calls `load_params()`.

Read as DVC reads it (yaml12.py), validated section by section against params_schema.py (pydantic:
strict types, extra="forbid", errors naming the dotted key), then by the study's own rules below
(variants, feature maps, sizes that cannot train: sizes.py).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from cnnstudy import sizes, sweep_params
# Besides what this module uses, the schema names callers import from here, beside load_params.
from cnnstudy.params_schema import (  # noqa: F401
    BASELINE, SECTIONS, STANDARD_MODELS, TUNED, VARIANT_NAME, CompareParams, KFoldParams, Params, ParamsError,
    ParamsFile, PrepareParams, SplitParams, TrainParams)
from cnnstudy.validation import named_keys
from cnnstudy.yaml12 import read_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO_ROOT / "params.yaml"


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
        file = TypeAdapter(ParamsFile).validate_python(raw)
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
