"""Stage sweep_plots: the sweep's figures from metrics/sweep.csv (rendering only, no training)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pandas as pd  # noqa: E402

from cnnstudy.errors import DataError  # noqa: E402
from cnnstudy.files import save_figure  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.stage import run  # noqa: E402
from cnnstudy.sweep_charts import heatmap, main_effects, parallel_coordinates  # noqa: E402

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
    save_figure(parallel_coordinates(table, factors), PLOTS / "parallel_coordinates.png")
    save_figure(main_effects(table, factors), PLOTS / "main_effects.png")
    save_figure(heatmap(table, *sweep.heatmap), PLOTS / "heatmap.png")
    print(f"sweep_plots: {len(table)} trials, factors {', '.join(factors)} -> {PLOTS}/")


if __name__ == "__main__":
    run(main)
