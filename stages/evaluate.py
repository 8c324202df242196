"""Stage evaluate: every model of the study (the baseline, each variant, and the tuned model
once stage tuned has run) on the test split: accuracy, loss, F1, confusion matrix, speed, size.

One process for all of them: starting Python, TensorFlow and DVC's bookkeeping cost about
13 s per stage, more than the evaluation of one model (about 3 s), so eleven evaluate@<model>
stages spent most of their 2.5 minutes starting up. A changed model re-evaluates all.

Usage: python stages/evaluate.py [MODEL ...]   (default: every model; names: for a quick look,
outside DVC, which always runs it without arguments)
"""

import sys
from pathlib import Path

from cnnstudy import runtime
from cnnstudy.errors import DataError, StudyError
from cnnstudy.files import read_stage_json, write_csv, write_json
from cnnstudy.params import TUNED, load_params
from cnnstudy.stage import run


def fix_for(name: str) -> str:
    return "run `dvc repro tuned`" if name == TUNED else f"run `dvc repro --force train@{name}`"


def evaluate_one(name: str, seed: int, device: str, data) -> dict:
    """models/<name>.keras on the test split: metrics/eval/<name>.json, its predictions and figures."""
    from cnnstudy import figures
    from cnnstudy.evaluation import confusion_counts, evaluate
    from cnnstudy.figures.results import confusion_figure, mistakes_figure
    from cnnstudy.model_files import load_model
    from cnnstudy.predictions import predictions_file, write_predictions

    model_file = Path("models") / f"{name}.keras"
    if not model_file.exists():
        raise DataError(f"{model_file} is missing; {fix_for(name)}")
    runtime.clear_session()
    runtime.seed_everything(seed)
    model = load_model(model_file, fix=fix_for(name))
    images, labels = data.test
    trained = read_stage_json(Path("metrics/train") / f"{name}.json", fix_for(name))
    if not isinstance(trained, dict) or not isinstance(trained.get("weight_bytes"), int):
        raise DataError(f"metrics/train/{name}.json: has no integer 'weight_bytes'; {fix_for(name)}")
    metrics, probabilities = evaluate(model, model_file, images, labels, data.class_names, trained["weight_bytes"])
    metrics = {"model": name, "device": runtime.describe_device(device)["device"], **metrics}
    write_json(Path("metrics/eval") / f"{name}.json", metrics)
    write_predictions(predictions_file(name), labels, probabilities, data.class_names)

    out = Path("plots/eval") / name
    write_csv(out / "confusion.csv", confusion_counts(metrics["confusion_matrix"], data.class_names))
    figures.save(confusion_figure(metrics["confusion_matrix"], data.class_names,
                                  f"{name}: test accuracy {metrics['accuracy']:.2%}"), out / "confusion.png")
    figures.save(mistakes_figure(images, labels, probabilities, data.class_names, name), out / "mistakes.png")
    return metrics


def main() -> None:
    params = load_params()
    runtime.select_device(params.train.device)
    from cnnstudy.data import load_prepared
    from cnnstudy.tuned import study_models

    models = study_models(params.models, params.train)
    chosen = sys.argv[1:] or list(models)
    unknown = [name for name in chosen if name not in models]
    if unknown:
        raise StudyError(f"usage: python stages/evaluate.py [MODEL ...]: {', '.join(unknown)} is not a model of "
                         f"the study ({', '.join(models)})")
    data = load_prepared()
    for name in chosen:
        m = evaluate_one(name, models[name].seed, params.train.device, data)
        print(f"evaluate: {name}: accuracy {m['accuracy']:.4f}, loss {m['loss']:.4f}, F1 {m['f1_macro']:.4f}, "
              f"{m['test_time_s']:.2f}s for {m['test_images']} images, {m['model_file_mb']:.2f} MB", flush=True)


if __name__ == "__main__":
    run(main)
