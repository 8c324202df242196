"""Stage kfold: choose the baseline's epoch count by stratified k-fold cross-validation."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

from cnnstudy import runtime  # noqa: E402
from cnnstudy.files import write_json, write_text  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.stage import run  # noqa: E402

KFOLD_JSON = Path("metrics/kfold.json")
VAL_LOSS_CSV = Path("plots/kfold/val_loss.csv")


def main() -> None:
    params = load_params()
    cfg = params.train
    if cfg.epochs != "auto":
        write_json(KFOLD_JSON, {"chosen_epochs": None, "skipped": f"train.epochs is {cfg.epochs}, not auto"})
        write_val_loss_csv([])
        print(f"kfold: skipped, train.epochs is {cfg.epochs}")
        return
    runtime.select_device(cfg.device)
    from cnnstudy.data import load_prepared
    from cnnstudy.kfold import select_epochs

    device = runtime.describe_device(cfg.device)
    runtime.set_precision(runtime.resolve_precision(cfg.precision, device["device"]))
    data = load_prepared()
    # Cross-validate over train+val; the test split stays untouched until evaluation.
    images = np.concatenate([data.train[0], data.val[0]])
    labels = np.concatenate([data.train[1], data.val[1]])
    with runtime.distribution_scope(device):  # data parallel where there are several devices
        result = select_epochs(cfg, params.kfold, images, labels)
    write_json(KFOLD_JSON, result)
    write_val_loss_csv(result["per_fold"])
    print(f"kfold: best epochs per fold {result['best_epochs']} -> train.epochs auto = {result['chosen_epochs']}")


def write_val_loss_csv(folds: list[dict]) -> None:
    """Long format (series, epoch, val_loss): one line per fold with the `series` template."""
    rows = ["series,epoch,val_loss"]
    for fold in folds:
        rows += [f"fold {fold['fold']},{epoch},{loss:.6f}"
                 for epoch, loss in enumerate(fold["val_loss_per_epoch"], start=1)]
    write_text(VAL_LOSS_CSV, "\n".join(rows) + "\n")


if __name__ == "__main__":
    run(main)
