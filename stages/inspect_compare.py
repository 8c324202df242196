"""Stage inspect_compare: the standard architectures under plots/inspect/<name>/: layer
table, errors (with confidence where the model file was kept, models/compare), first-layer
kernels, accuracy/loss per epoch; LeNet-5, which sees the 28x28 digit itself, also gets
feature maps and saliency.

Usage: python stages/inspect_compare.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnstudy import runtime  # noqa: E402
from cnnstudy.files import read_stage_json, write_text  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.stage import run  # noqa: E402

COMPARE_JSON = Path("metrics/compare.json")
PREDICTIONS_JSON = Path("metrics/compare_predictions.json")


def main() -> None:
    params = load_params()
    runtime.select_device("cpu")
    import keras
    import numpy as np

    from cnnstudy import inspect_outputs, outliers, standard_models
    from cnnstudy.data import load_prepared

    records = read_stage_json(COMPARE_JSON, "run `dvc repro compare`")
    predictions = read_stage_json(PREDICTIONS_JSON, "run `dvc repro compare`")["test_predictions"]
    data = load_prepared()
    outlier_images, _ = outliers.load_folder(params.outliers.dir)
    for name in params.compare.models:
        out = inspect_outputs.PLOTS_DIR / name
        model_file = Path("models/compare") / f"{name}.keras"
        history = records.get(name, {}).get("history")
        if model_file.exists():
            model = keras.models.load_model(model_file, compile=False)
            summary = inspect_outputs.inspect_model(
                model, name, data.test, data.class_names, out, outlier_images=outlier_images, history=history,
                model_input=lambda x, n=name: standard_models.model_input(n, x, params.compare.input_size))
        else:  # not kept (e.g. resnet50, 284 MB): the architecture and the recorded predictions
            model = standard_models.build_standard(name, params.compare.input_size)
            summary = inspect_outputs.inspect_predictions(model, name, data.test, data.class_names, out,
                                                          np.asarray(predictions[name]), history=history)
        inspect_outputs.write_model(summary, out)
        keras.backend.clear_session()
        print(f"inspect_compare: {name}: {summary['mistakes']} mistakes")


if __name__ == "__main__":
    run(main)
