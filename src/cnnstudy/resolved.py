"""The validated params as plain data: what `cnnstudy params` prints and the `params` stage writes.

The `params` stage writes one file per section (and one per model: the baseline or a variant
with its one change applied) so that a stage depending on a file reruns only when what it
uses changed; a file whose values did not change keeps its hash.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cnnstudy.files import write_json
from cnnstudy.params import Params


def as_data(params: Params) -> dict:
    """Every section with defaults filled in (per_class 'all' is null) and each model resolved."""
    sections = {name: dataclasses.asdict(getattr(params, name))
                for name in ("fetch", "prepare", "kfold", "train", "outliers", "compare", "tuned")}
    sections["models"] = {name: dataclasses.asdict(cfg) for name, cfg in params.models.items()}
    return sections


def write_sections(params: Params, out_dir: Path) -> list[Path]:
    """out_dir/<section>.json and out_dir/models/<model>.json; returns the paths written."""
    data = as_data(params)
    models = data.pop("models")
    paths = [out_dir / f"{name}.json" for name in data] + [out_dir / "models" / f"{name}.json" for name in models]
    for path, value in zip(paths, [*data.values(), *models.values()]):
        write_json(path, value)
    return paths
