"""Stage retrain: the baseline trained again with each seed of outliers.seeds, the same way
train@baseline trains it, so the outliers stage can show how far models that differ only in
their seed agree. A stage of its own so that a variant change does not re-train these.

Usage: python stages/retrain.py
"""

import sys

from cnnstudy import runtime
from cnnstudy.files import write_json
from cnnstudy.params import load_params
from cnnstudy.stage import run

RETRAINED_JSON = "metrics/retrained.json"


def main() -> None:
    params = load_params()
    cfg = params.train
    runtime.select_device(cfg.device)
    from cnnstudy.data import load_prepared
    from cnnstudy.epochs import resolve_epochs
    from cnnstudy.retrained import RETRAINED_DIR, other_seeds
    from cnnstudy.retraining import train_each_seed

    RETRAINED_DIR.mkdir(parents=True, exist_ok=True)  # DVC needs the folder even when no seed is left
    seeds = other_seeds(params.outliers.seeds, cfg.seed)
    if len(seeds) < len(params.outliers.seeds):
        print(f"warning: outliers.seeds: {cfg.seed} is train.seed, which would re-train the baseline itself; "
              "skipped", file=sys.stderr)
    device, _ = runtime.set_up(cfg.device, cfg.precision)
    epochs = resolve_epochs(cfg, cfg)
    data = load_prepared()
    for path in RETRAINED_DIR.glob("*.keras"):
        if path.stem not in seeds:
            path.unlink()
    write_json(RETRAINED_JSON, train_each_seed(cfg, data, seeds, epochs, RETRAINED_DIR))


if __name__ == "__main__":
    run(main)
