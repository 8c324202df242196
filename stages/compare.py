"""Stage compare: standard architectures (LeNet-5, ResNet50, DenseNet121, ...) trained from
scratch on the same split. The table beside the study's models is the compare_table stage,
so that retraining a variant does not retrain these.

Usage: python stages/compare.py   (models and settings: `compare` in params.yaml)
"""

import time

from cnnstudy import runtime
from cnnstudy.files import write_json
from cnnstudy.params import load_params
from cnnstudy.stage import run


def main() -> None:
    params = load_params()
    cfg, settings = params.train, params.compare
    runtime.select_device(cfg.device)
    from cnnstudy import compare
    from cnnstudy.data import load_prepared
    from cnnstudy.evaluation import headline

    start = time.perf_counter()
    data = load_prepared()
    device, precision = runtime.set_up(cfg.device, cfg.precision)
    kept = [name for name in settings.models if name in settings.keep_models]
    compare.clean_models_dir(kept)

    records, predictions = {}, {}
    for name in settings.models:
        recipe = compare.resolve_recipe(name, settings)
        print(f"compare@{name}: {recipe.epochs} epochs, peak lr {recipe.lr:g}, batch {recipe.batch_size}, "
              f"{device['backend']} on {device['device']}, {precision}", flush=True)
        record, predicted = compare.run_model(name, settings, cfg, data, name in kept, device, precision)
        records[name] = record
        predictions[name] = predicted.tolist()
        print(f"compare@{name}: test accuracy {record['test_accuracy']:.4f} (train {record['train_accuracy']:.4f} "
              f"training mode, {record['train_accuracy_inference']:.4f} inference mode), "
              f"{record['train_time_s']:.0f} s training, {record['model_file_mb']:.1f} MB", flush=True)

    write_json(compare.PREDICTIONS_JSON, {"stage_seconds": round(time.perf_counter() - start, 1),
                                          "test_predictions": predictions})
    write_json(compare.DETAILS_JSON, records)
    write_json(compare.COMPARE_JSON, {name: headline(record) for name, record in records.items()})


if __name__ == "__main__":
    run(main)
