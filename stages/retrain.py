"""Stage retrain: the baseline trained again with each seed of outliers.seeds, the same way
train@baseline trains it, so the outliers stage can show how far models that differ only in
their seed agree. A stage of its own so that a variant change does not re-train these.

Usage: python stages/retrain.py
"""

import sys
from dataclasses import replace

from cnnstudy import runtime
from cnnstudy.files import atomic_path, write_json
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
    from cnnstudy.train_cnn import train_cnn

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
    from cnnstudy.training import as_model_input

    accuracies = {}
    for name, seed in seeds.items():
        model, result = train_cnn(replace(cfg, seed=seed), data.train, data.val, epochs, name=name,
                                  num_classes=data.num_classes)
        with atomic_path(RETRAINED_DIR / f"{name}.keras") as tmp:
            model.save(tmp)
        # The baseline's seed spread, which summary and report set each variant's difference against.
        _, test_accuracy = model.evaluate(as_model_input(data.test[0]), data.test[1], verbose=0)
        accuracies[name] = {"seed": seed, "val_accuracy": result.last("val_accuracy"),
                            "test_accuracy": float(test_accuracy)}
        print(f"retrain: baseline with seed {seed}: {epochs} epochs in {result.train_time_s:.1f}s, "
              f"val accuracy {result.last('val_accuracy'):.4f}, test accuracy {test_accuracy:.4f}")
    write_json(RETRAINED_JSON, accuracies)


if __name__ == "__main__":
    run(main)
