"""The baseline re-trained with other seeds (the retrain stage), as the outliers stage uses them:
their names and where their files are."""

from __future__ import annotations

from pathlib import Path

RETRAINED_DIR = Path("models/retrained")


def other_seeds(seeds: list[int], train_seed: int) -> dict[str, int]:
    """{"baseline_seed<n>": n} for each of `seeds` (outliers.seeds) except train.seed, which
    would re-train the baseline itself."""
    return {f"baseline_seed{seed}": seed for seed in seeds if seed != train_seed}
