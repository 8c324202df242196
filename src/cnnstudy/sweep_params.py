"""The `sweep` section of params.yaml, validated like every section (strict types, extra=forbid,
one-line errors with the dotted key); the search space is then checked against `train` by
`resolve`, each value with train's own rules, so a bad value fails at load naming
`sweep.space.<key>[i]`, never inside a trial.

`space` maps keys of `train` to a list (grid values, or the choices of a random/TPE search)
or a range {low, high, log} (random and TPE only). No Ray, no Keras.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass

from cnnstudy import sizes
from cnnstudy.validation import Bool, Float, Int, Positive, named_keys

SEARCHES = ("grid", "random", "optuna")
SCHEDULERS = ("none", "asha")
# Keys a sweep may not vary: a trial's epochs are sweep.epochs, and where a trial runs is
# decided by sweep.resources (train.device still says whether a trial may use a GPU).
FIXED_KEYS = ("epochs", "device")
# Keys with a numeric range: the type the sampled value takes.
RANGE_TYPES = {"lr": float, "momentum": float, "dropout": float, "kernel_size": int, "batch_size": int,
               "early_stopping": int}
CONFIG = ConfigDict(extra="forbid")


@dataclasses.dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool
    kind: type  # int or float

    def sample(self, rng: random.Random) -> int | float:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.kind is int else float(value)


def _gpu(value: Any) -> str | float:
    if value == "auto" or (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
        return value if value == "auto" else float(value)
    raise ValueError(f"expected a number >= 0 or 'auto', got {value!r}")


@dataclass(frozen=True, config=CONFIG)
class Resources:
    cpu: Annotated[Float, Field(gt=0.0)]
    gpu: Annotated[Union[str, float], BeforeValidator(_gpu)]  # auto: 1 per trial when the cluster has GPUs


@dataclass(frozen=True, config=CONFIG)
class SweepParams:
    space: dict[str, Any]  # train key -> tuple of values, or a Range (resolve)
    search: Literal[SEARCHES]
    trials: Positive     # random/optuna: how many trials; grid: ignored (each combination once)
    epochs: Positive     # epochs per trial
    scheduler: Literal[SCHEDULERS]  # none | asha (stops trials early on val_accuracy)
    resources: Resources
    address: Annotated[str, BeforeValidator(lambda v: "" if v is None else v)]  # "": a local Ray
    heatmap: Annotated[tuple[str, str], Field(min_length=2, max_length=2)]

    @property
    def factors(self) -> tuple[str, ...]:
        return tuple(self.space)

    @property
    def cpu(self) -> float:
        return self.resources.cpu

    @property
    def gpu(self) -> float | str:
        return self.resources.gpu


@dataclass(frozen=True, config=CONFIG)
class _RangeSpec:
    low: Union[Int, Float]
    high: Union[Int, Float]
    log: Bool


def resolve(sweep: SweepParams, train: Any, error: type[Exception], key: str = "sweep") -> SweepParams:
    """`sweep` with its space checked against `train` (a TrainParams) and its values parsed
    (filters as tuples, ranges as Range); `error` is raised with the dotted key."""
    if not sweep.space:
        raise error(f"{key}.space: expected at least one key of train to search over")
    names = [f.name for f in dataclasses.fields(train)]
    sweepable = [name for name in names if name not in FIXED_KEYS]
    space: dict[str, tuple | Range] = {}
    for name, values in sweep.space.items():
        skey = f"{key}.space.{name}"
        if name not in sweepable:
            why = " (set by sweep.epochs / sweep.resources)" if name in FIXED_KEYS else ""
            raise error(f"unknown key {skey}{why}: a sweep varies keys of train: {', '.join(sweepable)}")
        if isinstance(values, dict):
            space[name] = _range(skey, name, values, sweep.search, error)
            continue
        if not isinstance(values, list) or not values:
            raise error(f"{skey}: expected a non-empty list of values, got {values!r}")
        # Each value through train's own validation (dataclasses.replace re-validates).
        parsed = []
        for i, value in enumerate(values):
            try:
                with named_keys(error, f"{key}.space"):  # pydantic names the field: sweep.space.<key>
                    parsed.append(getattr(dataclasses.replace(train, **{name: value}), name))
            except error as exc:
                raise error(str(exc).replace(skey, f"{skey}[{i}]", 1)) from None
        if len(set(map(repr, parsed))) != len(parsed):
            raise error(f"{skey}: lists a value twice: {values}")
        space[name] = tuple(parsed)
    _check_shapes(f"{key}.space", space, train, error)
    if train.device == "gpu" and sweep.gpu == 0:
        raise error(f"{key}.resources.gpu: train.device is 'gpu' but trials get no GPU; set it to auto or a number > 0")
    if len(set(sweep.heatmap)) != 2 or any(h not in space for h in sweep.heatmap):
        raise error(f"{key}.heatmap: expected two different keys of {key}.space ({', '.join(space)}), "
                    f"got {list(sweep.heatmap)}")
    return dataclasses.replace(sweep, space=space)


def _range(key: str, name: str, raw: dict, search: str, error: type[Exception]) -> Range:
    if search == "grid":
        raise error(f"{key}: a range needs search random or optuna; a grid takes a list of values")
    if name not in RANGE_TYPES:
        raise error(f"{key}: a range is only for {', '.join(RANGE_TYPES)}; give a list of values")
    kind = RANGE_TYPES[name]
    with named_keys(error, key):
        spec = TypeAdapter(_RangeSpec).validate_python(raw)
    bound = Annotated[Int, Field(ge=1)] if kind is int else Annotated[Float, Field(ge=0.0)]
    with named_keys(error, f"{key}.low"):
        low = TypeAdapter(bound).validate_python(spec.low)
    with named_keys(error, f"{key}.high"):
        high = TypeAdapter(bound).validate_python(spec.high)
    if not low < high:
        raise error(f"{key}: expected low < high, got low {low}, high {high}")
    if spec.log and low <= 0:
        raise error(f"{key}: a log range needs low > 0, got {low}")
    if name in ("dropout", "momentum") and high >= 1:
        raise error(f"{key}.high: {name} must stay below 1, got {high}")
    return Range(low=float(low), high=float(high), log=spec.log, kind=kind)


def _check_shapes(key: str, space: dict[str, tuple | Range], train: Any, error: type[Exception]) -> None:
    """Every filters list with the largest kernel must fit the image (the check is monotone in the kernel)."""
    kernel = space.get("kernel_size", (train.kernel_size,))
    largest = int(kernel.high) if isinstance(kernel, Range) else max(kernel)
    for filters in space.get("filters", (train.filters,)):
        try:
            sizes.check_feature_maps(filters, largest)
        except sizes.SizeError as exc:
            raise error(f"{key}: the combination filters {list(filters)} with kernel_size {largest} "
                        f"does not fit: {exc}") from None
