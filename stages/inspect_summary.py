"""Stage inspect_summary: across every model of the study (variants, the tuned model once its
stage has run, and the standard architectures), per-class recall side by side and the most
confused class pairs with counts (metrics/inspect.md, plots/inspect/recall.png, recall.csv,
metrics/inspect.json).

Usage: python stages/inspect_summary.py
"""

from pathlib import Path

from cnnstudy.files import read_stage_json, write_json
from cnnstudy.params import load_params
from cnnstudy.stage import run


def main() -> None:
    import numpy as np
    from sklearn.metrics import confusion_matrix

    from cnnstudy import inspect_outputs
    from cnnstudy.data import load_prepared
    from cnnstudy.errors import DataError
    from cnnstudy.predictions import predictions_file, read_predictions
    from cnnstudy.tuned import study_models

    params = load_params()
    data = load_prepared()
    classes = list(range(len(data.class_names)))
    confusions = {}
    for name in study_models(params.models, params.train):
        recorded = read_predictions(predictions_file(name), name)
        if not np.array_equal(recorded.labels, data.test[1]):
            raise DataError(f"{predictions_file(name)} is for other test images than data/prepared; run `dvc repro`")
        confusions[name] = confusion_matrix(recorded.labels, recorded.predicted, labels=classes)
    predictions = read_stage_json(Path("metrics/compare/predictions.json"), "run `dvc repro compare`")
    for name, predicted in predictions["test_predictions"].items():
        confusions[name] = confusion_matrix(data.test[1], np.asarray(predicted), labels=classes)
    result = inspect_outputs.across_models(confusions, data.class_names)
    write_json("metrics/inspect.json", result)
    top = result["confused_pairs"][0] if result["confused_pairs"] else None
    print(f"inspect_summary: {len(confusions)} models" + (f"; most confused: {top['true']} as {top['predicted']} "
                                                           f"{top['total']} times in all" if top else ""))


if __name__ == "__main__":
    run(main)
