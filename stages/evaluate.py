"""Stage evaluate@<model>: test-split accuracy, loss, F1, confusion matrix, speed and size.

Usage: python stages/evaluate.py <model>
"""

from pathlib import Path

from cnnstudy import runtime
from cnnstudy.errors import DataError
from cnnstudy.files import read_stage_json, write_csv, write_json
from cnnstudy.params import TUNED, load_params
from cnnstudy.stage import model_argument, run


def main() -> None:
    name = model_argument()
    params = load_params()
    # the tuned model's seed and device are train's (the sweep varies neither)
    cfg = params.train if name == TUNED else params.model(name)
    runtime.select_device(cfg.device)
    from cnnstudy import figures
    from cnnstudy.data import load_prepared
    from cnnstudy.evaluation import confusion_counts, evaluate
    from cnnstudy.figures.results import confusion_figure, mistakes_figure
    from cnnstudy.model_files import load_model
    from cnnstudy.predictions import predictions_file, write_predictions

    model_file = Path("models") / f"{name}.keras"
    if not model_file.exists():
        raise DataError(f"{model_file} is missing; run `dvc repro train@{name}`")
    runtime.seed_everything(cfg.seed)
    model = load_model(model_file, fix=f"run `dvc repro --force train@{name}`")
    data = load_prepared()
    images, labels = data.test
    trained = read_stage_json(Path("metrics/train") / f"{name}.json", f"run `dvc repro --force train@{name}`")
    if not isinstance(trained, dict) or not isinstance(trained.get("weight_bytes"), int):
        raise DataError(f"metrics/train/{name}.json: has no integer 'weight_bytes'; "
                        f"run `dvc repro --force train@{name}`")
    metrics, probabilities = evaluate(model, model_file, images, labels, data.class_names, trained["weight_bytes"])
    metrics = {"model": name, "device": runtime.describe_device(cfg.device)["device"], **metrics}
    write_json(Path("metrics/eval") / f"{name}.json", metrics)
    write_predictions(predictions_file(name), labels, probabilities, data.class_names)

    out = Path("plots/eval") / name
    write_csv(out / "confusion.csv", confusion_counts(metrics["confusion_matrix"], data.class_names))
    figures.save(confusion_figure(metrics["confusion_matrix"], data.class_names,
                                  f"{name}: test accuracy {metrics['accuracy']:.2%}"), out / "confusion.png")
    figures.save(mistakes_figure(images, labels, probabilities, data.class_names, name), out / "mistakes.png")
    print(f"evaluate@{name}: accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}, "
          f"F1 {metrics['f1_macro']:.4f}, {metrics['test_time_s']:.2f}s for {metrics['test_images']} images, "
          f"{metrics['model_file_mb']:.2f} MB")


if __name__ == "__main__":
    run(main)
