"""The `sweep` section of params.yaml and the trial configurations it describes.

`space` maps keys of `train` to what the search may try: a list (grid values, or the
choices of a random/TPE search) or a range {low, high, log} (random and TPE only).
Every value is checked by the same parser as `train` itself, so a bad value fails at
load naming `sweep.space.<key>[i]`, never inside a trial. A trial's configuration is
`train` with the sampled keys replaced and `epochs` set to `sweep.epochs`.

Pure Python (no Ray, no Keras): importable and testable anywhere.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

from cnnstudy.params import (ParamsError, TrainParams, _bool, _choice, _exact_keys, _fields, _float, _int,
                             _list, _mapping, check_feature_maps)

SEARCHES = ("grid", "random", "optuna")
SCHEDULERS = ("none", "asha")
# Keys a sweep may not vary: the trial's epochs are sweep.epochs, and where a trial runs is
# decided by sweep.resources (train.device still says whether a trial may use a GPU).
FIXED_KEYS = ("epochs", "device")
# Keys with a numeric range: the type the sampled value takes.
RANGE_TYPES = {"lr": float, "dropout": float, "kernel_size": int, "dense_units": int, "batch_size": int}
METRIC, MODE = "val_accuracy", "max"  # what trials are ranked on: validation only


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class SweepParams:
    space: dict[str, tuple | Range]  # train key -> tuple of values, or a Range
    search: str
    trials: int          # random/optuna: how many trials; grid: ignored (each combination once)
    epochs: int          # epochs per trial
    scheduler: str       # none | asha (stops trials early on val_accuracy)
    cpu: float           # resources per trial
    gpu: float | str     # a number, or "auto": 1 per trial when the cluster has GPUs, else 0
    address: str         # "": start a local Ray in the stage; else an existing cluster's address
    heatmap: tuple[str, str]  # the two factors of the heatmap figure

    @property
    def factors(self) -> tuple[str, ...]:
        return tuple(self.space)

    @classmethod
    def parse(cls, key: str, raw: Any, train: TrainParams) -> "SweepParams":
        raw = _mapping(key, raw)
        _exact_keys(key, raw, ("space", "search", "trials", "epochs", "scheduler", "resources", "address",
                               "heatmap"))
        search = _choice(f"{key}.search", raw["search"], SEARCHES)
        space = _parse_space(f"{key}.space", raw["space"], train, search)
        resources = _mapping(f"{key}.resources", raw["resources"])
        _exact_keys(f"{key}.resources", resources, ("cpu", "gpu"))
        gpu = resources["gpu"]
        gpu = gpu if gpu == "auto" else _float(f"{key}.resources.gpu", gpu, 0.0)
        if train.device == "gpu" and gpu == 0:
            raise ParamsError(f"{key}.resources.gpu: train.device is 'gpu' but trials get no GPU; "
                              "set it to auto or a number > 0")
        address = raw["address"] if raw["address"] is not None else ""
        if not isinstance(address, str):
            raise ParamsError(f"{key}.address: expected a string ('' for a local Ray), got {address!r}")
        heatmap = tuple(_list(f"{key}.heatmap", raw["heatmap"]))
        if len(heatmap) != 2 or len(set(heatmap)) != 2 or any(h not in space for h in heatmap):
            raise ParamsError(f"{key}.heatmap: expected two different keys of {key}.space "
                              f"({', '.join(space)}), got {list(heatmap)}")
        return cls(space=space, search=search,
                   trials=_int(f"{key}.trials", raw["trials"], minimum=1),
                   epochs=_int(f"{key}.epochs", raw["epochs"], minimum=1),
                   scheduler=_choice(f"{key}.scheduler", raw["scheduler"], SCHEDULERS),
                   cpu=_float(f"{key}.resources.cpu", resources["cpu"], 0.0, low_open=True),
                   gpu=gpu, address=address, heatmap=heatmap)  # type: ignore[arg-type]


def _parse_space(key: str, raw: Any, train: TrainParams, search: str) -> dict[str, tuple | Range]:
    raw = _mapping(key, raw)
    if not raw:
        raise ParamsError(f"{key}: expected at least one key of train to search over")
    sweepable = [name for name in _fields(TrainParams) if name not in FIXED_KEYS]
    space: dict[str, tuple | Range] = {}
    for name, values in raw.items():
        if name not in sweepable:
            why = " (set by sweep.epochs / sweep.resources)" if name in FIXED_KEYS else ""
            raise ParamsError(f"unknown key {key}.{name}{why}: a sweep varies keys of train: {', '.join(sweepable)}")
        if isinstance(values, dict):
            space[name] = _parse_range(f"{key}.{name}", name, values, search)
            continue
        values = _list(f"{key}.{name}", values)
        if not values:
            raise ParamsError(f"{key}.{name}: expected a non-empty list of values")
        # Each value through train's own parser: errors name sweep.space.<key>[i].
        parsed = tuple(getattr(train.with_override(f"{key}.{name}[{i}]", name, v), name)
                       for i, v in enumerate(values))
        if len(set(parsed)) != len(parsed):
            raise ParamsError(f"{key}.{name}: lists a value twice: {values}")
        space[name] = parsed
    _check_shapes(key, space, train)
    return space


def _parse_range(key: str, name: str, raw: dict, search: str) -> Range:
    if search == "grid":
        raise ParamsError(f"{key}: a range needs search random or optuna; a grid takes a list of values")
    if name not in RANGE_TYPES:
        raise ParamsError(f"{key}: a range is only for {', '.join(RANGE_TYPES)}; give a list of values")
    _exact_keys(key, raw, ("low", "high", "log"))
    kind = RANGE_TYPES[name]
    parse = (lambda k, v: _int(k, v, minimum=1)) if kind is int else (lambda k, v: _float(k, v, 0.0))
    low, high = parse(f"{key}.low", raw["low"]), parse(f"{key}.high", raw["high"])
    if not low < high:
        raise ParamsError(f"{key}: expected low < high, got low {low}, high {high}")
    log = _bool(f"{key}.log", raw["log"])
    if log and low <= 0:
        raise ParamsError(f"{key}: a log range needs low > 0, got {low}")
    if name == "dropout" and high >= 1:
        raise ParamsError(f"{key}.high: dropout must stay below 1, got {high}")
    return Range(low=float(low), high=float(high), log=log, kind=kind)


def _check_shapes(key: str, space: dict[str, tuple | Range], train: TrainParams) -> None:
    """Every filters list with the largest kernel must fit the image (the check is monotone in the kernel)."""
    kernel = space.get("kernel_size", (train.kernel_size,))
    largest = int(kernel.high) if isinstance(kernel, Range) else max(kernel)
    for filters in space.get("filters", (train.filters,)):
        cfg = dataclasses.replace(train, filters=filters, kernel_size=largest)
        try:
            check_feature_maps(cfg)
        except ParamsError as exc:
            raise ParamsError(f"{key}: the combination filters {list(filters)} with kernel_size {largest} "
                              f"does not fit: {exc}") from None


# ---------------------------------------------------------------- trial configurations
def trial_config(train: TrainParams, overrides: dict[str, Any], epochs: int) -> dict:
    """The full resolved train configuration of one trial, as plain JSON-able values."""
    cfg = dataclasses.replace(train, epochs=epochs, **{k: _from_json(k, v) for k, v in overrides.items()})
    return to_json(cfg)


def to_json(cfg: TrainParams) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def from_json(config: dict) -> TrainParams:
    return TrainParams(**{k: _from_json(k, v) for k, v in config.items()})


def _from_json(name: str, value: Any) -> Any:
    return tuple(value) if name == "filters" else value


def explicit_overrides(sweep: SweepParams, seed: int) -> list[dict[str, Any]]:
    """Grid: every combination, in params order. Random: `trials` draws from a generator seeded by
    train.seed, so a re-run (or a longer one) proposes the same configurations first and finds them
    in the cache. Optuna proposes its own: None."""
    names = list(sweep.space)
    if sweep.search == "grid":
        return [dict(zip(names, combo, strict=True))
                for combo in itertools.product(*(sweep.space[n] for n in names))]
    if sweep.search == "random":
        rng = random.Random(seed)
        return [{n: _draw(sweep.space[n], rng) for n in names} for _ in range(sweep.trials)]
    raise ValueError("optuna proposes its own configurations")


def _draw(spec: tuple | Range, rng: random.Random) -> Any:
    return spec.sample(rng) if isinstance(spec, Range) else spec[rng.randrange(len(spec))]


def json_value(value: Any) -> Any:
    """A swept value as it appears in tables and JSON (filters as a list)."""
    return list(value) if isinstance(value, tuple) else value
