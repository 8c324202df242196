"""Stage sweep_plots: the sweep's figures from metrics/sweep.csv (rendering only, no training)."""

from pathlib import Path

import pandas as pd

from cnnstudy import figures
from cnnstudy.errors import DataError
from cnnstudy.figures.sweep import heatmap, main_effects, parallel_coordinates
from cnnstudy.params import load_params
from cnnstudy.stage import run

SWEEP_CSV = Path("metrics/sweep.csv")
PLOTS = Path("plots/sweep")


def main() -> None:
    sweep = load_params().sweep
    if not SWEEP_CSV.is_file():
        raise DataError(f"{SWEEP_CSV}: missing; run `dvc repro sweep`")
    table = pd.read_csv(SWEEP_CSV)
    factors = [f for f in sweep.factors if f in table.columns]
    if not factors or len(table) == 0:
        raise DataError(f"{SWEEP_CSV}: no trials or none of the factors {list(sweep.factors)}; run `dvc repro sweep`")
    figures.save(parallel_coordinates(table, factors), PLOTS / "parallel_coordinates.png")
    figures.save(main_effects(table, factors), PLOTS / "main_effects.png")
    figures.save(heatmap(table, *sweep.heatmap), PLOTS / "heatmap.png")
    print(f"sweep_plots: {len(table)} trials, factors {', '.join(factors)} -> {PLOTS}/")


if __name__ == "__main__":
    run(main)
