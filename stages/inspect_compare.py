"""Stage inspect_compare@<name>: one standard architecture under plots/inspect/<name>/:
layer table, errors (with confidence where the model file was kept in models/compare),
accuracy/loss per epoch; with the model file also the kernels, and for LeNet-5, which
sees the 28x28 digit itself, feature maps and saliency.

Usage: python stages/inspect_compare.py <name from compare.models>
"""

import sys
from pathlib import Path

from cnnstudy import runtime
from cnnstudy.errors import DataError, StudyError
from cnnstudy.files import read_stage_json
from cnnstudy.params import load_params
from cnnstudy.stage import run

FIX = "run `dvc repro compare`"
# compare.py's outputs (named here: importing compare.py would make this rendering stage a training one)
DETAILS_JSON = Path("metrics/compare/details.json")
PREDICTIONS_JSON = Path("metrics/compare/predictions.json")


def main() -> None:
    params = load_params()
    if len(sys.argv) != 2 or sys.argv[1] not in params.compare.models:
        raise StudyError(f"usage: python stages/inspect_compare.py <one of {', '.join(params.compare.models)}>")
    name = sys.argv[1]
    runtime.select_device("cpu")
    import numpy as np

    from cnnstudy import image_prep, inspect_outputs, standard_models
    from cnnstudy.data import load_prepared
    from cnnstudy.model_files import load_model

    record = read_stage_json(DETAILS_JSON, FIX).get(name)
    predictions = read_stage_json(PREDICTIONS_JSON, FIX)["test_predictions"].get(name)
    if record is None or predictions is None:
        raise DataError(f"{DETAILS_JSON} has no results for {name}; {FIX}")
    data = load_prepared()
    out = inspect_outputs.PLOTS_DIR / name
    model_file = Path("models/compare") / f"{name}.keras"
    if model_file.exists():
        model = load_model(model_file, fix=FIX, compile=False)
        summary = inspect_outputs.inspect_model(
            model, name, data.test, data.class_names, out, outlier_images=image_prep.load_folder(params.outliers.dir)[0],
            history=record.get("history"),
            model_input=lambda x: standard_models.model_input(name, x, params.compare.input_size))
    else:  # not kept (compare.keep_models; resnet50 is 284 MB): the architecture and the recorded predictions
        model = standard_models.build_standard(name, params.compare.input_size, num_classes=data.num_classes)
        summary = inspect_outputs.inspect_predictions(model, name, data.test, data.class_names, out,
                                                      np.asarray(predictions), history=record.get("history"))
    inspect_outputs.write_model({**summary, "model_file_kept": model_file.exists()}, out)
    print(f"inspect_compare@{name}: {summary['mistakes']} mistakes of {len(data.test[1])}")


if __name__ == "__main__":
    run(main)
