"""The trial configurations a sweep (params: cnnstudy.sweep_params) describes.

A trial's configuration is `train` with the sampled keys replaced and `epochs` set to
`sweep.epochs`.

Pure Python (no Ray, no Keras): importable and testable anywhere.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import typing
from typing import Any

from cnnstudy.params import TrainParams
from cnnstudy.sweep_params import Range, SweepParams

METRIC, MODE = "val_accuracy", "max"  # what trials are ranked on: validation only


def _is_sequence(hint: Any) -> bool:
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return typing.get_origin(hint) is tuple


# The keys of train whose values are sequences (filters, dense): tuples in TrainParams, lists in
# JSON, and JSON text in Tune's configs (Optuna's choices must be scalars). Read from the type
# hints, so a sequence key added to train later is swept without a change here.
SEQUENCE_KEYS = frozenset(name for name, hint in typing.get_type_hints(TrainParams, include_extras=True).items()
                          if _is_sequence(hint))


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
    return tuple(value) if name in SEQUENCE_KEYS and isinstance(value, (list, tuple)) else value


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
