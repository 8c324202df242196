"""Stage inspect_model@<model>: what one model of the study learned and where it fails
(plots/inspect/<model>/: filters, deeper kernels, feature maps, errors, saliency for
digits and outliers, accuracy/loss per epoch, layer table, summary.json).

Usage: python stages/inspect_model.py <model>
"""

from pathlib import Path

from cnnstudy import runtime
from cnnstudy.params import load_params
from cnnstudy.stage import model_argument, run


def main() -> None:
    name = model_argument()
    params = load_params()
    cfg = params.model(name)
    runtime.select_device("cpu")  # a few hundred forward/backward passes: no GPU start-up
    from cnnstudy import image_prep, inspect_outputs
    from cnnstudy.data import load_prepared
    from cnnstudy.model_files import load_model
    from cnnstudy.summary import read_history

    runtime.seed_everything(cfg.seed)
    model = load_model(Path("models") / f"{name}.keras", fix=f"run `dvc repro train@{name}`", compile=False)
    data = load_prepared()
    images, _ = image_prep.load_folder(params.outliers.dir)
    out = inspect_outputs.PLOTS_DIR / name
    summary = inspect_outputs.inspect_model(model, name, data.test, data.class_names, out, outlier_images=images,
                                            history=read_history(Path("dvclive") / name))
    inspect_outputs.write_model(summary, out)
    print(f"inspect_model@{name}: {summary['mistakes']} mistakes of {summary['test_images']}; "
          f"integrated-gradients completeness gap {summary['saliency']['max_completeness_gap']:.2e}")


if __name__ == "__main__":
    run(main)
