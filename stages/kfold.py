"""Stage kfold: choose the baseline's epoch count by stratified k-fold cross-validation."""

from pathlib import Path

import numpy as np

from cnnstudy import runtime
from cnnstudy.files import long_format, write_csv, write_json
from cnnstudy.params import load_params
from cnnstudy.stage import run

KFOLD_JSON = Path("metrics/kfold.json")  # the choice (a DVC metric); train@ reads chosen_epochs
DETAILS_JSON = Path("metrics/kfold/details.json")  # every fold
VAL_LOSS_CSV = Path("plots/kfold/val_loss.csv")
HEADLINE = ("chosen_epochs", "mean_best_epoch", "mean_val_accuracy")


def main() -> None:
    params = load_params()
    cfg = params.train
    if cfg.epochs != "auto":
        skipped = {"chosen_epochs": None, "skipped": f"train.epochs is {cfg.epochs}, not auto"}
        write_json(KFOLD_JSON, skipped)
        write_json(DETAILS_JSON, skipped)
        write_val_loss_csv([])
        print(f"kfold: skipped, train.epochs is {cfg.epochs}")
        return
    runtime.select_device(cfg.device)
    from cnnstudy.data import load_prepared
    from cnnstudy.kfold import select_epochs

    device, _ = runtime.set_up(cfg.device, cfg.precision)
    data = load_prepared()
    # Cross-validate over train+val; the test split stays untouched until evaluation.
    images = np.concatenate([data.train[0], data.val[0]])
    labels = np.concatenate([data.train[1], data.val[1]])
    with runtime.distribution_scope(device):  # data parallel where there are several devices
        result = select_epochs(cfg, params.kfold, images, labels, num_classes=data.num_classes)
    write_json(DETAILS_JSON, result)
    write_json(KFOLD_JSON, {key: result[key] for key in HEADLINE})
    write_val_loss_csv(result["per_fold"])
    print(f"kfold: best epochs per fold {result['best_epochs']} -> train.epochs auto = {result['chosen_epochs']}")


def write_val_loss_csv(folds: list[dict]) -> None:
    """Long format (series, epoch, val_loss): one line per fold with the `series` template."""
    curves = {f"fold {fold['fold']}": {"epoch": range(1, len(fold["val_loss_per_epoch"]) + 1),
                                       "val_loss": fold["val_loss_per_epoch"]} for fold in folds}
    write_csv(VAL_LOSS_CSV, long_format(curves), ["series", "epoch", "val_loss"])


if __name__ == "__main__":
    run(main)
