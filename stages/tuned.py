"""Stage tuned: the sweep's best configuration (metrics/sweep.json), epochs chosen without the
test split, refit on train + validation; writes models/tuned.keras like train@<model> does.

tuned.select: validation = fit on train for tuned.epochs epochs, take the epoch of lowest
validation loss, then refit on train + validation for that many; fixed = refit for tuned.epochs.
"""

import dataclasses
from pathlib import Path

from cnnstudy import runtime
from cnnstudy.files import read_stage_json, write_json
from cnnstudy.params import load_params
from cnnstudy.stage import run

SWEEP_JSON = Path("metrics/sweep.json")
DATA_DIR = Path("data/prepared")


def main() -> None:
    params = load_params()
    settings = params.tuned
    from cnnstudy.tuned import NAME, best_config, best_epoch, config_changes, train_plus_val

    cfg = best_config(read_stage_json(SWEEP_JSON, "run `dvc repro sweep`"), params.train, str(SWEEP_JSON))
    runtime.select_device(cfg.device)
    from cnnstudy.data import load_splits
    from cnnstudy.model_files import save_model
    from cnnstudy.models import weight_bytes
    from cnnstudy.train_cnn import train_cnn

    device, precision = runtime.set_up(cfg.device, cfg.precision)
    class_names, data = load_splits(DATA_DIR, ("train", "val"))  # never the test split
    selection = {"select": settings.select, "max_epochs": settings.epochs}
    epochs = settings.epochs
    if settings.select == "validation":
        _, probe = train_cnn(cfg, data["train"], data["val"], settings.epochs, name=f"{NAME}_probe", verbose=2,
                             num_classes=len(class_names))
        epochs = best_epoch(probe.history)
        selection.update(val_loss=probe.history["val_loss"], val_accuracy=probe.history["val_accuracy"],
                         chosen_epochs=epochs)
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
