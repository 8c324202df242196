"""How many epochs a model trains: its own integer, the kfold stage's choice (`auto`), or a
multiple of the baseline's (`2x`)."""

from __future__ import annotations

import math
from pathlib import Path

from cnnstudy.errors import DataError
from cnnstudy.files import read_json
from cnnstudy.params import TrainParams

KFOLD_JSON = Path("metrics/kfold.json")


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def resolve_epochs(cfg: TrainParams, baseline: TrainParams, kfold_file: str | Path = KFOLD_JSON) -> int:
    """A model's epoch count: its own integer, the kfold choice (auto) or k x the baseline's."""
    multiplier = cfg.epoch_multiplier()
    if multiplier is not None:
        return max(1, round_half_up(multiplier * resolve_epochs(baseline, baseline, kfold_file)))
    if cfg.epochs != "auto":
        return int(cfg.epochs)
    try:
        chosen = read_json(kfold_file).get("chosen_epochs")
    except (OSError, ValueError) as exc:
        raise DataError(f"train.epochs is auto but {kfold_file} cannot be read ({exc}); "
                        "run `dvc repro kfold`") from None
    if not isinstance(chosen, int) or chosen < 1:
        raise DataError(f"train.epochs is auto but {kfold_file} holds no chosen epoch count; "
                        "run `dvc repro kfold`")
    return chosen
