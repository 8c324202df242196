"""Stage inspect_models: what every model of the study learned and where it fails.

Per model under plots/inspect/<model>/ (first-layer kernels, deeper kernels, block
activations, mistakes, integrated-gradients saliency for digits and outliers, accuracy
and loss per epoch, layer table, summary.json): the baseline and each variant, the tuned
model, and the standard architectures (what applies to each). Across models: per-class
recall side by side and the most confused class pairs (plots/inspect/recall.*,
metrics/inspect.md, metrics/inspect.json).

One process for all of them (a stage per model spent more on starting up than on drawing);
a model whose inputs did not change keeps its folder (cnnstudy.inspect_study).

Usage: python stages/inspect_models.py
"""

from pathlib import Path

from cnnstudy import runtime
from cnnstudy.params import TUNED, load_params
from cnnstudy.stage import run


def main() -> None:
    params = load_params()
    runtime.select_device("cpu")  # a few hundred forward/backward passes per model: no GPU start-up
    from cnnstudy import image_prep
    from cnnstudy import inspect_study as S
    from cnnstudy.data import load_prepared
    from cnnstudy.files import write_json
    from cnnstudy.tuned import study_models

    data = load_prepared()
    outliers, _ = image_prep.load_folder(params.outliers.dir)
    models = study_models(params.models, params.train)  # the tuned model once stage tuned has run
    # the same fix as stage evaluate gives: --force, since a damaged file may still match dvc.lock
    fixes = {name: "run `dvc repro tuned`" if name == TUNED else f"run `dvc repro --force train@{name}`"
             for name in models}
    items = [S.trained_model(name, cfg.seed, data, outliers, fix=fixes[name]) for name, cfg in models.items()]
    items += [S.standard_model(name, params.compare.input_size, data, outliers) for name in params.compare.models]
    shared = S.shared_digest(Path("data/prepared"), Path(params.outliers.dir), script=Path(__file__))
    S.inspect_all(items, shared)
    result = S.across_study(models, params.compare.models, data)
    write_json("metrics/inspect.json", result)
    top = result["confused_pairs"][0] if result["confused_pairs"] else None
    print(f"inspect_models: across {len(items)} models" + (f"; most confused: {top['true']} as {top['predicted']} "
                                                     f"{top['total']} times in all" if top else ""))


if __name__ == "__main__":
    run(main)
