"""Stage sweep: search the `sweep.space` over train keys on Ray Tune, ranked on validation only.

Trials already in the cache (cache/sweep, a persistent output) are not trained again.
Writes metrics/sweep.csv (one row per trial), metrics/sweep.json (best, top 5, counts, time)
and metrics/sweep_best.json (the best trial alone: the tuned stage's input, which changes only
when the best trial does, so re-running the sweep from its cache does not refit the tuned model);
the figures are the sweep_plots stage's.
"""

from pathlib import Path

from cnnstudy.params import load_params
from cnnstudy.stage import run
from cnnstudy.sweep_cache import TrialCache
from cnnstudy.sweep_results import summary, table, write_csv, write_summary
from cnnstudy.sweep_run import run_sweep

DATA_DIR = Path("data/prepared")
CACHE_DIR = Path("cache/sweep")
SWEEP_CSV = Path("metrics/sweep.csv")
SWEEP_JSON = Path("metrics/sweep.json")
BEST_JSON = Path("metrics/sweep_best.json")


def main() -> None:
    params = load_params()
    sweep = params.sweep
    outcome = run_sweep(sweep, params.train, DATA_DIR, TrialCache(CACHE_DIR))
    write_csv(SWEEP_CSV, table(outcome.rows, sweep.factors))
    result = summary(outcome.rows, sweep, outcome.trained, outcome.cached, outcome.seconds, outcome.nodes)
    write_summary(SWEEP_JSON, result)
    write_summary(BEST_JSON, {"best": result["best"]})
    best = result["best"]
    print(f"sweep: {result['trials']} trials ({result['trained']} trained on {result['nodes']} node(s), "
          f"{result['cached']} from the cache) in {result['seconds']} s; best {best['config']} "
          f"val_accuracy {best['val_accuracy']:.4f}")


if __name__ == "__main__":
    run(main)
