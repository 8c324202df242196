"""Stage compare: standard architectures (LeNet-5, ResNet50, DenseNet121, ...) trained from
scratch on the same split, next to the baseline and the variants.

Usage: python stages/compare.py   (models and settings: `compare` in params.yaml)
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnstudy import runtime  # noqa: E402
from cnnstudy.files import write_json, write_text  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.stage import run  # noqa: E402


def main() -> None:
    params = load_params()
    cfg, settings = params.train, params.compare
    runtime.select_device(cfg.device)
    from cnnstudy import compare
    from cnnstudy.data import load_prepared

    start = time.perf_counter()
    data = load_prepared()
    # Read the study's results first: a missing summary fails before an hour of training, not after.
    rows = compare.study_rows(compare.SUMMARY_JSON, train_images=len(data.train[1]))
    baseline_predictions = compare.read_baseline_predictions()
    device = runtime.describe_device(cfg.device)
    precision = runtime.resolve_precision(cfg.precision, device["device"])
    runtime.set_precision(precision)
    kept = [name for name in settings.models if name in settings.keep_models]
    compare.clean_models_dir(kept)

    records = {}
    for name in settings.models:
        recipe = compare.resolve_recipe(name, settings)
        print(f"compare@{name}: {recipe.epochs} epochs, peak lr {recipe.lr:g}, batch {recipe.batch_size}, "
              f"{device['backend']} on {device['device']}, {precision}", flush=True)
        record, predicted = compare.run_model(name, settings, cfg, data, name in kept, device, precision, verbose=2)
        records[name] = record
        rows.append(compare.standard_row(name, record, predicted, data.test[1], baseline_predictions,
                                         data.class_names, rows[0]["test_accuracy"]))
        print(f"compare@{name}: test accuracy {record['test_accuracy']:.4f} (train {record['train_accuracy']:.4f} "
              f"training mode, {record['train_accuracy_inference']:.4f} inference mode), "
              f"{record['train_time_s']:.0f} s training, {record['model_file_mb']:.1f} MB", flush=True)

    write_json("metrics/compare.json", records)
    write_text("metrics/compare.md", compare.report_markdown(rows, records, settings, time.perf_counter() - start))
    compare.save_charts(rows, records)


if __name__ == "__main__":
    run(main)
