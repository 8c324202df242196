"""Stage tuned: the sweep's best configuration (metrics/sweep_best.json), epochs chosen without the
test split, refit on train + validation; writes models/tuned.keras like train@<model> does.

tuned.select: sweep = the epoch of lowest (3-epoch averaged) validation loss on the best sweep
trial's curve (that trial trained this configuration on train; no extra fit), then refit on
train + validation for that many; validation = the same on a fit of its own for tuned.epochs
epochs; fixed = refit for tuned.epochs.
"""

import dataclasses
from pathlib import Path

from cnnstudy import runtime
from cnnstudy.files import read_stage_json, write_json
from cnnstudy.params import load_params
from cnnstudy.stage import run

BEST_JSON = Path("metrics/sweep_best.json")
DATA_DIR = Path("data/prepared")


def main() -> None:
    params = load_params()
    settings = params.tuned
    from cnnstudy.tuned import NAME, best_config, best_epoch, config_changes, sweep_history, train_plus_val

    sweep_summary = read_stage_json(BEST_JSON, "run `dvc repro sweep`")
    cfg = best_config(sweep_summary, params.train, str(BEST_JSON))
    history = sweep_history(sweep_summary, str(BEST_JSON)) if settings.select == "sweep" else None
    selection = {"select": settings.select, "max_epochs": settings.epochs}
    if history is not None:
        selection["trial"] = sweep_summary["best"].get("key")
    runtime.select_device(cfg.device)
    from cnnstudy.data import load_splits
    from cnnstudy.model_files import save_model
    from cnnstudy.models import weight_bytes
    from cnnstudy.train_cnn import train_cnn

    device, precision = runtime.set_up(cfg.device, cfg.precision)
    class_names, data = load_splits(DATA_DIR, ("train", "val"))  # never the test split
    epochs = settings.epochs
    if settings.select == "validation":
        _, probe = train_cnn(cfg, data["train"], data["val"], settings.epochs, name=f"{NAME}_probe", verbose=2,
                             num_classes=len(class_names))
        history = probe.history
    if history is not None:
        epochs = best_epoch(history)
        selection.update(max_epochs=len(history["val_loss"]), val_loss=history["val_loss"],
                         val_accuracy=history["val_accuracy"], chosen_epochs=epochs)
    cfg = dataclasses.replace(cfg, epochs=epochs)
    changes = config_changes(cfg, params.train)
    print(f"{NAME}: {changes}; refit on train + validation for {epochs} epochs")
    model, result = train_cnn(cfg, train_plus_val(data["train"], data["val"]), None, epochs, name=NAME,
                              log_dir=Path("dvclive") / NAME, verbose=2, num_classes=len(class_names))
    save_model(model, Path("models") / f"{NAME}.keras")
    write_json(Path("metrics/train") / f"{NAME}.json", {
        "model": NAME,
        "parameters": model.count_params(),
        "weight_bytes": weight_bytes(model),
        **result.summary(),
        "precision": precision,
        **device,
        "config": changes,
        "epoch_selection": selection,
    })


if __name__ == "__main__":
    run(main)
